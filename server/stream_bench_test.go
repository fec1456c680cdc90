package server

import (
	"fmt"
	"testing"
)

// BenchmarkBroadcastTransports is BenchmarkBroadcast per transport: one
// ~100-byte publish to 10k subscribers of one kind per op. SSE deliveries
// carry a per-connection event id (the cursor) next to the shared data.
func BenchmarkBroadcastTransports(b *testing.B) {
	for _, kind := range []struct {
		name string
		kind uint8
	}{{"websocket", kindWS}, {"sse", kindSSE}} {
		for _, batch := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/10k-subs/batch=%d", kind.name, batch), func(b *testing.B) {
				benchBroadcastKind(b, kind.kind, batch)
			})
		}
	}
}

func benchBroadcastKind(b *testing.B, kind uint8, batch int) {
	cfg := DefaultConfig()
	cfg.History, cfg.LastValue = 0, ""
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	l := newLoop(n, nil)
	fakes := make([]*fakeConn, 10000)
	for i := range fakes {
		fakes[i] = &fakeConn{}
		c := &conn{gc: fakes[i], loop: l, phase: phaseOpen, kind: kind}
		l.addConn(c)
		l.subscribe(c, "prices.BTC-USD", resume{}, false)
	}
	for i := 0; i < batch; i++ {
		_, _, _ = n.Publish("prices.BTC-USD", benchData)
	}
	l.drain()
	for _, f := range fakes {
		f.frames, f.bytes = 0, 0
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := n.Publish("prices.BTC-USD", benchData); err != nil {
			b.Fatal(err)
		}
		if (i+1)%batch == 0 {
			l.drain()
		}
	}
	l.drain()
	b.StopTimer()
	deliveries := float64(b.N) * float64(len(fakes))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(fakes[0].bytes)/float64(b.N), "bytes/delivery")
	if fakes[0].bytes == 0 || fakes[len(fakes)-1].bytes != fakes[0].bytes {
		b.Fatalf("bytes: got %d and %d", fakes[0].bytes, fakes[len(fakes)-1].bytes)
	}
}
