package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/wire"
	"github.com/nats-io/nats.go"
)

type received struct {
	topic string
	seq   uint64
	data  string
}

// recorder is a Handler that keeps what it got.
type recorder struct {
	mu  sync.Mutex
	got []received
	ch  chan received
}

func newRecorder() *recorder { return &recorder{ch: make(chan received, 1024)} }

func (r *recorder) handle(topic string, seq uint64, data []byte) {
	m := received{topic, seq, string(data)}
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	r.ch <- m
}

func (r *recorder) next(t *testing.T) received {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return received{}
	}
}

func startServer(t *testing.T, port int, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(port, dir)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(url, t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitFor(t, "connected", nc.IsConnected)
	return nc
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func settle(t *testing.T, s *Subscriber) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, s *Sequencer, topic, data string) uint64 {
	t.Helper()
	seq, _, err := s.Publish(topic, []byte(data))
	if err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	return seq
}

func TestPublishReachesInterestedSubscriber(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, err := NewSequencer(connect(t, e.URL()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	sub := NewSubscriber(connect(t, e.URL()), rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("prices.BTC-USD", true)
	settle(t, sub)

	for i := 1; i <= 3; i++ {
		if seq := publish(t, seqr, "prices.BTC-USD", fmt.Sprint(i*10)); seq != uint64(i) {
			t.Fatalf("publish %d got seq %d", i, seq)
		}
	}
	for i := 1; i <= 3; i++ {
		want := received{"prices.BTC-USD", uint64(i), fmt.Sprint(i * 10)}
		if got := rec.next(t); got != want {
			t.Fatalf("message %d: got %+v, want %+v", i, got, want)
		}
	}
}

func TestInterestOnOff(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, _ := NewSequencer(connect(t, e.URL()))
	rec := newRecorder()
	sub := NewSubscriber(connect(t, e.URL()), rec.handle, nil, nil)
	defer sub.Close()

	// Not interested yet: nothing arrives. "b" is the marker that proves
	// the earlier "a" publish had its chance to arrive (same stream, in order).
	sub.Interest("b", true)
	settle(t, sub)
	publish(t, seqr, "a", `"early"`)
	publish(t, seqr, "b", `"marker1"`)
	if got := rec.next(t); got.topic != "b" {
		t.Fatalf("got %+v before any interest in it", got)
	}

	sub.Interest("a", true)
	settle(t, sub)
	publish(t, seqr, "a", `"wanted"`)
	if got := rec.next(t); got != (received{"a", 2, `"wanted"`}) {
		t.Fatalf("got %+v, want a/2", got)
	}

	// Flap off-on-off: coalesced into off.
	sub.Interest("a", false)
	sub.Interest("a", true)
	sub.Interest("a", false)
	settle(t, sub)
	publish(t, seqr, "a", `"late"`)
	publish(t, seqr, "b", `"marker2"`)
	if got := rec.next(t); got.topic != "b" {
		t.Fatalf("got %+v after interest was dropped", got)
	}
}

// Two sequencers stand for two fanwire nodes sharing NATS: their publishes
// of one topic interleave, and the seqs still count 1, 2, 3... once each.
func TestTwoSequencersShareOneSeq(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	a, _ := NewSequencer(connect(t, e.URL()))
	b, _ := NewSequencer(connect(t, e.URL()))
	rec := newRecorder()
	sub := NewSubscriber(connect(t, e.URL()), rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("shared", true)
	settle(t, sub)

	const perNode = 20
	var wg sync.WaitGroup
	seqs := make(chan uint64, 2*perNode)
	for _, s := range []*Sequencer{a, b} {
		wg.Go(func() {
			for i := range perNode {
				seq, _, err := s.Publish("shared", []byte(fmt.Sprint(i)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d assigned twice", s)
		}
		seen[s] = true
	}
	for i := uint64(1); i <= 2*perNode; i++ {
		if !seen[i] {
			t.Fatalf("seq %d never assigned", i)
		}
		if got := rec.next(t); got.seq != i {
			t.Fatalf("subscriber got seq %d, want %d (in order)", got.seq, i)
		}
	}
}

func TestUnavailableIsError(t *testing.T) {
	e := startServer(t, 0, "")
	seqr, _ := NewSequencer(connect(t, e.URL()))
	publish(t, seqr, "a", "1")
	e.Shutdown()
	_, _, err := seqr.Publish("a", []byte("2"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish with NATS down: err %v, want ErrUnavailable", err)
	}
	if _, _, err := seqr.Publish("bad topic", []byte("1")); !errors.Is(err, wire.ErrInvalidTopic) {
		t.Fatalf("bad topic: err %v, want ErrInvalidTopic", err)
	}

	// A node may start before NATS: Connect succeeds, publishes fail.
	nc, err := Connect("nats://"+freeAddr(t), "early", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	early, _ := NewSequencer(nc)
	if _, _, err := early.Publish("a", []byte("1")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish before NATS is up: err %v, want ErrUnavailable", err)
	}
}

// NATS restarts on the same port with the same store: subscriptions come
// back by themselves and seq carries on where it was.
func TestReconnectCarriesOn(t *testing.T) {
	dir := t.TempDir()
	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	var port int
	fmt.Sscan(portStr, &port)
	e := startServer(t, port, dir)
	seqr, _ := NewSequencer(connect(t, e.URL()))
	rec := newRecorder()
	subConn := connect(t, e.URL())
	sub := NewSubscriber(subConn, rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("r", true)
	settle(t, sub)
	publish(t, seqr, "r", "1")
	rec.next(t)

	e.Shutdown()
	waitFor(t, "disconnect", func() bool { return !subConn.IsConnected() })
	e = startServer(t, port, dir)
	defer e.Shutdown()
	waitFor(t, "reconnect", func() bool { return subConn.IsConnected() && seqr.nc.IsConnected() })
	settle(t, sub) // flushes: the resubscription has reached the server

	if seq := publish(t, seqr, "r", "2"); seq != 2 {
		t.Fatalf("seq after restart = %d, want 2", seq)
	}
	if got := rec.next(t); got != (received{"r", 2, "2"}) {
		t.Fatalf("after reconnect got %+v", got)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
