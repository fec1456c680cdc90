package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/gorilla/websocket"
)

// publishNamespaces: chat (tokens that grant it, sender stamped, history,
// ephemeral allowed), open (anyone publishes), typing (ephemeral only) and
// the default (no client publish).
const publishNamespaces = `
[default]
history = 10

[[namespace]]
name = "chat"
topics = ["chat.*"]
token_required = true
history = 100
max_message = 256
publish = true
stamp_sender = true
ephemeral_publish = true

[[namespace]]
name = "open"
topics = ["open.*"]
anonymous_subscribe = true
publish = true
anonymous_publish = true

[[namespace]]
name = "typing"
topics = ["typing.*"]
anonymous_subscribe = true
publish = true
anonymous_publish = true
ephemeral = true
`

func loadNamespaces(t testing.TB, doc string) *namespace.Set {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := namespace.Load(file, namespace.Defaults{History: 10, HistoryTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// publisher mints a token for user that may subscribe to chat.* and publish to pub.
func publisher(t testing.TB, user string, pub ...string) string {
	return hs256(t, func(c *fanwireClaims) {
		c.Subject = user
		c.Fanwire["publish"] = pub
		c.Fanwire["info"] = map[string]any{"name": strings.ToUpper(user[:1]) + user[1:]}
	}, "chat.*")
}

func sendJSON(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// expectType reads one message and checks its "type" (or, for a delivery, that it has a topic).
func expectType(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	m := readJSON(t, c)
	if typ == "delivery" {
		if _, ok := m["topic"]; !ok || m["type"] != nil {
			t.Fatalf("got %v, want a delivery", m)
		}
		return m
	}
	if m["type"] != typ {
		t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

func TestClientPublish(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) { c.Auth.Namespaces = loadNamespaces(t, publishNamespaces) })
	alice, _, _ := dialToken(t, n, "?topics=chat.room1&token="+publisher(t, "alice", "chat.room1"), nil)
	bob, _, _ := dialToken(t, n, "?topics=chat.room1&token="+publisher(t, "bob"), nil)

	// Allowed: ack first (same id, the seq), then the delivery to every
	// subscriber, the sender included, with the server's sender stamp.
	sendJSON(t, alice, `{"op":"publish","topic":"chat.room1","data":{"text":"hi","from":"mallory"},"id":17}`)
	ack := expectType(t, alice, "published")
	if ack["id"] != float64(17) || ack["seq"] != float64(1) || ack["topic"] != "chat.room1" {
		t.Fatalf("ack %v", ack)
	}
	for _, c := range []*websocket.Conn{alice, bob} {
		m := expectType(t, c, "delivery")
		from, _ := m["from"].(map[string]any)
		info, _ := from["info"].(map[string]any)
		if m["seq"] != ack["seq"] || from["user"] != "alice" || info["name"] != "Alice" {
			t.Fatalf("delivery %v", m)
		}
		if d := m["data"].(map[string]any); d["from"] != "mallory" {
			t.Fatalf("data changed: %v", d)
		}
	}

	// Refused, each with its code and the op's id; the connection stays open.
	for _, c := range []struct {
		conn *websocket.Conn
		op   string
		code string
	}{
		{bob, `{"op":"publish","topic":"chat.room1","data":1,"id":1}`, "forbidden"},   // token does not grant
		{alice, `{"op":"publish","topic":"chat.room2","data":1,"id":2}`, "forbidden"}, // other room
		{alice, `{"op":"publish","topic":"other","data":1,"id":3}`, "forbidden"},      // default namespace: nobody
		{alice, `{"op":"publish","topic":"bad topic","data":1,"id":4}`, "invalid_topic"},
		{alice, `{"op":"publish","topic":"chat.room1","data":"` + strings.Repeat("x", 300) + `","id":5}`, "too_large"},
		{alice, `{"op":"publish","topic":"chat.room1","id":6}`, "bad_json"},
		{alice, `{"op":"publish","topic":"open.x","data":1,"ephemeral":true,"id":7}`, "not_enabled"},
	} {
		sendJSON(t, c.conn, c.op)
		m := expectType(t, c.conn, "error")
		var id struct{ ID float64 }
		json.Unmarshal([]byte(c.op), &id)
		if m["code"] != c.code || m["id"] != id.ID {
			t.Errorf("%s: %v, want %s", c.op, m, c.code)
		}
	}

	// Anonymous: allowed where anonymous_publish is on, not elsewhere.
	anon, _, _ := dialToken(t, n, "?topics=open.x", nil)
	sendJSON(t, anon, `{"op":"publish","topic":"chat.room1","data":1,"id":8}`)
	if m := expectType(t, anon, "error"); m["code"] != "forbidden" || m["id"] != float64(8) {
		t.Fatalf("anonymous chat publish: %v", m)
	}
	sendJSON(t, anon, `{"op":"publish","topic":"open.x","data":[1,2],"id":9}`)
	if m := expectType(t, anon, "published"); m["seq"] != float64(1) {
		t.Fatalf("anonymous open publish: %v", m)
	}
	if m := expectType(t, anon, "delivery"); m["from"] != nil || m["seq"] != float64(1) {
		t.Fatalf("open delivery (no stamp): %v", m)
	}

	// Ephemeral: delivered without a seq, consumes none, not replayed.
	sendJSON(t, alice, `{"op":"publish","topic":"chat.room1","data":{"typing":true},"ephemeral":true,"id":10}`)
	if m := expectType(t, alice, "published"); m["ephemeral"] != true || m["seq"] != nil {
		t.Fatalf("ephemeral ack: %v", m)
	}
	for _, c := range []*websocket.Conn{alice, bob} {
		if m := expectType(t, c, "delivery"); m["ephemeral"] != true || m["seq"] != nil || m["from"] == nil {
			t.Fatalf("ephemeral delivery: %v", m)
		}
	}
	sendJSON(t, alice, `{"op":"publish","topic":"chat.room1","data":"second","id":11}`)
	if m := expectType(t, alice, "published"); m["seq"] != float64(2) {
		t.Fatalf("after an ephemeral message: %v, want seq 2 (no gap)", m)
	}
	if m := expectType(t, bob, "delivery"); m["seq"] != float64(2) {
		t.Fatalf("bob: %v", m)
	}
	// An HTTP publish continues the same seqs.
	if r := publishHTTP(t, n, "chat.room1", []byte(`"http"`)); r.Seq != 3 {
		t.Fatalf("HTTP publish after client ones: seq %d", r.Seq)
	}

	// Resume: history has the client publications (stamped) and the HTTP one, not the ephemeral one.
	late, _, _ := dialToken(t, n, "?topics=chat.room1&since=chat.room1:0&token="+publisher(t, "carol"), nil)
	for _, want := range []float64{1, 2, 3} {
		m := expectType(t, late, "delivery")
		if m["seq"] != want || m["ephemeral"] != nil {
			t.Fatalf("replay: %v, want seq %v", m, want)
		}
		if want < 3 && m["from"].(map[string]any)["user"] != "alice" {
			t.Fatalf("replayed client publication lost its stamp: %v", m)
		}
	}

	// An ephemeral-only namespace: every publish is ephemeral.
	sendJSON(t, anon, `{"op":"subscribe","topics":["typing.room1"]}`)
	expectType(t, anon, "subscribed")
	sendJSON(t, anon, `{"op":"publish","topic":"typing.room1","data":1,"id":12}`)
	if m := expectType(t, anon, "published"); m["ephemeral"] != true {
		t.Fatalf("typing ack: %v", m)
	}
	if m := expectType(t, anon, "delivery"); m["ephemeral"] != true {
		t.Fatalf("typing delivery: %v", m)
	}
}

// TestClientPublishRateLimited: publishes count against the client message
// rate; the excess gets rate_limited.
func TestClientPublishRateLimited(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.Limits.ClientRate, c.Limits.ClientBurst = 0.001, 3
	})
	c, _, _ := dialToken(t, n, "", nil)
	for i := 1; i <= 4; i++ {
		sendJSON(t, c, `{"op":"publish","topic":"open.x","data":1,"id":`+json.Number(strings.Repeat("1", i)).String()+`}`)
	}
	for i := 0; i < 3; i++ {
		expectType(t, c, "published")
	}
	if m := expectType(t, c, "error"); m["code"] != "rate_limited" {
		t.Fatalf("4th publish over a burst of 3: %v", m)
	}
}

// TestClientPublishRate: the per-connection publish limit
// (PublishLimits, --max-client-publish-rate) answers the excess publish
// with rate_limited and its id, keeps the connection open, checks
// permission first, counts ephemeral publishes too, and refills with time.
func TestClientPublishRate(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.PublishLimits = server.PublishLimits{Rate: 0.001, Burst: 3}
	})
	c, _, _ := dialToken(t, n, "?topics=typing.x", nil)
	sendJSON(t, c, `{"op":"publish","topic":"open.x","data":1,"id":1}`)
	sendJSON(t, c, `{"op":"publish","topic":"open.x","data":2,"id":2}`)
	sendJSON(t, c, `{"op":"publish","topic":"typing.x","data":3,"id":3}`) // ephemeral: counts
	sendJSON(t, c, `{"op":"publish","topic":"open.x","data":4,"id":4}`)
	sendJSON(t, c, `{"op":"publish","topic":"chat.room1","data":5,"id":5}`) // forbidden before rate_limited
	got := map[float64]string{}
	for len(got) < 5 {
		m := readJSON(t, c)
		switch m["type"] {
		case "published":
			got[m["id"].(float64)] = "published"
		case "error":
			got[m["id"].(float64)] = m["code"].(string)
			if m["code"] == "rate_limited" && !strings.Contains(m["message"].(string), "publishes per second per connection") {
				t.Errorf("rate_limited message: %v", m)
			}
		}
	}
	want := map[float64]string{1: "published", 2: "published", 3: "published", 4: "rate_limited", 5: "forbidden"}
	for id, code := range want {
		if got[id] != code {
			t.Fatalf("answers %v, want %v", got, want)
		}
	}
	// Still open: other ops work.
	sendJSON(t, c, `{"op":"subscribe","topics":["open.y"]}`)
	for m := readJSON(t, c); m["type"] != "subscribed"; m = readJSON(t, c) {
		if m["type"] == "error" {
			t.Fatalf("after rate_limited: %v", m)
		}
	}

	// A faster bucket refills: an excess publish, then one accepted again.
	n2 := startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.PublishLimits = server.PublishLimits{Rate: 20, Burst: 1}
	})
	c2, _, _ := dialToken(t, n2, "", nil)
	id := 0
	publish := func() string {
		id++
		sendJSON(t, c2, `{"op":"publish","topic":"open.x","data":1,"id":`+strconv.Itoa(id)+`}`)
		m := readJSON(t, c2)
		if m["id"] != float64(id) {
			t.Fatalf("answer %v to publish %d", m, id)
		}
		if m["type"] == "error" {
			return m["code"].(string)
		}
		return m["type"].(string)
	}
	for publish() != "rate_limited" {
		if id == 100 {
			t.Fatal("100 publishes at once over a burst of 1, none rate_limited")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); publish() != "published"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no publish accepted again after rate_limited")
		}
	}
}
