package server_test

// The deployment users run: HAProxy terminates TLS (wss://) and forwards
// each connection to the node with a PROXY v2 header (--proxy-protocol).

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/internal/haproxytest"
	"github.com/gorilla/websocket"
)

// wssDialer dials through the TLS proxy from source address 127.0.0.2, so
// the client's address differs from the proxy's (127.0.0.1) at the node.
func wssDialer(p *haproxytest.Proxy) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		TLSClientConfig:  p.TLS.Clone(),
		NetDialContext:   nd.DialContext,
	}
}

func TestHAProxyTLSInFront(t *testing.T) {
	haproxytest.Require(t)
	n, logs := startProxiedNode(t, nil)
	p := haproxytest.Start(t, n.WSAddr())
	url := "wss://" + p.Addr + "/ws?topics=tls.x"

	// A client that does not trust the test CA is refused by the TLS layer.
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial without the test CA: err = %v, want a certificate error", err)
	}

	var conns []*websocket.Conn
	for range 3 {
		c, resp, err := wssDialer(p).Dial(url, nil)
		if err != nil {
			t.Fatalf("wss dial: %v (response %v)", err, resp)
		}
		t.Cleanup(func() { c.Close() })
		if st := c.UnderlyingConn().(*tls.Conn).ConnectionState(); !st.HandshakeComplete || st.PeerCertificates[0].Subject.CommonName != haproxytest.ServerName {
			t.Fatalf("TLS state: %+v", st)
		}
		// The node logged the client's address (127.0.0.2 and its port),
		// not HAProxy's 127.0.0.1.
		logs.waitFor(t, "msg=upgraded", "client="+c.LocalAddr().String(), "via=127.0.0.1:")
		conns = append(conns, c)
	}
	res := publishHTTP(t, n, "tls.x", []byte(`{"over":"wss"}`))
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(frameTimeout))
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if env, err := parseEnvelope(msg); err != nil || env.Topic != "tls.x" || env.Seq != res.Seq || string(env.Data) != `{"over":"wss"}` {
			t.Fatalf("client %d got %q (%v)", i, msg, err)
		}
	}
	// Client → server through the proxy too.
	if err := conns[0].WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["tls.y"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conns[0].ReadMessage(); err != nil || !strings.HasPrefix(string(msg), `{"type":"subscribed","topics":["tls.y"]`) {
		t.Fatalf("subscribe ack: %q %v", msg, err)
	}
}

// Without --proxy-protocol the node takes HAProxy's PROXY header for a bad
// request: the misconfiguration is visible at once, not a silent wrong address.
func TestHAProxyWithoutProxyProtocolFlag(t *testing.T) {
	haproxytest.Require(t)
	n := startNode(t, false, func(c *server.Config) { c.Proxy.Protocol = false })
	p := haproxytest.Start(t, n.WSAddr())
	_, resp, err := wssDialer(p).Dial("wss://"+p.Addr+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("want 400 from the node, got %v %v", resp, err)
	}
}
