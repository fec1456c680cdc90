package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fanwire/fanwire/server/wire"
)

// published is one call the fake publisher received.
type published struct {
	topic string
	data  string
}

// fakePublisher records calls and numbers them per topic like the node does.
// failOn makes Publish fail with err for that topic.
type fakePublisher struct {
	mu     sync.Mutex
	calls  []published
	seqs   map[string]uint64
	failOn string
	err    error
}

func (f *fakePublisher) Publish(topic string, data []byte) (uint64, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil && (f.failOn == "" || f.failOn == topic) {
		return 0, 0, f.err
	}
	if f.seqs == nil {
		f.seqs = map[string]uint64{}
	}
	f.seqs[topic]++
	f.calls = append(f.calls, published{topic, string(data)})
	return f.seqs[topic], 3, nil
}

func (f *fakePublisher) published() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.calls...)
}

// do runs one request through a fresh handler and returns the recorder.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, body))
	return rec
}

// decodeError checks that rec is a JSON error with the wanted status and code.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, rec.Body)
	}
	if e.Error != code || e.Message == "" {
		t.Fatalf("error = %q message %q, want code %q and a message", e.Error, e.Message, code)
	}
	return e
}

func TestPublishOneForwardsTrimmedBodyVerbatim(t *testing.T) {
	pub := &fakePublisher{}
	h := NewHandler(pub, Options{})
	value := `{"b": [1, 2 ,3],  "a":"\u00e9 é"}`
	for i := 1; i <= 2; i++ {
		rec := do(t, h, "POST", "/publish/scores.football", strings.NewReader(" \r\n\t"+value+"\n\n"))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
		var got PublishResult
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Topic != "scores.football" || got.Seq != uint64(i) || got.Subscribers == nil || *got.Subscribers != 3 {
			t.Fatalf("result = %s, want topic scores.football, seq %d, 3 subscribers", rec.Body, i)
		}
	}
	calls := pub.published()
	if len(calls) != 2 || calls[0].data != value || calls[0].topic != "scores.football" {
		t.Fatalf("publisher got %q, want data %q", calls, value)
	}
}

func TestPublishOneRejects(t *testing.T) {
	long := strings.Repeat("x", wire.MaxTopicLen+1)
	cases := []struct {
		name, target, body string
		status             int
		code               string
	}{
		{"bad json", "/publish/t", `{"a":`, 400, CodeBadJSON},
		{"two values", "/publish/t", `1 2`, 400, CodeBadJSON},
		{"invalid utf-8 in string", "/publish/t", "\"\xff\"", 400, CodeBadJSON},
		{"unicode space is not JSON space", "/publish/t", "1\u00a0", 400, CodeBadJSON},
		{"empty body", "/publish/t", "", 400, CodeEmptyBody},
		{"blank body", "/publish/t", " \n\t", 400, CodeEmptyBody},
		{"empty topic", "/publish/", `1`, 400, CodeInvalidTopic},
		{"bad topic char", "/publish/a*b", `1`, 400, CodeInvalidTopic},
		{"slash in topic", "/publish/a/b", `1`, 400, CodeInvalidTopic},
		{"escaped slash in topic", "/publish/a%2Fb", `1`, 400, CodeInvalidTopic},
		{"topic too long", "/publish/" + long, `1`, 400, CodeInvalidTopic},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub := &fakePublisher{}
			rec := do(t, NewHandler(pub, Options{}), "POST", c.target, strings.NewReader(c.body))
			decodeError(t, rec, c.status, c.code)
			if n := len(pub.published()); n != 0 {
				t.Fatalf("%d messages published, want none", n)
			}
		})
	}
}

func TestPublishErrorsMapToStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{wire.ErrInvalidTopic, 400, CodeInvalidTopic},
		{errors.Join(errors.New("wrapped"), wire.ErrInvalidTopic), 400, CodeInvalidTopic},
		{errors.New("node is shutting down"), 503, CodeUnavailable},
	}
	for _, c := range cases {
		rec := do(t, NewHandler(&fakePublisher{err: c.err}, Options{}), "POST", "/publish/t", strings.NewReader(`1`))
		decodeError(t, rec, c.status, c.code)
	}
}

func TestBodyLimitBoundary(t *testing.T) {
	const limit = 16
	atLimit := `"` + strings.Repeat("a", limit-2) + `"`
	overLimit := atLimit + " "
	// hideLength makes the request body's length unknown (as with chunked
	// encoding), so the cap is enforced while reading, not from Content-Length.
	type hideLength struct{ io.Reader }
	for _, known := range []bool{true, false} {
		body := func(s string) io.Reader {
			if known {
				return strings.NewReader(s)
			}
			return hideLength{strings.NewReader(s)}
		}
		pub := &fakePublisher{}
		h := NewHandler(pub, Options{MaxBody: limit})
		if rec := do(t, h, "POST", "/publish/t", body(atLimit)); rec.Code != http.StatusOK {
			t.Fatalf("known length %v: body of exactly the limit: status %d: %s", known, rec.Code, rec.Body)
		}
		decodeError(t, do(t, h, "POST", "/publish/t", body(overLimit)), 413, CodeBodyTooLarge)
		decodeError(t, do(t, h, "POST", "/publish", body(`{"topic":"t","data":1}`+"\n\n")), 413, CodeBodyTooLarge)
		if n := len(pub.published()); n != 1 {
			t.Fatalf("known length %v: %d published, want 1", known, n)
		}
	}
}

func TestDefaultMaxBodyOverRealHTTP(t *testing.T) {
	srv := httptest.NewServer(NewServer(NewHandler(&fakePublisher{}, Options{}), nil).Handler)
	defer srv.Close()
	big := `"` + strings.Repeat("a", int(DefaultMaxBody)) + `"`
	// io.MultiReader hides the length, so the client sends it chunked.
	resp, err := http.Post(srv.URL+"/publish/t", "application/json", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", resp.StatusCode)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{})
	cases := []struct{ method, target, allow string }{
		{"GET", "/publish/t", "POST"},
		{"PUT", "/publish/t", "POST"},
		{"GET", "/publish", "POST"},
		{"DELETE", "/publish", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"POST", "/", "GET, HEAD"},
	}
	for _, c := range cases {
		rec := do(t, h, c.method, c.target, nil)
		decodeError(t, rec, 405, CodeMethodNotAllowed)
		if got := rec.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow = %q, want %q", c.method, c.target, got, c.allow)
		}
	}
	for _, target := range []string{"/nope", "/publishx", "/healthz/", "/index.html"} {
		decodeError(t, do(t, h, "GET", target, nil), 404, CodeNotFound)
	}
}

func TestHealthz(t *testing.T) {
	var healthErr error
	h := NewHandler(&fakePublisher{}, Options{Health: func() error { return healthErr }})
	rec := do(t, h, "GET", "/healthz", nil)
	if rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("healthy: %d %q", rec.Code, rec.Body)
	}
	healthErr = errors.New("event loops stopped")
	e := decodeError(t, do(t, h, "GET", "/healthz", nil), 503, CodeUnavailable)
	if e.Message != "event loops stopped" {
		t.Fatalf("message = %q", e.Message)
	}
	if rec := do(t, NewHandler(&fakePublisher{}, Options{}), "HEAD", "/healthz", nil); rec.Code != 200 {
		t.Fatalf("HEAD without Health func: %d", rec.Code)
	}
}

func TestIndexPage(t *testing.T) {
	page := []byte("<!doctype html><title>demo</title>")
	rec := do(t, NewHandler(&fakePublisher{}, Options{Page: page}), "GET", "/", nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), page) {
		t.Fatalf("page: %d %q", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	rec = do(t, NewHandler(&fakePublisher{}, Options{}), "GET", "/", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "POST /publish/{topic}") {
		t.Fatalf("plain index: %d %q", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// A publisher that cannot count subscribers (worker mode) leaves the field out.
func TestPublishWithoutSubscriberCount(t *testing.T) {
	h := NewHandler(uncounted{}, Options{})
	rec := do(t, h, "POST", "/publish/news", strings.NewReader(`1`))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "subscribers") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

type uncounted struct{}

func (uncounted) Publish(string, []byte) (uint64, int, error) { return 1, -1, nil }
