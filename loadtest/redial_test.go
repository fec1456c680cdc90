package loadtest

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestReconnectHintAndRetryAfter(t *testing.T) {
	for reason, want := range map[string]time.Duration{
		"going away; reconnect in 4211ms":   4211 * time.Millisecond,
		"disconnected; reconnect in 0ms":    0,
		"going away":                        -1,
		"reconnect in soonms":               -1,
		"reconnect in 99999999ms":           maxHint,
		"account suspended; reconnect in 5": -1,
	} {
		if got := reconnectHint([]byte(reason)); got != want {
			t.Errorf("reconnectHint(%q) = %v, want %v", reason, got, want)
		}
	}
	for resp, want := range map[string]time.Duration{
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}":      time.Second,
		"HTTP/1.1 503 Service Unavailable\r\nretry-after:3\r\n\r\n":                              3 * time.Second,
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\nRetry-After: 9":            0, // in the body, not a header
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\n\r\n": 0,
	} {
		if got := retryAfter([]byte(resp)); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", resp, got, want)
		}
	}
}

// Redials come out earliest first, whatever order they were queued in.
func TestRedialQueueOrder(t *testing.T) {
	var q redialQueue
	for range 1000 {
		q.push(redial{at: rand.Int64N(1e6)})
	}
	last := int64(-1)
	for len(q) > 0 {
		r := q.pop()
		if r.at < last {
			t.Fatalf("%d after %d", r.at, last)
		}
		last = r.at
	}
}
