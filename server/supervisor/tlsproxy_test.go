package supervisor_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/internal/haproxytest"
	"github.com/gorilla/websocket"
)

// TestHAProxyTLSInFrontOfWorkers: HAProxy terminates wss:// in front of a
// `--workers 2 --proxy-protocol` node; clients that verify the test CA
// subscribe and receive publishes, and the workers log the clients' own
// addresses (127.0.0.2:port), not HAProxy's.
func TestHAProxyTLSInFrontOfWorkers(t *testing.T) {
	haproxytest.Require(t)
	n := startNode(t, "--workers", "2", "--proxy-protocol", "--log-level", "debug")
	p := haproxytest.Start(t, strings.TrimSuffix(strings.TrimPrefix(n.ws, "ws://"), "/ws"))
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: p.TLS.Clone(), NetDialContext: nd.DialContext}

	var clients []*client
	var locals []string
	for range 8 {
		conn, resp, err := dialer.Dial("wss://"+p.Addr+"/ws?topics=tls", nil)
		if err != nil {
			t.Fatalf("wss dial: %v (%v)", err, resp)
		}
		t.Cleanup(func() { conn.Close() })
		c := &client{conn: conn, msgs: make(chan message, 256), done: make(chan struct{})}
		go func() {
			defer close(c.done)
			for {
				_, b, err := conn.ReadMessage()
				if err != nil {
					c.err = err
					return
				}
				var m message
				if json.Unmarshal(b, &m) == nil && m.Seq > 0 {
					c.msgs <- m
				}
			}
		}()
		clients = append(clients, c)
		locals = append(locals, conn.LocalAddr().String())
	}
	eventually(t, "both workers to log their clients' real addresses", func() bool {
		workers := map[string]bool{}
		for _, local := range locals {
			found := false
			for _, line := range strings.Split(n.logs.String(), "\n") {
				var rec struct{ Msg, Client, Via string }
				var w struct{ Worker json.Number }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "upgraded" && rec.Client == local && strings.HasPrefix(rec.Via, "127.0.0.1:") {
					_ = json.Unmarshal([]byte(line), &w)
					workers[w.Worker.String()] = true
					found = true
				}
			}
			if !found {
				return false
			}
		}
		t.Logf("clients upgraded on workers %v", workers)
		return true
	})
	primeAll(t, "tls", clients, n)
	seq := n.publish("tls", `{"over":"wss","workers":2}`)
	expect(t, clients, message{Topic: "tls", Seq: seq, Data: json.RawMessage(`{"over":"wss","workers":2}`)})
}
