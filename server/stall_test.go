package server_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

// dialStalled upgrades a raw socket subscribed to topic with a tiny receive
// buffer and then never reads: a client whose network stalled.
func dialStalled(t *testing.T, n *server.Node, topic string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", n.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET /ws?topics=" + topic + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c
}

// A stalled client is closed with 1008 once its backlog passes
// --max-pending, even with the kernel's autotuned send buffer (no
// --send-buffer): TCP_NOTSENT_LOWAT keeps the kernel from absorbing the
// backlog where fanwire cannot see it. Bounded: the client must be closed
// before 1 MiB was published to it (without the limit the kernel took about
// 3 MiB here).
func TestStalledClientClosedDespiteKernelBuffers(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.SlowGrace = time.Second })
	stalled := dialStalled(t, n, "news.stall")
	healthy := dialFeed(t, n, "?topics=news.stall", 0)
	go func() { // drain the healthy one
		for {
			if _, _, err := healthy.ReadMessage(); err != nil {
				return
			}
		}
	}()
	msg := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	published := 0
	for n.Stats().SlowClosed == 0 {
		if published > 1<<20 {
			t.Fatalf("stalled client still open after %d KiB published to it (stats %+v)", published>>10, n.Stats())
		}
		if _, _, err := n.Publish("news.stall", msg); err != nil {
			t.Fatal(err)
		}
		published += len(msg)
		time.Sleep(time.Millisecond)
	}
	t.Logf("stalled client closed after %d KiB published", published>>10)
	// Its socket goes away too (after the close timeout), whatever it reads.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		if _, err := stalled.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("stalled client's socket still open 10 s after its slow close")
			}
			break
		}
	}
}
