package server

import (
	"fmt"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// fakeConn is a gnet.Conn that swallows writes: it measures the publish path
// (sequence, encode once, queue, drain, per-connection write) without sockets.
type fakeConn struct {
	gnet.Conn
	frames, bytes int
}

func (f *fakeConn) Write(b []byte) (int, error) {
	f.frames++
	f.bytes += len(b)
	return len(b), nil
}

func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	f.frames += len(bs)
	f.bytes += n
	return n, nil
}

func (f *fakeConn) OutboundBuffered() int { return 0 }

// newFakeLoop builds a node with one loop and subs open connections
// subscribed to topics (round robin). The loop has no gnet event loop, so
// enqueue never wakes it: the benchmark calls drain itself.
func newFakeLoop(tb testing.TB, subs int, topics []string, retain bool) (*Node, *loop, []*fakeConn) {
	cfg := DefaultConfig()
	if !retain {
		cfg.History, cfg.LastValue = 0, ""
	}
	n, err := NewNode(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	l := newLoop(n, nil)
	fakes := make([]*fakeConn, subs)
	for i := range fakes {
		fakes[i] = &fakeConn{}
		c := &conn{gc: fakes[i], loop: l, phase: phaseOpen}
		l.addConn(c)
		l.subscribe(c, topics[i%len(topics)], resume{}, false)
	}
	return n, l, fakes
}

var benchData = []byte(`{"symbol":"BTC-USD","price":64012.25,"size":0.015,"side":"buy","ts":1732500000000,"x":"abcdefgh"}`)

// BenchmarkBroadcast publishes one ~100-byte message to 10k subscribers per
// op and drains it: ns/delivery and allocs/op (per publish) are the figures.
func BenchmarkBroadcast(b *testing.B) {
	for _, retain := range []bool{false, true} {
		for _, batch := range []int{1, 10} {
			name := fmt.Sprintf("10k-subs/batch=%d/history+last-value=%v", batch, retain)
			b.Run(name, func(b *testing.B) { benchBroadcast(b, batch, retain) })
		}
	}
}

func benchBroadcast(b *testing.B, batch int, retain bool) {
	n, l, fakes := newFakeLoop(b, 10000, []string{"prices.BTC-USD"}, retain)
	// One warm-up batch sizes the loop's buffers, so B/op shows per-publish
	// costs only.
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
	if fakes[0].frames != b.N || fakes[len(fakes)-1].frames != b.N {
		b.Fatalf("frames: got %d and %d, want %d", fakes[0].frames, fakes[len(fakes)-1].frames, b.N)
	}
}

// BenchmarkBroadcastTopics spreads 10k subscribers over 1,000 topics and
// publishes to every topic once per op.
func BenchmarkBroadcastTopics(b *testing.B) {
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("t.%d", i)
	}
	n, l, _ := newFakeLoop(b, 10000, topics, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, t := range topics {
			_, _, _ = n.Publish(t, benchData)
		}
		l.drain()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/delivery")
}

// BenchmarkBroadcastDeflate is BenchmarkBroadcast with a ~1 KiB message and
// some subscribers that negotiated permessage-deflate: the publish is
// compressed once and the same frame written to each of them, so
// allocs/op stay those of a plain publish and ns/delivery close to plain.
// Run: go test -run '^$' -bench BroadcastDeflate -benchmem ./server/
func BenchmarkBroadcastDeflate(b *testing.B) {
	// ~1 KiB of order-book rows: JSON as feeds send it, above --compress-min.
	var data []byte
	data = append(data, `{"book":"BTC-USD","bids":[`...)
	for i := 0; i < 12; i++ {
		data = fmt.Appendf(data, `{"price":%d.%02d,"size":%d.%03d,"orders":%d},`, 64000+i*7, i*13%100, i%5, i*37%1000, i*3+1)
	}
	data = append(data, `{}],"ts":1732500000000}`...)
	for _, share := range []struct {
		name  string
		every int // every n-th subscriber compresses; 0 = none
	}{{"plain", 0}, {"half-deflate", 2}, {"all-deflate", 1}} {
		b.Run("10k-subs/"+share.name, func(b *testing.B) {
			n, l, fakes := newFakeLoop(b, 10000, []string{"prices.BTC-USD"}, false)
			if share.every > 0 {
				for i, c := range l.conns {
					if i%share.every == 0 {
						c.setDeflate(15)
					}
				}
			}
			_, _, _ = n.Publish("prices.BTC-USD", data)
			l.drain()
			bytesBefore := 0
			for _, f := range fakes {
				bytesBefore += f.bytes
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := n.Publish("prices.BTC-USD", data); err != nil {
					b.Fatal(err)
				}
				l.drain()
			}
			b.StopTimer()
			total := 0
			for _, f := range fakes {
				total += f.bytes
			}
			deliveries := float64(b.N) * float64(len(fakes))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(total-bytesBefore)/deliveries, "wire-B/delivery")
		})
	}
}
