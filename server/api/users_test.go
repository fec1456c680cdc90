package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeUsers records the last action.
type fakeUsers struct {
	last    string
	workers int
	err     error
}

func (f *fakeUsers) Disconnect(user, reason string, d time.Duration) (UserCount, error) {
	f.last = "disconnect " + user + " " + reason + " " + d.String()
	return UserCount{N: 3, Workers: f.workers}, f.err
}

func (f *fakeUsers) Unsubscribe(user, topic string) (UserCount, error) {
	f.last = "unsubscribe " + user + " " + topic
	return UserCount{N: 2, Workers: f.workers}, f.err
}

func (f *fakeUsers) Conns(user string) (UserCount, error) {
	f.last = "conns " + user
	return UserCount{N: 5, Workers: f.workers}, f.err
}

func TestUserActions(t *testing.T) {
	u := &fakeUsers{workers: -1}
	h := NewHandler(&fakePublisher{}, Options{Users: u})
	do := func(method, path, body string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	cases := []struct {
		method, path, body string
		status             int
		answer, last       string
	}{
		{"POST", "/disconnect", `{"user":"u1","reason":"bye","reconnect_ms":1500}`, 200, `{"user":"u1","disconnected":3}`, "disconnect u1 bye 1.5s"},
		{"POST", "/disconnect", `{"user":"u1"}`, 200, `{"user":"u1","disconnected":3}`, "disconnect u1  0s"},
		{"POST", "/unsubscribe", `{"user":"u1","topic":"a.b"}`, 200, `{"user":"u1","topic":"a.b","unsubscribed":2}`, "unsubscribe u1 a.b"},
		{"GET", "/users/u%201", ``, 200, `{"user":"u 1","connections":5}`, "conns u 1"},
		{"GET", "/users/", ``, 400, `"error":"invalid_user"`, ""},
		{"POST", "/disconnect", `{"user":"` + strings.Repeat("x", 257) + `"}`, 400, `"error":"invalid_user"`, ""},
		{"POST", "/disconnect", `{"user":"u1","reconnect_ms":3600001}`, 400, `"error":"bad_reconnect_ms"`, ""},
		{"POST", "/disconnect", `{"user":"u1","reconnect_ms":"soon"}`, 400, `"error":"bad_json"`, ""},
		{"POST", "/disconnect", strings.Repeat(" ", 5000), 413, `"error":"body_too_large"`, ""},
		{"POST", "/unsubscribe", `{"user":"u1","topic":"a/b"}`, 400, `"error":"invalid_topic"`, ""},
		{"PUT", "/unsubscribe", `{}`, 405, `"error":"method_not_allowed"`, ""},
		{"DELETE", "/users/u1", ``, 405, `"error":"method_not_allowed"`, ""},
	}
	for _, c := range cases {
		u.last = ""
		status, body := do(c.method, c.path, c.body)
		if status != c.status || !strings.Contains(body, c.answer) || u.last != c.last {
			t.Errorf("%s %s %.40s: %d %s (action %q), want %d %s (action %q)", c.method, c.path, c.body, status, body, u.last, c.status, c.answer, c.last)
		}
	}
	// Worker mode adds the number of workers that answered; a failure is 503.
	u.workers = 4
	if status, body := do("GET", "/users/u1", ""); status != 200 || body != `{"user":"u1","connections":5,"workers":4}` {
		t.Errorf("workers: %d %s", status, body)
	}
	u.err = errors.New("bus: not connected")
	if status, body := do("POST", "/disconnect", `{"user":"u1"}`); status != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Errorf("error: %d %s", status, body)
	}
	// Without user actions the paths do not exist.
	h = NewHandler(&fakePublisher{}, Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/users/u1", nil))
	if w.Code != 404 {
		t.Errorf("no users: %d", w.Code)
	}
}

// The user actions need an admin key when the node has admin keys.
func TestUserActionsNeedAdminKey(t *testing.T) {
	h := NewHandler(&fakePublisher{}, Options{Users: &fakeUsers{workers: -1}, APIKeys: Keys{"pub"}, AdminKeys: Keys{"adm"}})
	for _, c := range []struct {
		method, path, body, key string
		status                  int
	}{
		{"POST", "/disconnect", `{"user":"u1"}`, "", 401},
		{"POST", "/disconnect", `{"user":"u1"}`, "pub", 401},
		{"POST", "/disconnect", `{"user":"u1"}`, "adm", 200},
		{"POST", "/unsubscribe", `{"user":"u1","topic":"t"}`, "pub", 401},
		{"GET", "/users/u1", ``, "", 401},
		{"GET", "/users/u1", ``, "adm", 200},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.status {
			t.Errorf("%s %s with key %q: %d, want %d", c.method, c.path, c.key, w.Code, c.status)
		}
	}
}
