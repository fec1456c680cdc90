package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fanwire/fanwire/server/js"
)

func TestServesTheBrowserClient(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{})
	rec := do(t, h, http.MethodGet, "/fanwire.js", nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), js.Source) {
		t.Fatalf("GET /fanwire.js: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	for k, want := range map[string]string{
		"Content-Type": js.ContentType, "Access-Control-Allow-Origin": "*", "Cache-Control": js.CacheControl, "ETag": js.ETag,
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/fanwire.js", nil)
	req.Header.Set("If-None-Match", js.ETag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", rec.Code)
	}
	if rec := do(t, h, http.MethodHead, "/fanwire.js", nil); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := do(t, h, http.MethodPost, "/fanwire.js", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", rec.Code)
	}
	rec = do(t, h, http.MethodGet, "/fanwire.d.ts", nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), js.Types) {
		t.Fatalf("GET /fanwire.d.ts: %d", rec.Code)
	}
}
