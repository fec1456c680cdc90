package server

import (
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkHandshake measures the node's heap allocations per WebSocket
// upgrade with one URL subscription, gnet's accept included (its conn,
// address objects and conn-map entry, ~4 allocations). The clients are raw
// blocking sockets, which allocate nothing, so the counts are the server's.
// Upgrades run in batches of 1,000 held connections, then closed.
// Run: go test -run '^$' -bench Handshake -benchmem ./server/
func BenchmarkHandshake(b *testing.B) {
	n := startRawNode(b, func(cfg *Config) { cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0 })
	addr, _ := net.ResolveTCPAddr("tcp", n.WSAddr())
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	req := []byte("GET /ws?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 512)
	const batch = 1000
	fds := make([]int, 0, batch)
	var mallocs, bytes uint64
	var ms runtime.MemStats
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(batch, b.N-done)
		runtime.ReadMemStats(&ms)
		m0, b0 := ms.Mallocs, ms.TotalAlloc
		for range k {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, req); err != nil {
				b.Fatal(err)
			}
			if m, err := unix.Read(fd, buf); err != nil || m < 12 || string(buf[9:12]) != "101" {
				b.Fatalf("upgrade failed: %v %q", err, buf[:max(m, 0)])
			}
		}
		runtime.ReadMemStats(&ms)
		mallocs, bytes = mallocs+ms.Mallocs-m0, bytes+ms.TotalAlloc-b0
		done += k
		b.StopTimer()
		for _, fd := range fds {
			unix.Close(fd)
		}
		fds = fds[:0]
		for n.Stats().Conns > 0 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(mallocs)/float64(b.N), "server-allocs/upgrade")
	b.ReportMetric(float64(bytes)/float64(b.N), "server-B/upgrade")
}
