package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/gorilla/websocket"
)

// TestAuthNamespaces runs the README's example namespaces with --auth
// namespace: public topics for anyone, chat for tokens that grant the room,
// members for any token; each namespace keeps its own history.
func TestAuthNamespaces(t *testing.T) {
	set, err := namespace.Load("namespace/testdata/example.toml", namespace.Defaults{LastValue: server.DefaultLastValue, History: 100, HistoryTTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) { c.Auth.Namespaces = set })
	tok := hs256(t, nil, "chat.room1")

	for _, c := range []struct {
		query  string
		status int
	}{
		{"?topics=prices.BTC-USD", 101},                  // public: anonymous
		{"?topics=chat.room1", 403},                      // chat: anonymous may not
		{"?topics=chat.room1&token=" + tok, 101},         // granted
		{"?topics=chat.room2&token=" + tok, 403},         // not granted
		{"?topics=news.members.daily", 403},              // members: needs a token...
		{"?topics=news.members.daily&token=" + tok, 101}, // ...any token
		{"?topics=other&token=" + tok, 403},              // default: token must grant
		{"?topics=prices.BTC-USD&token=" + tok, 101},     // public with a token
		{"?topics=chat.room1&token=" + tok + "x", 401},   // bad token
	} {
		if _, status, code := dialToken(t, n, c.query, nil); status != c.status {
			t.Errorf("%s: %d %q, want %d", c.query[:min(len(c.query), 40)], status, code, c.status)
		}
	}

	// In-band: an anonymous connection gets forbidden for chat and stays open.
	c, _, _ := dialToken(t, n, "", nil)
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["chat.room1"]}`))
	if m := readJSON(t, c); m["code"] != "forbidden" || !strings.Contains(m["message"].(string), "needs a token") {
		t.Fatalf("anonymous chat subscribe: %v", m)
	}

	// Per-namespace history: chat keeps 500, public none.
	for i := 0; i < 3; i++ {
		n.Publish("chat.room1", []byte(`1`))
		n.Publish("prices.BTC-USD", []byte(`1`))
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["prices.BTC-USD"],"since":{"prices.BTC-USD":1}}`))
	readJSON(t, c) // ack
	if m := readJSON(t, c); m["type"] != "reset" {
		t.Fatalf("public (history 0) resume: %v, want a reset", m)
	}
	chat, _, _ := dialToken(t, n, "?topics=chat.room1&since=chat.room1:1&token="+tok, nil)
	if m := readJSON(t, chat); m["seq"] != float64(2) {
		t.Fatalf("chat (history 500) resume: %v, want seq 2 replayed", m)
	}
}

// TestNamespaceMaxMessage: a publish over its namespace's max_message is refused.
func TestNamespaceMaxMessage(t *testing.T) {
	set, err := namespace.Load("namespace/testdata/example.toml", namespace.Defaults{History: 100, HistoryTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, false, func(c *server.Config) { c.Auth.Namespaces = set })
	big := []byte(`"` + strings.Repeat("x", 5000) + `"`)
	if _, _, err := n.Publish("chat.room1", big); err == nil {
		t.Fatal("chat accepted 5000 bytes over max_message 4096")
	}
	if _, _, err := n.Publish("other", big); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+n.HTTPAddr()+"/publish/chat.room1", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("HTTP publish over max_message: %d", resp.StatusCode)
	}
}
