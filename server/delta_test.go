package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"unsafe"

	"github.com/centrifugal/fdelta"
	"github.com/fanwire/fanwire/server/demo"
	"github.com/panjf2000/gnet/v2"
)

// recConn is a gnet.Conn that records the messages written to it and
// reports as much unsent output as the test says.
type recConn struct {
	gnet.Conn
	msgs     [][]byte
	buffered int
}

func (r *recConn) Write(b []byte) (int, error) {
	for len(b) > 0 { // unmasked text frames of our own: split them
		h, n := headerLen(b), int(b[1]&0x7f)
		switch h {
		case 4:
			n = int(b[2])<<8 | int(b[3])
		case 10:
			n = 0
			for _, c := range b[2:10] {
				n = n<<8 | int(c)
			}
		}
		r.msgs = append(r.msgs, bytes.Clone(b[h:h+n]))
		b = b[h+n:]
	}
	return len(b), nil
}

func (r *recConn) Writev(bs [][]byte) (int, error) {
	for _, b := range bs {
		_, _ = r.Write(b)
	}
	return 0, nil
}

func (r *recConn) OutboundBuffered() int { return r.buffered }

// take returns the messages written since the last take.
func (r *recConn) take() [][]byte {
	m := r.msgs
	r.msgs = nil
	return m
}

// tick is a price board: eight symbols, one of which moves per tick, so
// consecutive messages share most bytes (as board and state feeds do).
func tick(i int) []byte {
	b := []byte(`{"board":[`)
	for k := 0; k < 8; k++ {
		p := 64000 + k*1000
		if k == i%8 {
			p += i
		}
		b = fmt.Appendf(b, `{"symbol":"SYM-%d","price":%d.%02d,"ts":1732500000000},`, k, p, i%100)
	}
	return append(b[:len(b)-1], "]}"...)
}

// TestDeltaChainBreaks: the first delivery is full, then deltas; conflation
// and a gap in the seqs break the chain and the next delivery is full.
func TestDeltaChainBreaks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Delta.Topics = "prices.*"
	cfg.MaxPending = 1 << 10
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(n, nil)
	rc := &recConn{}
	c := &conn{gc: rc, loop: l, phase: phaseOpen}
	l.addConn(c)
	l.subscribe(c, "prices.X", resume{delta: true}, false)
	var prev []byte
	expect := func(seq int, kind string) {
		t.Helper()
		msgs := rc.take()
		if len(msgs) != 1 {
			t.Fatalf("seq %d: %d messages, want 1", seq, len(msgs))
		}
		var m struct {
			Seq       int
			Delta     string
			Conflated bool
			Data      json.RawMessage
		}
		if err := json.Unmarshal(msgs[0], &m); err != nil {
			t.Fatalf("%q: %v", msgs[0], err)
		}
		data := []byte(m.Data)
		got := "full"
		switch {
		case m.Delta == "fossil":
			got = "delta"
			var s string
			_ = json.Unmarshal(m.Data, &s)
			patch := make([]byte, len(s))
			for i, r := range []rune(s) {
				patch[i] = byte(r)
			}
			patch = patch[:len([]rune(s))]
			if data, err = fdelta.Apply(prev, patch); err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
		case m.Conflated:
			got = "conflated"
		}
		if m.Seq != seq || got != kind || !bytes.Equal(data, tick(seq)) {
			t.Fatalf("got seq %d %s %q, want seq %d %s %q", m.Seq, got, data, seq, kind, tick(seq))
		}
		prev = data
	}
	pub := func(i int) {
		if _, _, err := n.Publish("prices.X", tick(i)); err != nil {
			t.Fatal(err)
		}
		l.drain()
	}
	pub(1)
	expect(1, "full")
	pub(2)
	expect(2, "delta")
	rc.buffered = 1 << 20 // behind: slow mode after this write
	pub(3)
	expect(3, "delta")
	pub(4)
	pub(5)
	if len(rc.msgs) != 0 {
		t.Fatalf("slow connection got %d messages", len(rc.msgs))
	}
	rc.buffered = 0 // caught up: the conflated message, then a full one
	pub(6)
	msgs := rc.take()
	rc.msgs = msgs[1:]
	if !bytes.Contains(msgs[0], []byte(`"conflated":true`)) {
		t.Fatalf("want the conflated seq 5, got %q", msgs[0])
	}
	expect(6, "full")
	pub(7)
	expect(7, "delta")
	// A gap in the seqs (a bus delivery jumping ahead): a reset, the
	// message in full, then deltas.
	if _, err := n.hub.deliver("prices.X", 10, tick(10)); err != nil {
		t.Fatal(err)
	}
	l.drain()
	if msgs := rc.take(); len(msgs) != 2 || !bytes.Contains(msgs[0], []byte(`"type":"reset"`)) {
		t.Fatalf("gap: want a reset and seq 10, got %q", msgs)
	} else {
		rc.msgs = msgs[1:]
	}
	expect(10, "full")
	pub(11)
	expect(11, "delta")
	// Several publishes drained together (writev): a chain of deltas.
	for i := 12; i <= 14; i++ {
		_, _, _ = n.Publish("prices.X", tick(i))
	}
	l.drain()
	batch := rc.take()
	if len(batch) != 3 {
		t.Fatalf("batch: %d messages", len(batch))
	}
	for i, m := range batch {
		rc.msgs = [][]byte{m}
		expect(12+i, "delta")
	}
	if got := n.hub.topics["prices.X"].deltaSubs.Load(); got != 1 {
		t.Fatalf("deltaSubs %d", got)
	}
	// Memory stays per topic: once drained, no kept frame holds its base.
	tp := n.hub.topics["prices.X"]
	for i := 0; i < tp.history.n; i++ {
		if f := tp.history.at(i); f.prev != nil {
			t.Fatalf("history seq %d still holds seq %d as its delta base", f.seq, f.prev.seq)
		}
	}
	if tp.prev == nil || tp.prev.seq != 14 {
		t.Fatalf("topic prev %v, want seq 14", tp.prev)
	}
	l.unsubscribe(c, "prices.X")
	if got := n.hub.topics["prices.X"].deltaSubs.Load(); got != 0 {
		t.Fatalf("deltaSubs after unsubscribe %d", got)
	}
}

// BenchmarkBroadcastDelta publishes a ~500-byte price board (or the demo's
// ~200-byte football events) to 10k subscribers per op, some or all of them asking for deltas, some also
// compressing: the delta (and its compressed form) is built once per
// publish, so allocs/op stay 0 and ns/delivery near plain.
// Run: go test -run '^$' -bench BroadcastDelta -benchmem ./server/
func BenchmarkBroadcastDelta(b *testing.B) {
	board := make([][]byte, 64)
	for i := range board {
		board[i] = tick(i)
	}
	for _, feed := range []struct {
		name string
		msgs [][]byte
	}{{"board", board}, {"football", demo.RecordedFootball(42, 64)}} {
		b.Run(feed.name, func(b *testing.B) { benchBroadcastDelta(b, feed.msgs) })
	}
}

func benchBroadcastDelta(b *testing.B, msgs [][]byte) {
	for _, mode := range []struct {
		name         string
		delta, zEach int // every n-th subscriber asks for deltas / compresses; 0 = none
	}{{"plain", 0, 0}, {"half-delta", 2, 0}, {"all-delta", 1, 0}, {"all-delta+deflate", 1, 1}} {
		b.Run("10k-subs/"+mode.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.History, cfg.LastValue = 0, ""
			cfg.Delta.Topics = "*"
			cfg.Compression.MinSize = 1
			n, err := NewNode(cfg)
			if err != nil {
				b.Fatal(err)
			}
			l := newLoop(n, nil)
			fakes := make([]*fakeConn, 10000)
			for i := range fakes {
				fakes[i] = &fakeConn{}
				c := &conn{gc: fakes[i], loop: l, phase: phaseOpen}
				if mode.zEach > 0 && i%mode.zEach == 0 {
					c.setDeflate(15)
				}
				l.addConn(c)
				l.subscribe(c, "prices.board", resume{delta: mode.delta > 0 && i%mode.delta == 0}, false)
			}
			for i := 0; i < 3; i++ { // warm up: buffers sized, chains started
				_, _, _ = n.Publish("prices.board", msgs[i])
				l.drain()
			}
			before := 0
			for _, f := range fakes {
				before += f.bytes
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := n.Publish("prices.board", msgs[i%len(msgs)]); err != nil {
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
			b.ReportMetric(float64(total-before)/deliveries, "wire-B/delivery")
		})
	}
}

// TestSubscriberEntrySize: the delta bits live in the padding of a
// subscriber entry (one per subscription), which stays 16 bytes.
func TestSubscriberEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(subscriber{}); n != 16 {
		t.Fatalf("subscriber is %d bytes, want 16", n)
	}
}

// TestDeltaLargeMessagesGoFull: above maxDeltaMessage no delta is computed.
func TestDeltaLargeMessagesGoFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Delta.Topics = "*"
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(n, nil)
	rc := &recConn{}
	c := &conn{gc: rc, loop: l, phase: phaseOpen}
	l.addConn(c)
	l.subscribe(c, "big", resume{delta: true}, false)
	big := []byte(`"` + string(bytes.Repeat([]byte("x"), maxDeltaMessage)) + `"`)
	for i := 0; i < 3; i++ {
		_, _, _ = n.Publish("big", big)
		l.drain()
	}
	_, _, _ = n.Publish("big", tick(1)) // small again, but its base is large
	l.drain()
	for i, m := range rc.take() {
		if bytes.Contains(m, []byte(`"delta":"fossil"`)) {
			t.Fatalf("message %d is a delta", i+1)
		}
	}
	_, _, _ = n.Publish("big", tick(2))
	l.drain()
	if m := rc.take(); len(m) != 1 || !bytes.Contains(m[0], []byte(`"delta":"fossil"`)) {
		t.Fatalf("small after small: want a delta, got %q", m)
	}
}
