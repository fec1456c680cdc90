package server

import (
	"encoding/json"
	"testing"
	"time"
)

// backlogConn is a fake connection whose unsent backlog the test sets; it
// records every frame written to it.
type backlogConn struct {
	fakeConn
	buffered int
	written  [][]byte
}

func (b *backlogConn) Write(p []byte) (int, error) {
	b.written = append(b.written, append([]byte(nil), p...))
	return len(p), nil
}

func (b *backlogConn) Writev(ps [][]byte) (int, error) {
	n := 0
	for _, p := range ps {
		k, _ := b.Write(p)
		n += k
	}
	return n, nil
}

func (b *backlogConn) OutboundBuffered() int { return b.buffered }
func (b *backlogConn) Fd() int               { return -1 }

// messages decodes the frames written so far (several per write allowed).
func (b *backlogConn) messages(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, w := range b.written {
		for len(w) > 0 {
			if w[0] != 0x81 || w[1] >= 126 {
				t.Fatalf("want a short text frame, got % x", w[:2])
			}
			n := int(w[1])
			var m map[string]any
			if err := json.Unmarshal(w[2:2+n], &m); err != nil {
				t.Fatalf("bad JSON %q: %v", w[2:2+n], err)
			}
			out = append(out, m)
			w = w[2+n:]
		}
	}
	b.written = nil
	return out
}

func newFeedLoop(t *testing.T, mod func(*Config)) (*Node, *loop) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxPending = 1000
	if mod != nil {
		mod(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, newLoop(n, nil)
}

func addBacklogConn(l *loop, topic string, r resume) (*conn, *backlogConn) {
	b := &backlogConn{}
	c := &conn{gc: b, loop: l, phase: phaseOpen}
	l.addConn(c)
	l.subscribe(c, topic, r, false)
	return c, b
}

func publish(t *testing.T, n *Node, topic string, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		if _, _, err := n.Publish(topic, []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSlowConnIsConflatedThenCatchesUp(t *testing.T) {
	n, l := newFeedLoop(t, nil)
	c, b := addBacklogConn(l, "prices.a", resume{})
	b.buffered = 2000
	publish(t, n, "prices.a", 1)
	l.drain()
	if c.state&stateSlow == 0 {
		t.Fatal("a conn over MaxPending is not in slow mode")
	}
	for i := 0; i < 4; i++ { // seqs 2..5: 2, 3, 4 are replaced by 5
		publish(t, n, "prices.a", 1)
		l.drain()
	}
	if got := b.messages(t); len(got) != 1 || got[0]["seq"] != 1.0 {
		t.Fatalf("written while slow: %v", got)
	}
	b.buffered = 400 // under MaxPending/2
	l.checkSlow()
	got := b.messages(t)
	if len(got) != 1 || got[0]["seq"] != 5.0 || got[0]["conflated"] != true {
		t.Fatalf("want one conflated frame with seq 5, got %v", got)
	}
	if sk, _ := got[0]["skipped"].([]any); len(sk) != 2 || sk[0] != 2.0 || sk[1] != 4.0 {
		t.Fatalf("skipped = %v, want [2,4]", got[0]["skipped"])
	}
	if c.state&stateSlow != 0 || len(l.slowList) != 0 {
		t.Fatal("still in slow mode after catching up")
	}
	if st := &l.stats; st.slowMode.Load() != 1 || st.conflated.Load() != 3 || st.slowClosed.Load() != 0 {
		t.Fatalf("slow mode %d, conflated %d, slow closed %d: want 1, 3, 0",
			st.slowMode.Load(), st.conflated.Load(), st.slowClosed.Load())
	}
	checkRetainedRefs(t, n, "prices.a")
}

func TestSlowConnClosedWithoutLastValueOrAfterGrace(t *testing.T) {
	n, l := newFeedLoop(t, nil)
	c, b := addBacklogConn(l, "plain", resume{})
	b.buffered = 2000
	publish(t, n, "plain", 2) // the second one cannot be conflated
	l.drain()
	publish(t, n, "plain", 1)
	l.drain()
	if c.phase != phaseClosing || c.state&stateSlow != 0 || c.subLen() != 0 {
		t.Fatalf("phase %d, state %#x, subs %d: want closing, not slow, unsubscribed", c.phase, c.state, c.subLen())
	}

	c2, b2 := addBacklogConn(l, "prices.b", resume{})
	b2.buffered = 2000
	publish(t, n, "prices.b", 2)
	l.drain()
	l.now += millis(n.cfg.SlowGrace)
	l.checkSlow()
	if c2.phase != phaseClosing {
		t.Fatal("a conn behind for the whole grace time is still open")
	}
	if got := l.stats.slowClosed.Load(); got != 2 {
		t.Fatalf("slow closes %d, want 2", got)
	}
	checkRetainedRefs(t, n, "plain")
	checkRetainedRefs(t, n, "prices.b")
}

func TestUnsubscribeWhileSlowDropsPending(t *testing.T) {
	n, l := newFeedLoop(t, nil)
	c, b := addBacklogConn(l, "prices.a", resume{})
	b.buffered = 2000
	publish(t, n, "prices.a", 1)
	l.drain()
	publish(t, n, "prices.a", 1) // waits in the conflation slot
	l.drain()
	l.unsubscribe(c, "prices.a")
	checkRetainedRefs(t, n, "prices.a")
	b.buffered = 0
	l.checkSlow()
	if got := b.messages(t); len(got) != 1 {
		t.Fatalf("after unsubscribing, got %d messages, want only seq 1", len(got))
	}
}

// checkRetainedRefs checks that a topic's history and last value hold
// exactly one ref each once no loop or slow conn needs them: a missing
// release pins memory, a double one recycles a frame still in use.
func checkRetainedRefs(t *testing.T, n *Node, name string) {
	t.Helper()
	h := n.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	tp := h.topics[name]
	for i := 0; i < tp.history.n; i++ {
		f := tp.history.at(i)
		want := int32(1)
		if f == tp.last {
			want = 2
		}
		if got := f.refs.Load(); got != want {
			t.Errorf("%s seq %d: refs %d, want %d", name, f.seq, got, want)
		}
	}
}

func TestSubscribeSkipsFramesAlreadyQueued(t *testing.T) {
	n, l := newFeedLoop(t, nil)
	_, old := addBacklogConn(l, "prices.q", resume{})
	publish(t, n, "prices.q", 3) // queued on the loop, not drained yet

	_, fresh := addBacklogConn(l, "prices.q", resume{})
	if len(l.catchUp) == 0 {
		t.Fatal("no snapshot for the new subscriber")
	}
	l.catchUp = l.catchUp[:0]
	_, resumed := addBacklogConn(l, "prices.q", resume{since: 1, has: true})
	resumed.written = [][]byte{append([]byte(nil), l.catchUp...)}
	l.catchUp = l.catchUp[:0]
	l.drain()
	publish(t, n, "prices.q", 1)
	l.drain()

	if got := old.messages(t); len(got) != 4 {
		t.Fatalf("old subscriber got %d messages, want 4", len(got))
	}
	if got := fresh.messages(t); len(got) != 1 || got[0]["seq"] != 4.0 {
		t.Fatalf("new subscriber got %v from the queue, want only seq 4 (1..3 are its snapshot)", got)
	}
	got := resumed.messages(t)
	if len(got) != 3 || got[0]["seq"] != 2.0 || got[1]["seq"] != 3.0 || got[2]["seq"] != 4.0 {
		t.Fatalf("resumed subscriber got %v, want replay 2, 3 then live 4", got)
	}
}

func TestResumeFromLastValueWithoutHistory(t *testing.T) {
	n, l := newFeedLoop(t, func(c *Config) { c.History = 0 })
	publish(t, n, "prices.h", 5)
	_, b := addBacklogConn(l, "prices.h", resume{since: 4, has: true})
	b.written = [][]byte{append([]byte(nil), l.catchUp...)}
	l.catchUp = l.catchUp[:0]
	if got := b.messages(t); len(got) != 1 || got[0]["seq"] != 5.0 || got[0]["snapshot"] != nil {
		t.Fatalf("missed only the last value: got %v, want seq 5 as a normal delivery", got)
	}
	_, b = addBacklogConn(l, "prices.h", resume{since: 3, has: true})
	b.written = [][]byte{append([]byte(nil), l.catchUp...)}
	l.catchUp = l.catchUp[:0]
	if got := b.messages(t); len(got) != 2 || got[0]["type"] != "reset" || got[0]["from"] != 5.0 || got[1]["snapshot"] != true {
		t.Fatalf("missed two without history: got %v, want reset from 5 and the snapshot", got)
	}
}

func TestIdleTopicsHistoryExpires(t *testing.T) {
	n, _ := newFeedLoop(t, func(c *Config) { c.HistoryTTL = time.Millisecond })
	for _, name := range []string{"a", "b", "prices.c"} {
		publish(t, n, name, 3)
	}
	time.Sleep(5 * time.Millisecond)
	n.hub.expireSome(2) // a few topics per call
	n.hub.expireSome(2)
	h := n.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.aging.topics) != 0 {
		t.Fatalf("%d topics still listed with history", len(h.aging.topics))
	}
	for name, tp := range h.topics {
		if tp.history.n != 0 || tp.agingPos != 0 {
			t.Errorf("%s: %d history entries left", name, tp.history.n)
		}
	}
	if last := h.topics["prices.c"].last; last == nil || last.refs.Load() != 1 {
		t.Fatal("the last value must outlive the history TTL, with one ref")
	}
}

func TestReplayLimitedToMaxPending(t *testing.T) {
	n, l := newFeedLoop(t, nil) // MaxPending 1000: about 27 of these frames
	publish(t, n, "plain", 50)

	_, b := addBacklogConn(l, "plain", resume{since: 40, has: true})
	b.written = [][]byte{append([]byte(nil), l.catchUp...)}
	l.catchUp = l.catchUp[:0]
	if got := b.messages(t); len(got) != 10 || got[0]["seq"] != 41.0 {
		t.Fatalf("a replay that fits: got %d messages from %v, want 41..50", len(got), got[0]["seq"])
	}

	_, b = addBacklogConn(l, "plain", resume{since: 0, has: true})
	size := len(l.catchUp)
	b.written = [][]byte{append([]byte(nil), l.catchUp...)}
	l.catchUp = l.catchUp[:0]
	got := b.messages(t)
	if len(got) < 2 || got[0]["type"] != "reset" || got[0]["from"] != got[1]["seq"] || got[len(got)-1]["seq"] != 50.0 {
		t.Fatalf("too long a replay: want reset from the newest messages that fit, got %v", got)
	}
	for i := 2; i < len(got); i++ {
		if got[i]["seq"] != got[i-1]["seq"].(float64)+1 {
			t.Fatalf("gap in the reset's messages: %v", got)
		}
	}
	if size > 1100 { // the messages fit in MaxPending; the reset frame comes on top
		t.Fatalf("catch-up of %d bytes exceeds MaxPending", size)
	}
}
