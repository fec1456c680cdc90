package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/js"
)

// TestWSListenerServesClientScript: GET /fanwire.js on the WebSocket listener
// answers the embedded client with CORS and closes; other methods get 405;
// the listener keeps upgrading at /ws. A tiny send buffer makes the answer
// leave in pieces (the closing-phase path).
func TestWSListenerServesClientScript(t *testing.T) {
	for _, sndbuf := range []int{0, 4096} {
		n := startNode(t, false, func(c *server.Config) { c.SendBuffer = sndbuf })
		addr := n.WSAddr()

		rc := dialTCP(t, addr)
		rc.write([]byte("GET /fanwire.js?v=1 HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: http://app.example\r\nConnection: keep-alive\r\n\r\n"))
		resp := rc.readResponse()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, js.Source) {
			t.Fatalf("sndbuf %d: status %d, %d of %d bytes, err %v", sndbuf, resp.StatusCode, len(body), len(js.Source), err)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Content-Type") != js.ContentType || !resp.Close {
			t.Fatalf("headers %v", resp.Header)
		}
		// The node hangs up (at once, or when the sweep sees the closing conn).
		_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if extra, err := io.ReadAll(rc.br); err != nil || len(extra) != 0 {
			t.Fatalf("sndbuf %d: after the body: %d bytes, %v; want EOF", sndbuf, len(extra), err)
		}

		head := dialTCP(t, addr)
		head.write([]byte("HEAD /fanwire.js HTTP/1.1\r\nHost: x\r\n\r\n"))
		if r := head.readResponse(); r.StatusCode != 200 {
			t.Fatalf("HEAD: %d", r.StatusCode)
		}
		post := dialTCP(t, addr)
		post.write([]byte("POST /fanwire.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
		if r := post.readResponse(); r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d, want 405", r.StatusCode)
		}
		dialWS(t, addr, "/ws?topics=a") // still a WebSocket listener
	}
}
