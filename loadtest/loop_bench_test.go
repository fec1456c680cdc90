package loadtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
)

// BenchmarkDeliveryPath measures the per-delivery read path of a loop
// (frame split, parse, seq check, latency record) with no sockets:
// it must not allocate.
func BenchmarkDeliveryPath(b *testing.B) {
	plan := Plan{URL: "ws://127.0.0.1:1/ws", Conns: 1, Rate: 1, TrackSeq: true}
	plan.withDefaults()
	l, err := newLoop(0, &plan, &target{}, nil, nil, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer l.p.close()
	slot := l.allocSlot()
	l.conns[slot].state = stOpen
	const frames = 64
	var data []byte
	now := time.Now().UnixNano()
	for i := 1; i <= frames; i++ {
		msg := fmt.Sprintf(`{"topic":"load.1.0","seq":%d,"data":{"t":%d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`, i, now-50_000)
		data = codec.AppendFrame(data, codec.OpText, []byte(msg))
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.conns[slot].hasSeq = false
		rest, alive := l.frames(slot, data, now)
		if !alive || len(rest) != 0 {
			b.Fatal("frames failed")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/delivery")
	if s := l.stats.counters(); s.Gaps != 0 || s.Dups != 0 || s.Messages != int64(b.N*frames) {
		b.Fatalf("counters %+v", s)
	}
}
