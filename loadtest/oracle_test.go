package loadtest

import (
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
)

// The delivery oracle tells a silent gap from one the server announced
// (reset, or a conflated delivery with "skipped"), and counts resets and
// duplicates / out-of-order seqs.
func TestOracleSeparatesAnnouncedFromSilentGaps(t *testing.T) {
	plan := Plan{URL: "ws://127.0.0.1:1/ws", Conns: 1, Rate: 1, TrackSeq: true}
	plan.withDefaults()
	l, err := newLoop(0, &plan, &target{}, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.p.close()
	slot := l.allocSlot()
	l.conns[slot].state = stOpen
	var data []byte
	for _, m := range []string{
		`{"topic":"a","seq":1,"data":1}`,
		`{"topic":"a","seq":2,"data":1}`,
		`{"type":"reset","topic":"a","from":6,"epoch":"e"}`, // 3..5 announced
		`{"topic":"a","seq":6,"data":1}`,
		`{"topic":"a","seq":9,"data":1}`, // 7, 8 silent
		`{"topic":"a","seq":12,"data":1,"conflated":true,"skipped":[10,11]}`,
		`{"topic":"a","seq":12,"data":1}`, // duplicate
	} {
		data = codec.AppendFrame(data, codec.OpText, []byte(m))
	}
	if _, alive := l.frames(slot, data, time.Now().UnixNano()); !alive {
		t.Fatal("frames failed")
	}
	s := l.stats.counters()
	if s.Messages != 6 || s.Resets != 1 || s.Announced != 5 || s.Gaps != 2 || s.Dups != 1 {
		t.Fatalf("counters %+v: want 6 messages, 1 reset, 5 announced, 2 silent, 1 dup", s)
	}
}
