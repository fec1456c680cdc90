package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// --defer-accept sets TCP_DEFER_ACCEPT on every loop's listener (gnet opens
// one per loop, found by port), and connections still upgrade.
func TestDeferAcceptOnEveryListener(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
	cfg.Loops = 2
	cfg.Accept.DeferAccept = 3
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	// gnet opens the second loop's listener after OnBoot; the first tick
	// (at most a second later) tunes it.
	deferred := func(fd int) bool {
		// The kernel stores it as SYN-ACK retransmits and reports it back in seconds, rounded up.
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		return err == nil && v >= 3
	}
	var fds []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fds = listeningFDs(n.wsPort())
		ok := len(fds) == 2
		for _, fd := range fds {
			ok = ok && deferred(fd)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners on port %d: %v, want 2 (one per loop), each with TCP_DEFER_ACCEPT >= 3", n.wsPort(), fds)
		}
	}
	req := "GET /ws?topics=a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for range 4 { // spread over both listeners
		c, err := net.DialTimeout("tcp", n.WSAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 12)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 101" {
			t.Fatalf("answer %q, %v; want a 101", buf, err)
		}
		c.Close()
	}
}
