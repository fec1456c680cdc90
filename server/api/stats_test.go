package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestStatsAndHeap(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{Stats: func() any { return map[string]int{"conns": 3} }})
	rec := do(t, h, http.MethodGet, "/stats", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "{\"conns\":3}\n" {
		t.Fatalf("/stats: %d %q", rec.Code, rec.Body.String())
	}
	rec = do(t, h, http.MethodGet, "/debug/heap", nil)
	var hs HeapStats
	if err := json.Unmarshal(rec.Body.Bytes(), &hs); err != nil || rec.Code != http.StatusOK || hs.HeapAlloc == 0 {
		t.Fatalf("/debug/heap: %d %q %v", rec.Code, rec.Body.String(), err)
	}
	decodeError(t, do(t, h, http.MethodPost, "/stats", nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	decodeError(t, do(t, NewHandler(&fakePublisher{}, Options{}), http.MethodGet, "/stats", nil), http.StatusNotFound, CodeNotFound)
}

func TestPprofIndexAndProfiles(t *testing.T) {
	h := NewHandler(nil, Options{})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if rec := do(t, h, http.MethodGet, path, nil); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
}
