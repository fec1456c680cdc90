package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func publishWithKey(t *testing.T, h http.Handler, topic, body, key string) (int, PublishResult, http.Header) {
	t.Helper()
	req := httptest.NewRequest("POST", "/publish/"+topic, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r PublishResult
	_ = json.Unmarshal(rec.Body.Bytes(), &r)
	return rec.Code, r, rec.Header()
}

// A retried publish with the same Idempotency-Key is not published again:
// it answers 200 with the original seq and "duplicate":true. Keys are per
// topic; a publish that failed may be retried with its key.
func TestIdempotencyKeyDeduplicates(t *testing.T) {
	pub := &fakePublisher{}
	h := NewHandler(pub, Options{})
	if code, r, _ := publishWithKey(t, h, "a", `1`, "order-1"); code != 200 || r.Seq != 1 || r.Duplicate {
		t.Fatalf("first: %d %+v", code, r)
	}
	publishWithKey(t, h, "a", `2`, "")
	code, r, _ := publishWithKey(t, h, "a", `1`, "order-1")
	if code != 200 || r.Seq != 1 || !r.Duplicate {
		t.Fatalf("retry: %d %+v, want 200 seq 1 duplicate", code, r)
	}
	if code, r, _ := publishWithKey(t, h, "b", `1`, "order-1"); code != 200 || r.Seq != 1 || r.Duplicate {
		t.Fatalf("same key, other topic: %d %+v", code, r)
	}
	if n := len(pub.published()); n != 3 {
		t.Fatalf("publisher saw %d publishes, want 3", n)
	}
	for _, bad := range []string{strings.Repeat("k", 129), "has space", "caf\u00e9"} {
		if code, _, _ := publishWithKey(t, h, "a", `1`, bad); code != 400 {
			t.Fatalf("key %q: status %d, want 400", bad, code)
		}
	}

	// Concurrent retries of one key: one publish.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { publishWithKey(t, h, "c", `1`, "burst") })
	}
	wg.Wait()
	if n := len(pub.published()); n != 4 {
		t.Fatalf("20 concurrent publishes of one key: publisher saw %d publishes in all, want 4", n)
	}

	down := &fakePublisher{err: errors.New("bus unavailable")}
	hd := NewHandler(down, Options{})
	code, _, hdr := publishWithKey(t, hd, "a", `1`, "k")
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("publish failure: %d Retry-After %q, want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	down.mu.Lock()
	down.err = nil
	down.mu.Unlock()
	if code, r, _ := publishWithKey(t, hd, "a", `1`, "k"); code != 200 || r.Duplicate {
		t.Fatalf("retry after a failure: %d %+v, want a fresh publish", code, r)
	}
}

func TestBatchIdempotencyKey(t *testing.T) {
	pub := &fakePublisher{}
	h := NewHandler(pub, Options{})
	body := `{"topic":"a","data":1,"idempotency_key":"x"}` + "\n" + `{"topic":"a","data":1,"idempotency_key":"x"}` + "\n"
	rec := do(t, h, "POST", "/publish", strings.NewReader(body))
	var got BatchResult
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(got.Results) != 2 || got.Results[0].Seq != 1 || got.Results[0].Duplicate || got.Results[1].Seq != 1 || !got.Results[1].Duplicate {
		t.Fatalf("results %+v, want seq 1 then its duplicate", got.Results)
	}
	decodeError(t, do(t, h, "POST", "/publish", strings.NewReader(`{"topic":"a","data":1,"idempotency_key":""}`)), 400, CodeInvalidIdempotencyKey)
}

// The in-memory window forgets keys after its time and beyond its size.
func TestDedupWindowIsBounded(t *testing.T) {
	pub := &fakePublisher{}
	d := newDedup(time.Minute, 3)
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	for _, k := range []string{"1", "2", "3", "4"} {
		d.publish(pub, "t", []byte("1"), k)
	}
	if _, _, dup, _ := d.publish(pub, "t", []byte("1"), "1"); dup {
		t.Fatal("oldest key kept beyond the size limit")
	}
	if _, _, dup, _ := d.publish(pub, "t", []byte("1"), "4"); !dup {
		t.Fatal("recent key forgotten")
	}
	now = now.Add(2 * time.Minute)
	if _, _, dup, _ := d.publish(pub, "t", []byte("1"), "4"); dup {
		t.Fatal("key kept past the window")
	}
	if len(d.entries) > 3 {
		t.Fatalf("%d entries, limit 3", len(d.entries))
	}
}
