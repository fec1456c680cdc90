package server

import (
	"net/netip"
	"testing"

	"github.com/fanwire/fanwire/codec"
)

// BenchmarkIdleConnMemoryProxyProtocol: BenchmarkIdleConnMemory with
// --proxy-protocol, every client behind a v2 header naming its own address
// (the per-loop table of real addresses included).
// Run: go test -run '^$' -bench IdleConnMemory -benchtime 1x ./server/
func BenchmarkIdleConnMemoryProxyProtocol(b *testing.B) {
	dst := netip.MustParseAddrPort("10.0.0.1:443")
	idleConnMemory(b, func(c *Config) { c.Proxy.Protocol = true }, func(i int) []byte {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(1024+i))
		return codec.AppendProxyHeaderV2(nil, src, dst, nil)
	})
}
