package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

// Tokens on SSE and long-poll: as for the WebSocket upgrade, ?token= is
// checked before anything is subscribed; refusals carry CORS; an expired
// token ends an SSE stream with a close event (4001).
func TestStreamAuth(t *testing.T) {
	n := startAuthNode(t, server.AuthRequired, nil)
	get := func(pathQuery string) *http.Response {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get("http://" + n.WSAddr() + pathQuery)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	tok := hs256(t, nil, "prices.*")
	for _, c := range []struct {
		pathQuery string
		status    int
	}{
		{"/sse?topics=prices.a", 401},
		{"/poll?topics=prices.a", 401},
		{"/sse?topics=prices.a&token=nonsense", 401},
		{"/sse?topics=secret.x&token=" + tok, 403},
		{"/poll?topics=secret.x&token=" + tok, 403},
		{"/poll?topics=prices.a&token=" + tok, 200},
	} {
		resp := get(c.pathQuery)
		if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v, want %d with CORS", c.pathQuery, resp.StatusCode, resp.Header, c.status)
		}
	}
	short := hs256(t, func(c *fanwireClaims) { c.ExpiresAt.Time = time.Now().Add(3 * time.Second) }, "prices.*")
	s := dialStream(t, n.WSAddr(), "/sse?topics=prices.a&token="+short)
	if h := s.head(); !strings.HasPrefix(h, "HTTP/1.1 200 ") {
		t.Fatalf("head %q", h)
	}
	rest := s.rest()
	if i := strings.LastIndex(rest, "event: close\n"); i < 0 || !strings.Contains(rest[i:], `"code":4001`) {
		t.Fatalf("stream with an expiring token ends %q, want a close event with 4001", rest)
	}
}
