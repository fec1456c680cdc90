package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/fanwire/fanwire/codec"
	"github.com/panjf2000/gnet/v2"
)

// ProxyConfig: a TLS terminator or load balancer in front of the listener.
type ProxyConfig struct {
	// Protocol: every connection must start with a PROXY protocol v1 or v2
	// header (HAProxy send-proxy / send-proxy-v2, nginx proxy_protocol on,
	// AWS NLB). The client address it names replaces the proxy's in logs,
	// limits and metrics. Connections without a valid header are refused
	// with 400. Only turn it on when every peer is a proxy you run: anyone
	// who can reach the listener directly can name any address.
	Protocol bool
}

// proxiedAddr is a client address named by a PROXY header, packed in 18
// bytes (IPv4 as IPv4-mapped IPv6). loop.proxied holds one per connection,
// at the connection's index in loop.conns, only with --proxy-protocol:
// 18 B per connection instead of a pointer in every conn (which would move
// conn to the next size class) or a map entry (~80 B measured).
type proxiedAddr struct {
	ip   [16]byte
	port uint16
}

// A conn's PROXY state is two bits of conn.flags (listed in limits.go):
// flagProxyAwait until the header is read, then flagProxied if it named the
// client; neither means the socket's peer is the client.
//
// addProxied and moveProxied keep loop.proxied parallel to loop.conns.
// With --proxy-protocol every conn of the node starts with flagProxyAwait, so the
// table has an entry for each; without it, it stays nil.
func (l *loop) addProxied(c *conn) {
	if c.flags&flagProxyAwait != 0 {
		l.proxied = append(l.proxied, proxiedAddr{})
	}
}

func (l *loop) moveProxied(from int, to int32) {
	if len(l.proxied) > from {
		l.proxied[to] = l.proxied[from]
		l.proxied = l.proxied[:from]
	}
}

// proxyHeader consumes the PROXY header at the start of buf (phaseHandshake,
// before the upgrade request). It returns the bytes used, 0 while the
// header is incomplete. The handshake deadline covers the header too.
func (l *loop) proxyHeader(c *conn, buf []byte) (int, gnet.Action) {
	hdr, n, perr := codec.ParseProxyHeader(buf)
	if perr != nil {
		// A proxy has nobody to show an HTTP answer to, but a client that
		// reached the listener directly, or a misconfigured proxy's
		// operator, learns why in one line.
		if l.node.log.Enabled(context.Background(), slog.LevelDebug) {
			l.node.log.Debug("refused: bad PROXY header", "peer", socketAddr(c.gc).String(), "err", perr.Reason)
		}
		l.met.countHandshakeFailure(400) // metrics.go
		c.setReason(reasonHandshakeFailed)
		_, _ = c.gc.Write(codec.AppendHTTPError(l.out[:0], &codec.HTTPError{Status: 400, Message: perr.Error()}))
		return 0, gnet.Close
	}
	if n == 0 {
		return 0, gnet.None
	}
	c.flags &^= flagProxyAwait // LOCAL (the proxy's own health check) or UNKNOWN: the socket's peer
	if !hdr.Local {
		l.proxied[c.idx] = proxiedAddr{ip: hdr.Source.Addr().As16(), port: hdr.Source.Port()}
		c.flags |= flagProxied
	}
	// The per-IP limit counts the client the header named, not the proxy.
	if reply := l.admitIP(c); reply != nil {
		l.met.ipRejectsWithConn.Add(1) // metrics.go: its close is counted at OnClose, not from LimitStats
		c.setReason(reasonLimit)
		_, _ = c.gc.Write(reply)
		return 0, gnet.Close
	}
	return n, gnet.None
}

// clientAddr is the client's address: the one the PROXY header named, else
// the socket's peer. Loop goroutine only, and not after removeConn (which
// reuses c's slot in loop.proxied). For logs, per-IP limits, metrics.
func (c *conn) clientAddr() netip.AddrPort {
	if c.flags&flagProxied != 0 {
		a := &c.loop.proxied[c.idx]
		return netip.AddrPortFrom(netip.AddrFrom16(a.ip).Unmap(), a.port)
	}
	return socketAddr(c.gc)
}

// logUpgrade notes an upgraded connection at debug level, with the client's
// address and, behind a proxy, the proxy's.
func (l *loop) logUpgrade(c *conn) {
	if !l.node.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"client", c.clientAddr().String()}
	if c.flags&flagProxied != 0 {
		attrs = append(attrs, "via", socketAddr(c.gc).String())
	}
	l.node.log.Debug("upgraded", attrs...)
}

// socketAddr is the socket's remote address (IPv4-mapped IPv6 unmapped).
func socketAddr(gc gnet.Conn) netip.AddrPort {
	if gc == nil {
		return netip.AddrPort{}
	}
	if a, ok := gc.RemoteAddr().(*net.TCPAddr); ok {
		return unmapAddrPort(a.AddrPort())
	}
	return netip.AddrPort{}
}

func unmapAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
