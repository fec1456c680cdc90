package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkIdleConnMemory measures the node's Go heap per idle upgraded
// connection, each subscribed to one topic. The clients are raw blocking
// sockets (an fd each, no Go heap), so the heap delta is the server's.
// Run: go test -run '^$' -bench IdleConnMemory -benchtime 1x ./server/
// The deflate variant negotiates permessage-deflate on every connection:
// no context takeover, so it must cost no more than plain.
func BenchmarkIdleConnMemory(b *testing.B) {
	b.Run("plain", func(b *testing.B) { idleConnMemory(b, nil, nil) })
	b.Run("deflate", func(b *testing.B) {
		idleConnMemoryOffer(b, nil, nil, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
	})
}

// idleConnMemory: edit adjusts the config; each client sends header(i)
// (e.g. a PROXY header) before its upgrade request.
func idleConnMemory(b *testing.B, edit func(*Config), header func(i int) []byte) {
	idleConnMemoryOffer(b, edit, header, "")
}

// idleConnMemoryOffer is idleConnMemory with extra upgrade header lines
// (CRLF-terminated), e.g. a permessage-deflate offer.
func idleConnMemoryOffer(b *testing.B, edit func(*Config), header func(i int) []byte, extensions string) {
	const conns = 5000 // both ends live in this process: 2 fds per connection
	if os.Getenv("FANWIRE_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, to attribute bytes per conn
	}
	n := startRawNode(b, func(cfg *Config) {
		cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0 // 5,000 connections from 127.0.0.1 at once
		if edit != nil {
			edit(cfg)
		}
	})
	req := []byte("GET /ws?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extensions + "\r\n")
	request := func(j int) []byte {
		if header == nil {
			return req
		}
		return append(header(j), req...)
	}
	idleHeapPerConn(b, n, conns, request, func(resp []byte) error {
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
			return errors.New("handshake failed")
		}
		if negotiated := bytes.Contains(resp, []byte("permessage-deflate")); negotiated != (extensions != "") {
			return fmt.Errorf("permessage-deflate negotiated=%v", negotiated)
		}
		return nil
	})
}

// idleHeapPerConn opens conns raw blocking client sockets to n (an fd each,
// no Go heap), sends each request(j), checks the answer with answered (nil:
// none is expected, e.g. a held poll), and reports the growth of the node's
// Go heap per connection. FANWIRE_HEAP_PROFILE=FILE also writes a heap
// profile with every connection open.
func idleHeapPerConn(b *testing.B, n *Node, conns int, request func(j int) []byte, answered func(resp []byte) error) {
	b.Helper()
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
			if _, err := unix.Write(fd, request(j)); err != nil {
				b.Fatal(err)
			}
			if answered == nil {
				continue
			}
			m, err := unix.Read(fd, buf)
			if err == nil {
				err = answered(buf[:m])
			}
			if err != nil {
				b.Fatalf("conn %d: %v: %q", j, err, buf[:max(m, 0)])
			}
		}
		for n.Stats().Conns < int64(conns) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the last requests are handled
		after := heapAfterGC()
		if p := os.Getenv("FANWIRE_HEAP_PROFILE"); p != "" {
			f, _ := os.Create(p)
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
		b.ReportMetric(float64(int64(after)-int64(before))/float64(conns), "heap-B/conn")
		for _, fd := range fds {
			unix.Close(fd)
		}
		for n.Stats().Conns > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	b.Log("connections: " + strconv.Itoa(conns))
}

func heapAfterGC() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
