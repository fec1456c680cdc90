package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/internal/faultproxy"
	"github.com/nats-io/nats.go/jetstream"
)

// expectRun checks that rec receives topic's seqs from..to next, in order.
func expectRun(t *testing.T, rec *recorder, topic string, from, to uint64) {
	t.Helper()
	for want := from; want <= to; want++ {
		if got := rec.next(t); got.topic != topic || got.seq != want {
			t.Fatalf("want %s/%d, got %+v", topic, want, got)
		}
	}
}

// A subscriber whose link to NATS is cut misses what is published
// meanwhile on the live subject; once the link is back it reads those
// messages from the stream and delivers them in order, before any new
// publish arrives, so nothing is lost.
func TestSubscriberCatchesUpAfterLinkCut(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, _ := NewSequencer(connect(t, e.URL()))
	proxy, err := faultproxy.Start(e.URL()[len("nats://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	subConn := connect(t, "nats://"+proxy.Addr())
	rec := newRecorder()
	sub := NewSubscriber(subConn, rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("cut.a", true)
	sub.Interest("cut.b", true)
	settle(t, sub)
	publish(t, seqr, "cut.a", "1")
	expectRun(t, rec, "cut.a", 1, 1)

	proxy.Cut()
	waitFor(t, "disconnect", func() bool { return !subConn.IsConnected() })
	for i := 2; i <= 6; i++ {
		publish(t, seqr, "cut.a", fmt.Sprint(i))
	}
	publish(t, seqr, "cut.b", "1") // never seen live before the cut
	proxy.Restore()
	waitFor(t, "reconnect", subConn.IsConnected)

	got := map[string][]uint64{}
	for range 6 {
		m := rec.next(t)
		got[m.topic] = append(got[m.topic], m.seq)
	}
	if fmt.Sprint(got["cut.a"]) != "[2 3 4 5 6]" || fmt.Sprint(got["cut.b"]) != "[1]" {
		t.Fatalf("after reconnect got %v, want cut.a 2..6 and cut.b 1", got)
	}
	publish(t, seqr, "cut.a", "7")
	expectRun(t, rec, "cut.a", 7, 7)
	select {
	case m := <-rec.ch:
		t.Fatalf("unexpected extra delivery %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
	noReadersLeft(t, seqr)
}

// noReadersLeft checks that the consumers made to read the stream were
// deleted once read (the Sequencer makes none).
func noReadersLeft(t *testing.T, seqr *Sequencer) {
	t.Helper()
	js, err := jetstream.New(seqr.nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reading consumers deleted", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, StreamName)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Consumers == 0
	})
}

// A subscriber more than its inbox behind has messages dropped by NATS (slow
// consumer); the jump in seq makes it read them from the stream, so the
// handler still sees every seq once, in order.
func TestSubscriberFillsWhatNATSDropped(t *testing.T) {
	defer func(n int) { inboxSize = n }(inboxSize)
	inboxSize = 4
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, _ := NewSequencer(connect(t, e.URL()))
	gate := make(chan struct{})
	rec := newRecorder()
	sub := NewSubscriber(connect(t, e.URL()), func(topic string, seq uint64, data []byte) {
		<-gate
		rec.handle(topic, seq, data)
	}, nil, nil)
	defer sub.Close()
	sub.Interest("behind", true)
	settle(t, sub)
	const n = 40
	for i := 1; i <= n; i++ {
		publish(t, seqr, "behind", fmt.Sprint(i))
	}
	time.Sleep(100 * time.Millisecond) // let NATS overflow the inbox
	close(gate)
	expectRun(t, rec, "behind", 1, n)
	noReadersLeft(t, seqr)
}
