package codec

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// PROXY protocol (HAProxy's spec, versions 1 and 2): a load balancer or TLS
// terminator in front of the node sends one header before the client's bytes,
// naming the client's address. ParseProxyHeader reads it from a
// non-blocking byte stream: it never waits, it says "incomplete" (n == 0).

// ProxyHeader is a parsed PROXY protocol header.
type ProxyHeader struct {
	Version uint8 // 1 (text) or 2 (binary)
	// Local: the header carries no client address (v2 LOCAL command, e.g. a
	// health check by the proxy itself; v1 UNKNOWN; v2 AF_UNSPEC or AF_UNIX):
	// the connection's own peer address is the one to use.
	Local bool
	// Source and Destination: the client's address and the address it
	// connected to on the proxy. Only when !Local.
	Source, Destination netip.AddrPort
}

// ProxyError is a malformed or unsupported PROXY header.
type ProxyError struct{ Reason string }

func (e *ProxyError) Error() string { return "proxy protocol: " + e.Reason }

// PROXY header failures. Package-level values: reporting one never allocates.
var (
	ErrProxyMissing     = &ProxyError{"no PROXY protocol header (the listener expects one from its proxy)"}
	ErrProxyV1Malformed = &ProxyError{"malformed v1 header"}
	ErrProxyV1TooLong   = &ProxyError{"v1 header longer than 107 bytes"}
	ErrProxyV2Version   = &ProxyError{"v2 header: unsupported version or command"}
	ErrProxyV2Family    = &ProxyError{"v2 header: unsupported address family or transport"}
	ErrProxyV2Length    = &ProxyError{"v2 header: address block too short or too long"}
	ErrProxyV2TLV       = &ProxyError{"v2 header: malformed TLV"}
)

const (
	// ProxyV1MaxLen is the longest v1 line, CRLF included (the spec's 107).
	ProxyV1MaxLen = 107
	// ProxyV2MaxLen caps the v2 address block plus TLVs we accept. The spec
	// allows 64 KiB; proxies send 12-36 bytes of addresses and a few hundred
	// bytes of TLVs at most (SSL, ALPN, authority, unique id).
	ProxyV2MaxLen = 2048
)

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// ParseProxyHeader parses the PROXY header at the start of buf. It returns
// the number of bytes it used; n == 0 with a nil error means the header is
// incomplete: call again with more bytes. Input that cannot start either
// version's header is an error as soon as the first differing byte arrives,
// so a client that speaks HTTP directly is refused at once.
func ParseProxyHeader(buf []byte) (hdr ProxyHeader, n int, err *ProxyError) {
	if len(buf) == 0 {
		return hdr, 0, nil
	}
	switch {
	case hasPrefixOrIsPrefix(buf, proxyV2Sig):
		if len(buf) < len(proxyV2Sig) {
			return hdr, 0, nil
		}
		return parseProxyV2(buf)
	case hasPrefixOrIsPrefix(buf, proxyV1Prefix):
		if len(buf) < len(proxyV1Prefix) {
			return hdr, 0, nil
		}
		return parseProxyV1(buf)
	}
	return hdr, 0, ErrProxyMissing
}

// hasPrefixOrIsPrefix: buf starts with sig, or buf is a prefix of sig.
func hasPrefixOrIsPrefix(buf, sig []byte) bool {
	k := min(len(buf), len(sig))
	return bytes.Equal(buf[:k], sig[:k])
}

// parseProxyV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN[ anything]\r\n". Fields are separated by exactly one space.
func parseProxyV1(buf []byte) (hdr ProxyHeader, n int, err *ProxyError) {
	window := buf[:min(len(buf), ProxyV1MaxLen)]
	lf := bytes.IndexByte(window, '\n')
	if lf < 0 {
		if len(buf) >= ProxyV1MaxLen {
			return hdr, 0, ErrProxyV1TooLong
		}
		if i := bytes.IndexByte(window, '\r'); i >= 0 && i != len(window)-1 {
			return hdr, 0, ErrProxyV1Malformed // a CR not followed by LF
		}
		return hdr, 0, nil
	}
	if lf == 0 || window[lf-1] != '\r' {
		return hdr, 0, ErrProxyV1Malformed
	}
	line := window[len(proxyV1Prefix) : lf-1]
	hdr.Version = 1
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The spec: the receiver ignores everything else on the line.
		if bytes.IndexByte(line, '\r') >= 0 {
			return ProxyHeader{}, 0, ErrProxyV1Malformed
		}
		hdr.Local = true
		return hdr, lf + 1, nil
	case "TCP4", "TCP6":
	default:
		return ProxyHeader{}, 0, ErrProxyV1Malformed
	}
	var f [4][]byte
	for i := range f {
		var ok bool
		f[i], rest, ok = bytes.Cut(rest, []byte(" "))
		if ok != (i < 3) || len(f[i]) == 0 {
			return ProxyHeader{}, 0, ErrProxyV1Malformed
		}
	}
	v6 := proto[3] == '6'
	src, ok1 := parseV1Addr(f[0], v6)
	dst, ok2 := parseV1Addr(f[1], v6)
	sport, ok3 := parseV1Port(f[2])
	dport, ok4 := parseV1Port(f[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return ProxyHeader{}, 0, ErrProxyV1Malformed
	}
	hdr.Source = netip.AddrPortFrom(src, sport)
	hdr.Destination = netip.AddrPortFrom(dst, dport)
	return hdr, lf + 1, nil
}

// parseV1Addr accepts a plain IPv4 dotted quad (TCP4) or an IPv6 address
// without a zone (TCP6).
func parseV1Addr(b []byte, v6 bool) (netip.Addr, bool) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is6() != v6 {
		return netip.Addr{}, false
	}
	return a, true
}

// parseV1Port accepts 0-65535 in decimal without leading zeros.
func parseV1Port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return uint16(v), v <= 65535
}

// v2 header: 12-byte signature, version<<4|command, family<<4|transport,
// 2-byte big-endian length of what follows (addresses, then TLVs).
const (
	proxyV2HeaderLen = 16
	proxyV2Local     = 0x20
	proxyV2Proxy     = 0x21
)

func parseProxyV2(buf []byte) (hdr ProxyHeader, n int, err *ProxyError) {
	if len(buf) > 12 && buf[12] != proxyV2Local && buf[12] != proxyV2Proxy {
		return hdr, 0, ErrProxyV2Version
	}
	if len(buf) < proxyV2HeaderLen {
		return hdr, 0, nil
	}
	local := buf[12] == proxyV2Local
	length := int(binary.BigEndian.Uint16(buf[14:16]))
	if length > ProxyV2MaxLen {
		return hdr, 0, ErrProxyV2Length
	}
	// Address block size per family and transport (PROXY command only: a
	// LOCAL header's block is discarded whatever it holds, as the spec says).
	addrLen := 0
	if !local {
		switch buf[13] {
		case 0x00: // AF_UNSPEC: no addresses; the connection's own are used
		case 0x11: // TCP over IPv4
			addrLen = 12
		case 0x21: // TCP over IPv6
			addrLen = 36
		case 0x31: // stream over AF_UNIX: paths, no IP address
			addrLen = 216
		default: // datagrams or unknown families: not a stream we serve
			return hdr, 0, ErrProxyV2Family
		}
		if length < addrLen {
			return hdr, 0, ErrProxyV2Length
		}
	}
	total := proxyV2HeaderLen + length
	if len(buf) < total {
		return hdr, 0, nil
	}
	hdr.Version = 2
	if local {
		hdr.Local = true
		return hdr, total, nil
	}
	body := buf[proxyV2HeaderLen:total]
	if !validTLVs(body[addrLen:]) {
		return ProxyHeader{}, 0, ErrProxyV2TLV
	}
	switch addrLen {
	case 12:
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		hdr.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		hdr.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case 36:
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		hdr.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		hdr.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	default: // UNSPEC, UNIX
		hdr.Local = true
	}
	return hdr, total, nil
}

// validTLVs: type (1 byte), length (2 bytes, big endian), value, repeated,
// tiling b exactly. Their contents are not needed here and are skipped.
func validTLVs(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 3 {
			return false
		}
		l := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if l > len(b) {
			return false
		}
		b = b[l:]
	}
	return true
}

// AppendProxyHeaderV1 appends a v1 header for src → dst (both IPv4 or both
// IPv6), or "PROXY UNKNOWN\r\n" if either is invalid or they are of
// different families. For tests and tools.
func AppendProxyHeaderV1(dst []byte, src, to netip.AddrPort) []byte {
	if !src.IsValid() || !to.IsValid() || src.Addr().Is4() != to.Addr().Is4() {
		return append(dst, "PROXY UNKNOWN\r\n"...)
	}
	proto := "TCP4 "
	if src.Addr().Is6() {
		proto = "TCP6 "
	}
	dst = append(append(dst, proxyV1Prefix...), proto...)
	dst = append(src.Addr().AppendTo(dst), ' ')
	dst = append(to.Addr().AppendTo(dst), ' ')
	dst = appendUint(dst, int(src.Port()))
	dst = append(dst, ' ')
	dst = appendUint(dst, int(to.Port()))
	return append(dst, "\r\n"...)
}

// AppendProxyHeaderV2 appends a v2 PROXY header for src → dst, followed by
// the raw TLV bytes tlvs; a LOCAL header if either address is invalid or
// they are of different families. For tests and tools.
func AppendProxyHeaderV2(dst []byte, src, to netip.AddrPort, tlvs []byte) []byte {
	dst = append(dst, proxyV2Sig...)
	var addrs []byte
	switch {
	case !src.IsValid() || !to.IsValid() || src.Addr().Is4() != to.Addr().Is4():
		dst = append(dst, proxyV2Local, 0x00)
	case src.Addr().Is4():
		dst = append(dst, proxyV2Proxy, 0x11)
		a, b := src.Addr().As4(), to.Addr().As4()
		addrs = append(append(addrs, a[:]...), b[:]...)
	default:
		dst = append(dst, proxyV2Proxy, 0x21)
		a, b := src.Addr().As16(), to.Addr().As16()
		addrs = append(append(addrs, a[:]...), b[:]...)
	}
	if len(addrs) > 0 {
		addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, to.Port())
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(addrs)+len(tlvs)))
	return append(append(dst, addrs...), tlvs...)
}

func appendUint(dst []byte, v int) []byte {
	var tmp [5]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}
