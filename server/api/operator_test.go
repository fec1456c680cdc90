package api

import (
	"net/http"
	"strings"
	"testing"
)

// Without an Operator, the operator endpoints answer precise JSON errors.
func TestOperatorEndpointsUnset(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{})
	decodeError(t, do(t, h, http.MethodGet, "/metrics", nil), http.StatusNotFound, CodeNotFound)
	decodeError(t, do(t, h, http.MethodGet, "/admin", nil), http.StatusNotFound, CodeNotFound)
	decodeError(t, do(t, h, http.MethodGet, "/admin/data", nil), http.StatusNotFound, CodeNotFound)
	decodeError(t, do(t, h, http.MethodGet, "/topics", nil), http.StatusNotImplemented, CodeNotImplemented)
	decodeError(t, do(t, h, http.MethodGet, "/topics/a", nil), http.StatusNotImplemented, CodeNotImplemented)
	decodeError(t, do(t, h, http.MethodPost, "/metrics", nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	decodeError(t, do(t, h, http.MethodDelete, "/topics/a", nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
}

func TestAdminPageServed(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{Ops: Operator{AdminData: func() any { return map[string]int{"conns": 1} }}})
	rec := do(t, h, http.MethodGet, "/admin", nil)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), "/admin/data") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("/admin: %d %v", rec.Code, rec.Header())
	}
	if strings.Contains(rec.Body.String(), "http://") || strings.Contains(rec.Body.String(), "https://") {
		t.Fatal("the admin page loads something from another origin")
	}
	rec = do(t, h, http.MethodGet, "/admin/data", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "{\"conns\":1}\n" {
		t.Fatalf("/admin/data: %d %s", rec.Code, rec.Body)
	}
}

func TestMetricsOnlyListener(t *testing.T) {
	h := MetricsOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) }))
	if rec := do(t, h, http.MethodGet, "/metrics", nil); rec.Code != http.StatusOK || rec.Body.String() != "m 1\n" {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	decodeError(t, do(t, h, http.MethodGet, "/stats", nil), http.StatusNotFound, CodeNotFound)
	decodeError(t, do(t, h, http.MethodPost, "/metrics", nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
}

// Publishes through the handler are counted and timed, a batch as one
// observation with its line count.
func TestPublishMetrics(t *testing.T) {
	var m PublishMetrics
	h := NewHandler(&fakePublisher{}, Options{Ops: Operator{Publish: &m}})
	do(t, h, http.MethodPost, "/publish/a", strings.NewReader(`1`))
	do(t, h, http.MethodPost, "/publish", strings.NewReader("{\"topic\":\"a\",\"data\":1}\n{\"topic\":\"b\",\"data\":2}\n"))
	do(t, h, http.MethodPost, "/publish/a", strings.NewReader(`{bad`))
	s := m.Latency.Snapshot()
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	if m.Published.Load() != 3 || n != 2 {
		t.Fatalf("published %d, observations %d; want 3 and 2", m.Published.Load(), n)
	}
}
