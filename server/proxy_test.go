package server_test

// --proxy-protocol: the PROXY v1/v2 header before the upgrade request, its
// client address in the node's logs, malformed and missing headers refused,
// and the (absolute) handshake deadline covering both.

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server"
)

// logBuffer collects a node's log lines (any goroutine).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log has a line containing every part.
func (l *logBuffer) waitFor(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(frameTimeout)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startProxiedNode runs a node with --proxy-protocol and debug logs captured.
func startProxiedNode(t *testing.T, edit func(*server.Config)) (*server.Node, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	n := startNode(t, false, func(c *server.Config) {
		c.Proxy.Protocol = true
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if edit != nil {
			edit(c)
		}
	})
	return n, logs
}

func TestProxyProtocolHeaders(t *testing.T) {
	n, logs := startProxiedNode(t, nil)
	addr := n.WSAddr()
	dst := netip.MustParseAddrPort(addr)
	cases := []struct {
		name   string
		header func(src netip.AddrPort) []byte
		src    string
		chop   int // write in pieces of this many bytes (0: one write)
	}{
		{"v1 tcp4", func(s netip.AddrPort) []byte { return codec.AppendProxyHeaderV1(nil, s, dst) }, "203.0.113.7:51234", 0},
		{"v1 tcp6", func(s netip.AddrPort) []byte {
			return []byte("PROXY TCP6 " + s.Addr().String() + " ::1 " + "40001 8080\r\n")
		}, "[2001:db8::7]:40001", 0},
		{"v2 tcp4", func(s netip.AddrPort) []byte { return codec.AppendProxyHeaderV2(nil, s, dst, nil) }, "198.51.100.9:4242", 0},
		{"v2 tcp6 with TLVs", func(s netip.AddrPort) []byte {
			return codec.AppendProxyHeaderV2(nil, s, netip.MustParseAddrPort("[2001:db8::1]:443"), []byte("\x01\x00\x02h2\x02\x00\x0bexample.com"))
		}, "[2001:db8::8]:5555", 0},
		{"v2 byte by byte", func(s netip.AddrPort) []byte { return codec.AppendProxyHeaderV2(nil, s, dst, nil) }, "192.0.2.77:1", 1},
		{"v1 byte by byte", func(s netip.AddrPort) []byte { return codec.AppendProxyHeaderV1(nil, s, dst) }, "192.0.2.78:65535", 1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := netip.MustParseAddrPort(c.src)
			topic := "proxied" + string(rune('a'+i))
			key := newKey()
			rc := dialTCP(t, addr)
			msg := append(c.header(src), upgradeRequest(addr, "/ws?topics="+topic, key, nil)...)
			if c.chop > 0 {
				rc.sendChopped(msg, c.chop, 0)
			} else {
				rc.write(msg)
			}
			expectSwitch(t, rc, key)
			logs.waitFor(t, "msg=upgraded", "client="+src.String(), "via=127.0.0.1:")
			res := publishHTTP(t, n, topic, []byte(`{"through":"proxy"}`))
			_, got := rc.readMessage("delivery", frameTimeout)
			if env, err := parseEnvelope(got); err != nil || env.Seq != res.Seq || string(env.Data) != `{"through":"proxy"}` {
				t.Fatalf("delivery %q: %v", got, err)
			}
			rc.closeNormally()
		})
	}
	// The header, the request and a first message in one write.
	t.Run("pipelined", func(t *testing.T) {
		key := newKey()
		rc := dialTCP(t, addr)
		rc.send(codec.AppendProxyHeaderV2(nil, netip.MustParseAddrPort("203.0.113.50:1000"), dst, nil),
			[]byte(upgradeRequest(addr, "/ws", key, nil)), textFrame(`{"op":"subscribe","topics":["pipe"]}`))
		expectSwitch(t, rc, key)
		if _, msg := rc.readMessage("ack", frameTimeout); !strings.HasPrefix(string(msg), `{"type":"subscribed","topics":["pipe"]`) {
			t.Fatalf("ack: %q", msg)
		}
		logs.waitFor(t, "client=203.0.113.50:1000")
		rc.closeNormally()
	})
	// LOCAL (the proxy's own health check) and UNKNOWN: the socket's address.
	for name, hdr := range map[string][]byte{
		"v2 local":   codec.AppendProxyHeaderV2(nil, netip.AddrPort{}, netip.AddrPort{}, nil),
		"v1 unknown": []byte("PROXY UNKNOWN\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			key := newKey()
			rc := dialTCP(t, addr)
			rc.write(append(hdr, upgradeRequest(addr, "/ws", key, nil)...))
			expectSwitch(t, rc, key)
			local := rc.c.LocalAddr().String()
			if line := logs.waitFor(t, "msg=upgraded", "client="+local); strings.Contains(line, "via=") {
				t.Fatalf("LOCAL header logged as proxied: %s", line)
			}
			rc.closeNormally()
		})
	}
}

// Connections without a valid header are refused with 400 and closed; the
// node goes on serving proxied clients.
func TestProxyProtocolRefusesBadHeaders(t *testing.T) {
	n, logs := startProxiedNode(t, nil)
	addr := n.WSAddr()
	key := newKey()
	req := upgradeRequest(addr, "/ws", key, nil)
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	for _, c := range []struct{ name, in string }{
		{"no header: plain upgrade", req},
		{"no header: TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
		{"v1 bad address", "PROXY TCP4 300.1.1.1 10.0.0.1 1 2\r\n" + req},
		{"v1 bare LF", "PROXY TCP4 1.2.3.4 10.0.0.1 1 2\n" + req},
		{"v1 no CRLF within 107 bytes", "PROXY UNKNOWN " + strings.Repeat("x", 120)},
		{"v1 twice", "PROXY UNKNOWN\r\nPROXY UNKNOWN\r\n" + req},
		{"v2 bad version", sig + "\x11\x11\x00\x0c" + strings.Repeat("\x00", 12) + req},
		{"v2 udp", sig + "\x21\x12\x00\x0c" + strings.Repeat("\x00", 12) + req},
		{"v2 length over the cap", sig + "\x21\x11\xff\xff"},
		{"v2 broken TLV", sig + "\x21\x11\x00\x0e" + strings.Repeat("\x00", 12) + "\x02\x00" + req},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialTCP(t, addr)
			rc.write([]byte(c.in))
			// "v1 twice": the second header is the start of a bad request.
			rc.expectHTTPError([]int{400}, "")
		})
	}
	logs.waitFor(t, "refused: bad PROXY header", "no PROXY protocol header")

	// A header that never completes, and a socket that never sends, are
	// closed at the handshake deadline like any stalled handshake.
	t.Run("stalled", func(t *testing.T) {
		n, _ := startProxiedNode(t, func(c *server.Config) { c.HandshakeTimeout = time.Second })
		half := dialTCP(t, n.WSAddr())
		half.write([]byte("PROXY TCP4 1.2.3.4 "))
		silent := dialTCP(t, n.WSAddr())
		half.expectHangUp("a half PROXY header (HandshakeTimeout 1s)")
		silent.expectHangUp("a silent socket (HandshakeTimeout 1s)")
	})

	rc := dialTCP(t, addr)
	rc.write(append(codec.AppendProxyHeaderV1(nil, netip.MustParseAddrPort("192.0.2.1:9"), netip.MustParseAddrPort(addr)), req...))
	expectSwitch(t, rc, key)
	rc.closeNormally()
}

// The handshake deadline counts from accept: a client that trickles its
// PROXY header and request one byte at a time cannot hold the connection
// open past it (with or without --proxy-protocol).
func TestHandshakeDeadlineIsAbsolute(t *testing.T) {
	for _, proxied := range []bool{false, true} {
		name := "plain"
		if proxied {
			name = "proxy-protocol"
		}
		t.Run(name, func(t *testing.T) {
			n := startNode(t, false, func(c *server.Config) {
				c.HandshakeTimeout = time.Second
				c.Proxy.Protocol = proxied
			})
			msg := []byte(upgradeRequest(n.WSAddr(), "/ws", newKey(), []string{"X-Pad: " + strings.Repeat("p", 2000)}))
			if proxied {
				msg = append([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"), msg...)
			}
			rc := dialTCP(t, n.WSAddr())
			start := time.Now()
			// One byte every 50 ms would take over 100 s: the server must
			// hang up long before (the write fails or the read sees EOF).
			for _, b := range msg {
				if _, err := rc.c.Write([]byte{b}); err != nil {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatal("still open after 30 s of trickling (HandshakeTimeout 1s)")
				}
				_ = rc.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := rc.br.ReadByte(); err != nil && !isTimeout(err) {
					break // EOF or reset: closed
				}
			}
			if time.Since(start) > 30*time.Second {
				t.Fatal("still open after 30 s of trickling (HandshakeTimeout 1s)")
			}
		})
	}
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}
