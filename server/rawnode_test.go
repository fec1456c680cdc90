package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// startRawNode starts a Node in this package's tests: WebSocket listener on
// a free loopback port, no HTTP listener, cfg changed by edit first. It is
// shut down when the test ends.
func startRawNode(t testing.TB, edit func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
	if edit != nil {
		edit(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// rawUpgrade opens a plain TCP connection to n and upgrades it on target
// (e.g. "/ws?topics=a"), checking for the 101; the rest of the answer is
// left unread. The caller closes it (10 s deadline).
func rawUpgrade(t testing.TB, n *Node, target string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.WSAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 101" {
		c.Close()
		t.Fatalf("answer %q, %v; want a 101", buf, err)
	}
	return c
}
