package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/internal/faultproxy"
)

// closeBound is how long Close may take with NATS stalled: far above what
// it needs (about dropTimeout), far below the JetStream timeouts (10 s and
// more, retried for ever) that used to hold it.
const closeBound = 5 * time.Second

// closeWithin fails the test if sub.Close takes longer than closeBound.
func closeWithin(t *testing.T, sub *Subscriber) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { sub.Close(); close(done) }()
	select {
	case <-done:
		t.Logf("Close took %v", time.Since(start))
	case <-time.After(closeBound):
		t.Fatalf("Close still waiting after %v with NATS stalled", closeBound)
	}
}

// The link to NATS stalls (the TCP connection stays up, nothing gets
// through) in the middle of the catch-up after a reconnect: Close still
// returns promptly instead of waiting for JetStream.
func TestSubscriberCloseDuringStalledCatchUp(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, _ := NewSequencer(connect(t, e.URL()))
	proxy, err := faultproxy.Start(e.URL()[len("nats://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	subConn := connect(t, "nats://"+proxy.Addr())

	// Once armed, the first delivery (the catch-up's first message) stalls
	// the link: the rest of the catch-up then waits on NATS.
	var once sync.Once
	var arm bool
	var mu sync.Mutex
	stalled := make(chan struct{})
	rec := newRecorder()
	sub := NewSubscriber(subConn, func(topic string, seq uint64, data []byte) {
		mu.Lock()
		a := arm
		mu.Unlock()
		if a {
			once.Do(func() { proxy.Stall(); close(stalled) })
		}
		rec.handle(topic, seq, data)
	}, nil, nil)
	defer sub.Close()
	topics := []string{"stall.a", "stall.b", "stall.c"}
	for _, topic := range topics {
		sub.Interest(topic, true)
	}
	settle(t, sub)
	for _, topic := range topics {
		publish(t, seqr, topic, "1")
		rec.next(t)
	}

	proxy.Cut()
	waitFor(t, "disconnect", func() bool { return !subConn.IsConnected() })
	for _, topic := range topics {
		for i := 2; i <= 3; i++ {
			publish(t, seqr, topic, fmt.Sprint(i))
		}
	}
	mu.Lock()
	arm = true
	mu.Unlock()
	proxy.Restore()
	select {
	case <-stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("no catch-up delivery after reconnecting")
	}
	closeWithin(t, sub)
}

// The link stalls while a newly followed topic is being subscribed and
// primed: Close does not wait for the flush or the stored messages.
func TestSubscriberCloseDuringStalledPrime(t *testing.T) {
	e := startServer(t, 0, "")
	defer e.Shutdown()
	seqr, _ := NewSequencer(connect(t, e.URL()))
	publish(t, seqr, "prime.a", "1")
	proxy, err := faultproxy.Start(e.URL()[len("nats://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	subConn := connect(t, "nats://"+proxy.Addr())
	rec := newRecorder()
	sub := NewSubscriber(subConn, rec.handle, func(string, []Stored) {}, nil)
	defer sub.Close()

	proxy.Stall()
	sub.Interest("prime.a", true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := sub.Settle(ctx); err == nil {
		t.Fatal("Settle succeeded through a stalled link")
	}
	closeWithin(t, sub)
}
