package server_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server"
)

// Behind a proxy every connection comes from the proxy's address: the
// per-IP limit must count the client addresses the PROXY headers name.
// Two clients through one proxy source (127.0.0.1), limit 1 per IP: each
// gets its one connection, a second from the same client gets 429, and a
// closed connection frees its client's slot, not the proxy's.
func TestProxyProtocolPerIPLimit(t *testing.T) {
	n, _ := startProxiedNode(t, func(c *server.Config) { c.Limits.MaxConnsPerIP = 1 })
	addr := n.WSAddr()
	dst := netip.MustParseAddrPort(addr)
	connect := func(hdr []byte) (*rawConn, int) {
		t.Helper()
		key := newKey()
		rc := dialTCP(t, addr)
		rc.write(append(hdr, upgradeRequest(addr, "/ws?topics=perip", key, nil)...))
		resp := rc.readResponse()
		return rc, resp.StatusCode
	}
	v2 := func(src string) []byte {
		s, d := netip.MustParseAddrPort(src), dst
		if s.Addr().Is6() {
			d = netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
		}
		return codec.AppendProxyHeaderV2(nil, s, d, nil)
	}
	a, st := connect(v2("203.0.113.1:1000"))
	if st != 101 {
		t.Fatalf("client 1: %d", st)
	}
	if _, st := connect(codec.AppendProxyHeaderV1(nil, netip.MustParseAddrPort("203.0.113.2:1000"), dst)); st != 101 {
		t.Fatalf("client 2 through the same proxy source: %d, want 101", st)
	}
	if _, st := connect(v2("203.0.113.1:2000")); st != 429 {
		t.Fatalf("client 1 again: %d, want 429", st)
	}
	// IPv6 clients count per /64.
	if _, st := connect(v2("[2001:db8:1:2::1]:1")); st != 101 {
		t.Fatalf("v6 client: %d", st)
	}
	if _, st := connect(v2("[2001:db8:1:2::99]:1")); st != 429 {
		t.Fatalf("v6 client, same /64: %d, want 429", st)
	}
	// The proxy's own LOCAL connections count against the proxy's address.
	if _, st := connect(codec.AppendProxyHeaderV2(nil, netip.AddrPort{}, netip.AddrPort{}, nil)); st != 101 {
		t.Fatalf("LOCAL: %d", st)
	}
	if _, st := connect([]byte("PROXY UNKNOWN\r\n")); st != 429 {
		t.Fatalf("second LOCAL/UNKNOWN from 127.0.0.1: %d, want 429", st)
	}
	a.closeNormally()
	deadline := time.Now().Add(frameTimeout)
	for {
		rc, st := connect(v2("203.0.113.1:3000"))
		if st == 101 {
			rc.closeNormally()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client 1's slot not freed after its close: %d", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.Stats().RejectedIP; got < 3 {
		t.Fatalf("rejected_ip = %d, want at least 3", got)
	}
}
