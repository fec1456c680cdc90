package server

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkIdleStreamMemory is BenchmarkIdleConnMemory per transport: the
// node's Go heap per idle connection subscribed to one topic, for a
// WebSocket next to an SSE stream and a held long-poll, in one run.
// Run: go test -run '^$' -bench IdleStreamMemory -benchtime 1x ./server/
func BenchmarkIdleStreamMemory(b *testing.B) {
	for _, tc := range []struct {
		name, req, ok string
	}{
		{"websocket", "GET /ws?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 101"},
		{"sse", "GET /sse?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200"},
		{"poll", "GET /poll?topics=prices.BTC-USD&since=prices.BTC-USD:0 HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	} {
		b.Run(tc.name, func(b *testing.B) { benchIdleMemory(b, []byte(tc.req), tc.ok) })
	}
}

func benchIdleMemory(b *testing.B, req []byte, ok string) {
	const conns = 5000
	cfg := DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
	cfg.Streams.PollTimeout = time.Hour
	cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0 // 5,000 connections from 127.0.0.1 at once
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	addr, _ := net.ResolveTCPAddr("tcp", n.WSAddr())
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	for i := 0; i < b.N; i++ {
		before := heapAfterGC()
		fds := make([]int, 0, conns)
		buf := make([]byte, 512)
		for j := 0; j < conns; j++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, req); err != nil {
				b.Fatal(err)
			}
			if ok == "" {
				continue // a held poll answers nothing
			}
			m, err := unix.Read(fd, buf)
			if err != nil || !bytes.HasPrefix(buf[:m], []byte(ok)) {
				b.Fatalf("conn %d: %v %q", j, err, buf[:m])
			}
		}
		for n.Stats().Conns < conns {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the last requests are handled
		after := heapAfterGC()
		b.ReportMetric(float64(int64(after)-int64(before))/conns, "heap-B/conn")
		for _, fd := range fds {
			unix.Close(fd)
		}
		for n.Stats().Conns > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
