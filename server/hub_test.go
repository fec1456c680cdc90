package server

import (
	"testing"
	"time"
)

func TestDeliverKeepsBusSeq(t *testing.T) {
	var events []string
	cfg := DefaultConfig()
	cfg.OnInterest = func(topic string, on bool) {
		if on {
			events = append(events, "+"+topic)
		} else {
			events = append(events, "-"+topic)
		}
	}
	n, l, c, f := newOneSubscriber(t, cfg, "a")

	for _, seq := range []uint64{5, 5, 3, 6, 9} { // duplicate 5 and stale 3 are dropped; 7, 8 lost: a reset before 9
		if _, err := n.Deliver("a", seq, []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	l.drain()
	if f.frames != 4 {
		t.Fatalf("frames delivered: %d, want 4 (5, 6, reset, 9)", f.frames)
	}
	if seq, _, _ := n.Publish("a", []byte(`2`)); seq != 10 {
		t.Fatalf("publish after deliver: seq %d, want 10", seq)
	}
	if _, err := n.Deliver("bad topic", 1, []byte(`1`)); err == nil {
		t.Fatal("invalid topic accepted")
	}
	l.unsubscribe(c, "a")
	if len(events) != 2 || events[0] != "+a" || events[1] != "-a" {
		t.Fatalf("interest events: %v", events)
	}
}

func TestFlushIntervalGathersPublishes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushInterval = time.Hour // never ticks in this test: enqueue alone must not wake the loop
	n, l, _, f := newOneSubscriber(t, cfg, "a")
	for i := 0; i < 3; i++ {
		_, _, _ = n.Publish("a", []byte(`1`))
	}
	if len(l.queue) != 3 {
		t.Fatalf("queued %d frames, want 3", len(l.queue))
	}
	l.drain()
	if f.frames != 3 {
		t.Fatalf("frames written: %d, want 3", f.frames)
	}
}

// newOneSubscriber builds a node with one fake loop and one open connection
// subscribed to topic.
func newOneSubscriber(t *testing.T, cfg Config, topic string) (*Node, *loop, *conn, *fakeConn) {
	t.Helper()
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(n, nil)
	f := &fakeConn{}
	c := &conn{gc: f, loop: l, phase: phaseOpen}
	l.addConn(c)
	l.subscribe(c, topic, resume{}, false)
	return n, l, c, f
}
