package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// The rare per-connection state lives in per-loop maps keyed by the conn
// (sublist.go, slow.go, parser.go, limits.go): closing connections in every
// state that puts them there must leave those maps empty, or a node that
// lives for months would leak an entry per such connection.
func TestSideTablesEmptyAfterClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
	cfg.Loops = 2
	cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	req := []byte("GET /ws?topics=a,b,c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	// A masked text frame announcing 100 payload bytes, cut after 4: the
	// parser rests mid-frame and the input is incomplete.
	half := []byte{0x81, 0x80 | 100, 1, 2, 3, 4, 'a', 'b', 'c', 'd'}
	const clients = 40
	var conns []net.Conn
	buf := make([]byte, 12)
	for range clients {
		c, err := net.DialTimeout("tcp", n.WSAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 101" {
			t.Fatalf("answer %q, %v; want a 101", buf, err)
		}
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	sizes := func() (moreSubs, parsers, partial, slow int) {
		for _, l := range n.eng.allLoops() {
			done := make(chan struct{})
			l.execute(runnable(func() {
				moreSubs += len(l.moreSubs)
				parsers += len(l.parsers)
				partial += len(l.partialSince)
				slow += len(l.slow)
				close(done)
			}))
			<-done
		}
		return
	}
	// Every client is subscribed to 3 topics and inside a frame.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, p, q, _ := sizes()
		if m == clients && p == clients && q == clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("side tables hold %d / %d / %d entries (more subs / parsers / partial), want %d each", m, p, q, clients)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, p, q, s := sizes()
		if m+p+q+s == 0 && n.Stats().Conns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every close: side tables hold %d / %d / %d / %d entries (more subs / parsers / partial / slow), want none", m, p, q, s)
		}
	}
}
