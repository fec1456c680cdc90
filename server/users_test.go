package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

// userToken is a token for user that may subscribe to everything.
func userToken(t *testing.T, user string) string {
	return hs256(t, func(c *fanwireClaims) { c.Subject = user }, "*")
}

// controlJSON calls the control API and decodes its JSON answer.
func controlJSON(t *testing.T, addr, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// userConns is GET /users/{user}'s connections.
func userConns(t *testing.T, addr, user string) int {
	t.Helper()
	status, m := controlJSON(t, addr, "GET", "/users/"+user, "")
	if status != 200 {
		t.Fatalf("GET /users/%s: %d %v", user, status, m)
	}
	return int(m["connections"].(float64))
}

// waitUserConns polls until user has want connections (closes are asynchronous).
func waitUserConns(t *testing.T, addr, user string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := userConns(t, addr, user)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s: %d connections, want %d", user, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectCloseCode reads until the connection closes and checks the close code and reason.
func expectCloseCode(t *testing.T, c *websocket.Conn, code int, reasonHas string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != code || !strings.Contains(ce.Text, reasonHas) {
			t.Fatalf("closed with %v, want %d with %q", err, code, reasonHas)
		}
		return
	}
}

func TestUsersPerUserLimit(t *testing.T) {
	n := startAuthNode(t, server.AuthRequired, func(c *server.Config) { c.Users.MaxConnsPerUser = 2 })
	alice := "?token=" + userToken(t, "alice")
	a1, st, _ := dialToken(t, n, alice, nil)
	if st != 101 {
		t.Fatalf("first: %d", st)
	}
	if _, st, _ := dialToken(t, n, alice, nil); st != 101 {
		t.Fatalf("second: %d", st)
	}
	if _, st, code := dialToken(t, n, alice, nil); st != 429 || code != server.CodeTooManyConnections {
		t.Fatalf("third: %d %s, want 429 %s", st, code, server.CodeTooManyConnections)
	}
	if _, st, _ := dialToken(t, n, "?token="+userToken(t, "bob"), nil); st != 101 {
		t.Fatalf("another user: %d", st)
	}
	if got := userConns(t, n.HTTPAddr(), "alice"); got != 2 {
		t.Fatalf("alice has %d connections, want 2", got)
	}
	s := n.Stats()
	if s.Users != 2 || s.MaxConnsPerUser != 2 || s.UserStats.Rejected != 1 {
		t.Fatalf("stats %+v", s.UserStats)
	}
	a1.Close()
	waitUserConns(t, n.HTTPAddr(), "alice", 1)
	if _, st, _ := dialToken(t, n, alice, nil); st != 101 {
		t.Fatalf("after a close: %d", st)
	}
	if _, st, _ := dialToken(t, n, alice, nil); st != 429 {
		t.Fatalf("over again: %d", st)
	}
}

func TestUsersDisconnect(t *testing.T) {
	n := startAuthNode(t, server.AuthOff, nil)
	var alice []*websocket.Conn
	for range 3 {
		c, st, _ := dialToken(t, n, "?topics=news&token="+userToken(t, "alice"), nil)
		if st != 101 {
			t.Fatal(st)
		}
		alice = append(alice, c)
	}
	bob, _, _ := dialToken(t, n, "?topics=news&token="+userToken(t, "bob"), nil)
	anon, _, _ := dialToken(t, n, "?topics=news", nil)
	waitUserConns(t, n.HTTPAddr(), "alice", 3)

	status, m := controlJSON(t, n.HTTPAddr(), "POST", "/disconnect", `{"user":"alice","reason":"account suspended","reconnect_ms":5000}`)
	if status != 200 || m["disconnected"] != 3.0 || m["user"] != "alice" {
		t.Fatalf("disconnect: %d %v", status, m)
	}
	for _, c := range alice {
		expectCloseCode(t, c, 4005, "account suspended; reconnect in 5000ms")
	}
	waitUserConns(t, n.HTTPAddr(), "alice", 0)
	// Untouched: they still get deliveries.
	publishHTTP(t, n, "news", []byte(`{"n":1}`))
	for _, c := range []*websocket.Conn{bob, anon} {
		if m := readJSON(t, c); m["topic"] != "news" {
			t.Fatalf("got %v", m)
		}
	}
	// Default reason, nobody left, bad requests.
	c, _, _ := dialToken(t, n, "?token="+userToken(t, "carol"), nil)
	if status, m := controlJSON(t, n.HTTPAddr(), "POST", "/disconnect", `{"user":"carol"}`); status != 200 || m["disconnected"] != 1.0 {
		t.Fatalf("carol: %d %v", status, m)
	}
	expectCloseCode(t, c, 4005, "disconnected by server")
	if status, m := controlJSON(t, n.HTTPAddr(), "POST", "/disconnect", `{"user":"nobody"}`); status != 200 || m["disconnected"] != 0.0 {
		t.Fatalf("nobody: %d %v", status, m)
	}
	for _, bad := range []struct{ body, code string }{
		{`{}`, "missing_user"},
		{`{"user":"a","reconnect_ms":-1}`, "bad_reconnect_ms"},
		{`{"user":"a","reason":"` + strings.Repeat("x", 81) + `"}`, "bad_reason"},
		{`[1]`, "bad_json"},
		{`{"user":`, "bad_json"},
	} {
		if status, m := controlJSON(t, n.HTTPAddr(), "POST", "/disconnect", bad.body); status != 400 || m["error"] != bad.code {
			t.Errorf("%s: %d %v, want 400 %s", bad.body, status, m, bad.code)
		}
	}
	if status, _ := controlJSON(t, n.HTTPAddr(), "GET", "/disconnect", ""); status != 405 {
		t.Errorf("GET /disconnect: %d", status)
	}
}

func TestUsersUnsubscribe(t *testing.T) {
	n := startAuthNode(t, server.AuthOff, nil)
	a1, _, _ := dialToken(t, n, "?topics=news,sport&token="+userToken(t, "alice"), nil)
	a2, _, _ := dialToken(t, n, "?topics=sport&token="+userToken(t, "alice"), nil)
	bob, _, _ := dialToken(t, n, "?topics=news&token="+userToken(t, "bob"), nil)
	waitUserConns(t, n.HTTPAddr(), "alice", 2)
	status, m := controlJSON(t, n.HTTPAddr(), "POST", "/unsubscribe", `{"user":"alice","topic":"news"}`)
	if status != 200 || m["unsubscribed"] != 1.0 || m["topic"] != "news" {
		t.Fatalf("unsubscribe: %d %v", status, m)
	}
	if m := readJSON(t, a1); m["type"] != "unsubscribed" || m["by"] != "server" || m["topics"].([]any)[0] != "news" {
		t.Fatalf("a1 got %v", m)
	}
	publishHTTP(t, n, "news", []byte(`1`))
	publishHTTP(t, n, "sport", []byte(`2`))
	// a1 gets only sport now; a2 (never on news) just sport; bob news.
	if m := readJSON(t, a1); m["topic"] != "sport" {
		t.Fatalf("a1 got %v", m)
	}
	if m := readJSON(t, a2); m["topic"] != "sport" {
		t.Fatalf("a2 got %v", m)
	}
	if m := readJSON(t, bob); m["topic"] != "news" {
		t.Fatalf("bob got %v", m)
	}
	if status, m := controlJSON(t, n.HTTPAddr(), "POST", "/unsubscribe", `{"user":"alice","topic":"bad topic"}`); status != 400 || m["error"] != "invalid_topic" {
		t.Fatalf("bad topic: %d %v", status, m)
	}
	if status, m := controlJSON(t, n.HTTPAddr(), "POST", "/unsubscribe", `{"user":"alice"}`); status != 400 || m["error"] != "missing_topic" {
		t.Fatalf("no topic: %d %v", status, m)
	}
}

func TestUsersAnonymousNotCounted(t *testing.T) {
	n := startAuthNode(t, server.AuthOff, func(c *server.Config) { c.Users.MaxConnsPerUser = 1 })
	for range 3 {
		if _, st, _ := dialToken(t, n, "", nil); st != 101 {
			t.Fatal(st)
		}
	}
	if s := n.Stats(); s.Users != 0 || s.UserStats.Rejected != 0 {
		t.Fatalf("%+v", s.UserStats)
	}
	resp, err := http.Post("http://"+n.HTTPAddr()+"/users/x", "application/json", bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("POST /users/x: %d", resp.StatusCode)
	}
}
