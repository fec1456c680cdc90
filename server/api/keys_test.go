package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKeysProtectPublishAndAdmin(t *testing.T) {
	pub := &fakePublisher{}
	h := NewHandler(pub, Options{APIKeys: Keys{"pub-1", "pub-2"}, AdminKeys: Keys{"adm"},
		Stats: func() any { return map[string]int{"conns": 1} }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	req := func(method, path string, hdr ...string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"topic":"t","data":1}`))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	cases := []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"POST", "/publish/t", nil, 401},
		{"POST", "/publish", nil, 401},
		{"POST", "/publish/t", []string{"Authorization", "Bearer wrong"}, 401},
		{"POST", "/publish/t", []string{"Authorization", "Bearer pub-1x"}, 401},
		{"POST", "/publish/t", []string{"Authorization", "Basic cHViLTE="}, 401},
		{"POST", "/publish/t", []string{"X-API-Key", "pub"}, 401},
		{"POST", "/publish/t", []string{"Authorization", "Bearer pub-1"}, 200},
		{"POST", "/publish/t", []string{"Authorization", "bearer  pub-2"}, 200},
		{"POST", "/publish", []string{"X-API-Key", "pub-2"}, 200},
		{"POST", "/publish/t", []string{"X-API-Key", "adm"}, 200}, // an admin key also publishes
		{"GET", "/stats", nil, 401},
		{"GET", "/stats", []string{"X-API-Key", "pub-1"}, 401}, // a publish key is not an admin key
		{"GET", "/stats", []string{"Authorization", "Bearer adm"}, 200},
		{"GET", "/debug/heap", nil, 401},
		{"GET", "/debug/pprof/", []string{"X-API-Key", "pub-1"}, 401},
		{"GET", "/debug/pprof/", []string{"X-API-Key", "adm"}, 200},
		{"GET", "/healthz", nil, 200},
		{"GET", "/", nil, 200},
	}
	for _, c := range cases {
		resp := req(c.method, c.path, c.hdr...)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s %q: status %d, want %d", c.method, c.path, c.hdr, resp.StatusCode, c.status)
		}
		if c.status == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="fanwire"` {
			t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", c.method, c.path)
		}
	}
	if n := len(pub.published()); n != 4 {
		t.Fatalf("%d published, want the 4 authorized requests", n)
	}
	// The JSON error says which is wrong, never the key.
	r := httptest.NewRequest("POST", "/publish/t", strings.NewReader("1"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if e := decodeError(t, rec, 401, CodeUnauthorized); !strings.Contains(e.Message, "missing API key") {
		t.Errorf("message %q", e.Message)
	}
	r.Header.Set("X-API-Key", "guess-123")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if e := decodeError(t, rec, 401, CodeUnauthorized); e.Message != "invalid API key" || strings.Contains(rec.Body.String(), "guess") {
		t.Errorf("message %q", e.Message)
	}
}

// Without keys everything stays open (the node warns beyond loopback).
func TestNoKeysIsOpen(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{Stats: func() any { return 1 }})
	for _, p := range []string{"/publish/t", "/stats"} {
		method := "GET"
		if p == "/publish/t" {
			method = "POST"
		}
		if rec := do(t, h, method, p, strings.NewReader("1")); rec.Code != 200 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
	// Publish keys alone leave the admin paths open, and the reverse.
	h = NewHandler(&fakePublisher{}, Options{AdminKeys: Keys{"a"}, Stats: func() any { return 1 }})
	if rec := do(t, h, "POST", "/publish/t", strings.NewReader("1")); rec.Code != 200 {
		t.Errorf("publish with only admin keys set: %d", rec.Code)
	}
	decodeError(t, do(t, h, "GET", "/stats", nil), 401, CodeUnauthorized)
}

func TestAdminPaths(t *testing.T) {
	for path, admin := range map[string]bool{"/stats": true, "/debug/heap": true, "/debug/pprof/profile": true,
		"/admin": false, "/admin/data": true, "/admin/disconnect": true, "/topics": true, "/topics/a.b": true, "/metrics": true,
		"/healthz": false, "/": false, "/publish/t": false, "/statsx": false, "/topicsx": false} {
		if isAdminPath(path) != admin {
			t.Errorf("isAdminPath(%q) = %v", path, !admin)
		}
	}
}

func TestKeySetMatchesWholeKeysOnly(t *testing.T) {
	s := newKeySet(Keys{"alpha", "beta-long-key"})
	for key, want := range map[string]bool{"alpha": true, "beta-long-key": true, "alph": false, "alphaa": false, "": false, "BETA-LONG-KEY": false} {
		if s.match(key) != want {
			t.Errorf("match(%q) = %v", key, !want)
		}
	}
	if newKeySet(nil) != nil || (*keySet)(nil).match("x") {
		t.Error("empty set")
	}
	if got := (Keys{"secret"}).String(); strings.Contains(got, "secret") {
		t.Errorf("Keys prints %q", got)
	}
}

func TestExposureWarnings(t *testing.T) {
	if w := ExposureWarnings("127.0.0.1:8081", Options{}); w != nil {
		t.Errorf("loopback: %q", w)
	}
	if w := ExposureWarnings("[::1]:8081", Options{}); w != nil {
		t.Errorf("loopback v6: %q", w)
	}
	if w := ExposureWarnings("0.0.0.0:8081", Options{}); len(w) != 2 {
		t.Errorf("all interfaces without keys: %q", w)
	}
	if w := ExposureWarnings("[::]:8081", Options{APIKeys: Keys{"k"}}); len(w) != 1 || !strings.Contains(w[0], "--admin-key") {
		t.Errorf("with an API key only: %q", w)
	}
	if w := ExposureWarnings("10.0.0.5:8081", Options{APIKeys: Keys{"k"}, AdminKeys: Keys{"a"}}); w != nil {
		t.Errorf("with both keys: %q", w)
	}
}

func TestCmdlineRedactsKeys(t *testing.T) {
	got := redactKeys([]string{"fanwire", "serve", "--api-key", "s1", "-admin-key=s2", "--api-key-file", "/k", "--listen", ":1"})
	want := "fanwire serve --api-key REDACTED -admin-key=REDACTED --api-key-file /k --listen :1"
	if strings.Join(got, " ") != want {
		t.Fatalf("%q", got)
	}
}
