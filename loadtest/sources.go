package loadtest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseSources turns a --source-ips value into a list of IPv4 addresses.
// Accepted forms: "" (no binding, the kernel picks), a count "48"
// (127.0.0.2 onwards), a range "127.0.0.2-127.0.0.50", or a comma list.
// Each source IP gives about one ephemeral port range of connections to one
// target, so rotating over several gets past ~64k connections per target.
func ParseSources(s string) ([]netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 65000 {
			return nil, fmt.Errorf("source count %d out of range 1..65000", n)
		}
		return addrRange(netip.MustParseAddr("127.0.0.2"), n), nil
	}
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if from, to, ok := strings.Cut(part, "-"); ok {
			a, err := parseIPv4(from)
			if err != nil {
				return nil, err
			}
			b, err := parseIPv4(to)
			if err != nil {
				return nil, err
			}
			n := int(ipv4Uint(b)) - int(ipv4Uint(a)) + 1
			if n < 1 || n > 65000 {
				return nil, fmt.Errorf("source range %q is empty or too large", part)
			}
			out = append(out, addrRange(a, n)...)
			continue
		}
		a, err := parseIPv4(part)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("source %q is not an IPv4 address", s)
	}
	return a, nil
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrRange(first netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	v := ipv4Uint(first)
	for i := 0; i < n; i++ {
		x := v + uint32(i)
		out = append(out, netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}))
	}
	return out
}

// FormatSources is the inverse of ParseSources for passing a share to a worker.
func FormatSources(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}
