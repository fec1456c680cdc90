package bus

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/internal/faultproxy"
)

// A stalled link (NATS accepts nothing, the TCP connection stays up) makes
// every publish fail with ErrUnavailable within about publishTimeout, even
// many at once on one topic: they must not queue behind each other.
func TestPublishDuringStallFailsInBoundedTime(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	proxy, err := faultproxy.Start(e.URL()[len("nats://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	seqr, _ := NewSequencer(connect(t, "nats://"+proxy.Addr()))
	publish(t, seqr, "stall", "1")

	proxy.Stall()
	const n = 8
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, _, err := seqr.Publish("stall", []byte(fmt.Sprint(i)))
			errs <- err
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("publish during stall: %v, want ErrUnavailable", err)
		}
	}
	if limit := publishTimeout + 2*time.Second; took > limit {
		t.Fatalf("%d concurrent publishes during a stall took %v, want under %v", n, took, limit)
	}
	proxy.Restore()
	waitFor(t, "publish works again", func() bool { _, _, err := seqr.Publish("stall", []byte("2")); return err == nil })
}

// NATS comes back without the stream (a new server, its store lost): the
// next publishes recreate it instead of failing until fanwire restarts.
func TestPublishRecreatesLostStream(t *testing.T) {
	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	var port int
	fmt.Sscan(portStr, &port)
	e := startServer(t, port, t.TempDir())
	nc := connect(t, e.URL())
	seqr, _ := NewSequencer(nc)
	publish(t, seqr, "lost", "1")
	e.Shutdown()
	waitFor(t, "disconnect", func() bool { return !nc.IsConnected() })
	e = startServer(t, port, t.TempDir())
	defer e.Shutdown()
	waitFor(t, "reconnect", nc.IsConnected)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := seqr.Publish("lost", []byte("2"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish still failing 5s after NATS came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A publish with an idempotency key is stored once: a retry (say after a
// timeout whose publish was in fact stored) answers the original seq and
// says it is a duplicate, from this or any other node.
func TestIdempotentPublish(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	a, _ := NewSequencer(connect(t, e.URL()))
	b, _ := NewSequencer(connect(t, e.URL()))
	rec := newRecorder()
	sub := NewSubscriber(connect(t, e.URL()), rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("idem", true)
	settle(t, sub)

	seq, dup, err := a.PublishKeyed("idem", []byte("1"), "k1")
	if err != nil || seq != 1 || dup {
		t.Fatalf("first keyed publish: seq %d dup %v err %v", seq, dup, err)
	}
	publish(t, a, "idem", "2")
	for _, s := range []*Sequencer{a, b} {
		seq, dup, err = s.PublishKeyed("idem", []byte("1"), "k1")
		if err != nil || seq != 1 || !dup {
			t.Fatalf("retry: seq %d dup %v err %v, want seq 1 duplicate", seq, dup, err)
		}
	}
	// Keys are per topic.
	if seq, dup, err := b.PublishKeyed("idem.other", []byte("1"), "k1"); err != nil || seq != 1 || dup {
		t.Fatalf("same key, other topic: seq %d dup %v err %v", seq, dup, err)
	}
	seq, dup, err = b.PublishKeyed("idem", []byte("3"), "k3")
	if err != nil || seq != 3 || dup {
		t.Fatalf("new key: seq %d dup %v err %v, want 3", seq, dup, err)
	}
	expectRun(t, rec, "idem", 1, 3)
	select {
	case m := <-rec.ch:
		t.Fatalf("a duplicate was delivered: %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

// When the stream comes back empty (NATS lost its store), seqs start over:
// a subscriber that followed the old stream says so instead of dropping the
// new messages as duplicates.
func TestSubscriberNoticesRecreatedStream(t *testing.T) {
	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	var port int
	fmt.Sscan(portStr, &port)
	e := startServer(t, port, t.TempDir())
	seqr, _ := NewSequencer(connect(t, e.URL()))
	rec := newRecorder()
	subConn := connect(t, e.URL())
	sub := NewSubscriber(subConn, rec.handle, nil, nil)
	defer sub.Close()
	sub.Interest("re", true)
	settle(t, sub)
	for i := 1; i <= 3; i++ {
		publish(t, seqr, "re", fmt.Sprint(i))
	}
	expectRun(t, rec, "re", 1, 3)
	e.Shutdown()
	waitFor(t, "disconnect", func() bool { return !subConn.IsConnected() })
	e = startServer(t, port, t.TempDir())
	defer e.Shutdown()
	waitFor(t, "reconnect", func() bool { return subConn.IsConnected() && seqr.nc.IsConnected() })
	settle(t, sub)
	waitFor(t, "publish works on the new stream", func() bool { _, _, err := seqr.Publish("re", []byte("1")); return err == nil })
	select {
	case <-sub.StreamLost():
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber did not notice that the stream started over")
	}
}
