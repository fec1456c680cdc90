package api

import (
	"net/http"
	"sync"
	"time"
)

// Idempotency keys: a publisher may name a publish (header Idempotency-Key
// on POST /publish/{topic}, field "idempotency_key" on a batch line) so that
// a retry after a timeout or a lost answer cannot publish it twice. Within
// the window a repeated key on the same topic answers the original seq with
// "duplicate":true. A Publisher that implements KeyedPublisher (the bus: keys
// are checked by the stream, across nodes) does it itself; for any other
// (a single node) the handler keeps the keys in memory.
const (
	IdempotencyHeader = "Idempotency-Key"
	maxKeyLen         = 128
	// DedupWindow and dedupMaxKeys bound the in-memory keys: past the window
	// or beyond the count (oldest first) a key is forgotten.
	DedupWindow  = 2 * time.Minute
	dedupMaxKeys = 100_000
)

// KeyedPublisher publishes with an idempotency key ("" = none).
type KeyedPublisher interface {
	PublishKeyed(topic string, data []byte, key string) (seq uint64, duplicate bool, err error)
}

// validKey: 1-128 printable ASCII characters, no spaces.
func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

const invalidKeyText = "the idempotency key must be 1-128 printable ASCII characters without spaces"

// keyOf reads the request's Idempotency-Key ("" if none; ok false if invalid).
func keyOf(r *http.Request) (string, bool) {
	vals, present := r.Header[IdempotencyHeader]
	if !present {
		return "", true
	}
	if len(vals) != 1 || !validKey(vals[0]) {
		return "", false
	}
	return vals[0], true
}

// publish sends one message through the handler's publisher, de-duplicated
// by key when one is given. subscribers < 0: not known (also for duplicates).
func (h *handler) publish(topic string, data []byte, key string) (seq uint64, subscribers int, duplicate bool, err error) {
	if key == "" {
		seq, subscribers, err = h.pub.Publish(topic, data)
		return seq, subscribers, false, err
	}
	if kp, ok := h.pub.(KeyedPublisher); ok {
		seq, duplicate, err = kp.PublishKeyed(topic, data, key)
		return seq, -1, duplicate, err
	}
	return h.dedup.publish(h.pub, topic, data, key)
}

// dedup is the in-memory window of keys for a publisher without its own.
type dedup struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*dedupEntry
	order   []*dedupEntry // oldest first
}

type dedupEntry struct {
	key  string
	at   time.Time
	done chan struct{} // closed when the publish has an answer
	seq  uint64
	err  error
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: window, max: max, now: time.Now, entries: make(map[string]*dedupEntry)}
}

func (d *dedup) publish(p Publisher, topic string, data []byte, key string) (uint64, int, bool, error) {
	k := topic + " " + key // a space is in no topic
	for {
		d.mu.Lock()
		now := d.now()
		d.forget(now)
		if e := d.entries[k]; e != nil {
			d.mu.Unlock()
			<-e.done // the same key in flight: wait for its answer
			if e.err == nil {
				return e.seq, -1, true, nil
			}
			continue // it failed and was dropped: publish ourselves
		}
		e := &dedupEntry{key: k, at: now, done: make(chan struct{})}
		d.entries[k] = e
		d.order = append(d.order, e)
		d.mu.Unlock()

		seq, subs, err := p.Publish(topic, data)
		d.mu.Lock()
		e.seq, e.err = seq, err
		if err != nil && d.entries[k] == e {
			delete(d.entries, k) // not published: a retry must publish
		}
		d.mu.Unlock()
		close(e.done)
		return seq, subs, false, err
	}
}

// forget drops keys past the window, and the oldest beyond max. Caller holds mu.
func (d *dedup) forget(now time.Time) {
	i := 0
	for ; i < len(d.order); i++ {
		e := d.order[i]
		if now.Sub(e.at) < d.window && len(d.order)-i < d.max {
			break
		}
		if d.entries[e.key] == e {
			delete(d.entries, e.key)
		}
		d.order[i] = nil
	}
	d.order = d.order[i:]
}
