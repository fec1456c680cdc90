package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

const presenceNamespaces = `
[[namespace]]
name = "rooms"
topics = ["room.*"]
anonymous_subscribe = true
presence = true
join_leave = true

[[namespace]]
name = "quiet"
topics = ["quiet.*"]
anonymous_subscribe = true
presence = true
`

func presenceNode(t *testing.T, edit func(*server.Config)) *server.Node {
	return startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, presenceNamespaces)
		if edit != nil {
			edit(c)
		}
	})
}

// joinAs connects as user ("" = anonymous) and subscribes to topic in-band.
func joinAs(t *testing.T, n *server.Node, user, topic string) *websocket.Conn {
	t.Helper()
	q := ""
	if user != "" {
		q = "?token=" + publisher(t, user)
	}
	c, _, _ := dialToken(t, n, q, nil)
	sendJSON(t, c, `{"op":"subscribe","topics":["`+topic+`"]}`)
	expectType(t, c, "subscribed")
	return c
}

type presenceReply struct {
	Type, Topic string
	ID          uint64
	Conns       int
	Users       int
	Anonymous   int
	Truncated   bool
	Members     []struct {
		User  string
		Info  map[string]any
		Conns int
	}
}

func askPresence(t *testing.T, c *websocket.Conn, op, topic string) presenceReply {
	t.Helper()
	sendJSON(t, c, `{"op":"`+op+`","topic":"`+topic+`","id":5}`)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var r presenceReply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == op {
			if r.ID != 5 || r.Topic != topic {
				t.Fatalf("%s", b)
			}
			return r
		}
	}
}

// TestPresence: members (users with their info and connection count),
// anonymous connections counted not listed, presence_stats, GET
// /presence/{topic}, join once per user, a reconnect within the linger
// window announces nothing, the member bound.
func TestPresence(t *testing.T) {
	n := presenceNode(t, func(c *server.Config) { c.Presence.Linger = time.Hour }) // leaves never expire here
	const topic = "room.a"
	w := joinAs(t, n, "watcher", topic)
	if m := expectType(t, w, "join"); m["user"] != "watcher" {
		t.Fatalf("own join: %v", m)
	}
	a1 := joinAs(t, n, "alice", topic)
	if m := expectType(t, w, "join"); m["user"] != "alice" || m["topic"] != topic || m["info"].(map[string]any)["name"] != "Alice" {
		t.Fatalf("join: %v", m)
	}
	expectType(t, a1, "join")          // its own
	a2 := joinAs(t, n, "alice", topic) // second connection: no join
	joinAs(t, n, "", topic)            // anonymous: no join

	p := askPresence(t, w, "presence", topic)
	if p.Conns != 4 || p.Users != 2 || p.Anonymous != 1 || len(p.Members) != 2 || p.Members[0].User != "alice" || p.Members[0].Conns != 2 || p.Members[0].Info["name"] != "Alice" || p.Members[1].User != "watcher" {
		t.Fatalf("presence: %+v", p)
	}
	if s := askPresence(t, w, "presence_stats", topic); s.Conns != 4 || s.Users != 2 || s.Members != nil {
		t.Fatalf("presence_stats: %+v", s)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/presence/" + topic)
	if err != nil {
		t.Fatal(err)
	}
	var hp presenceReply
	json.NewDecoder(resp.Body).Decode(&hp)
	resp.Body.Close()
	if resp.StatusCode != 200 || hp.Conns != 4 || len(hp.Members) != 2 {
		t.Fatalf("GET /presence: %d %+v", resp.StatusCode, hp)
	}
	for path, status := range map[string]int{"/presence/bad%20topic": 400, "/presence/other": 404} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, status)
		}
	}

	// Alice's both connections leave, one comes back within the window:
	// no leave, no join; the next thing the watcher reads is a probe.
	for _, c := range []*websocket.Conn{a1, a2} {
		sendJSON(t, c, `{"op":"unsubscribe","topics":["`+topic+`"]}`)
		expectType(t, c, "unsubscribed")
	}
	joinAs(t, n, "alice", topic)
	publishHTTP(t, n, topic, []byte(`"probe"`))
	if m := expectType(t, w, "delivery"); m["data"] != "probe" {
		t.Fatalf("after a flap: %v, want the probe (no leave, no join)", m)
	}
	if p := askPresence(t, w, "presence", topic); p.Members[0].User != "alice" || p.Members[0].Conns != 1 {
		t.Fatalf("after a flap: %+v", p)
	}

	// Presence where the namespace has none, or for a topic one may not subscribe to.
	sendJSON(t, w, `{"op":"presence","topic":"other","id":6}`)
	if m := expectType(t, w, "error"); m["code"] != "not_enabled" || m["id"] != float64(6) {
		t.Fatalf("presence of other: %v", m)
	}
}

// TestPresenceLeaveAndBound: the leave comes once the window has passed;
// beyond MaxMembers users are counted, not listed, not announced.
func TestPresenceLeaveAndBound(t *testing.T) {
	n := presenceNode(t, func(c *server.Config) { c.Presence.Linger, c.Presence.MaxMembers = time.Millisecond, 2 })
	const topic = "room.b"
	w := joinAs(t, n, "watcher", topic)
	expectType(t, w, "join")
	b := joinAs(t, n, "bob", topic)
	expectType(t, w, "join")
	joinAs(t, n, "carol", topic) // third user, over the bound
	if p := askPresence(t, w, "presence", topic); p.Conns != 3 || p.Users != 2 || !p.Truncated || len(p.Members) != 2 {
		t.Fatalf("over the bound: %+v", p)
	}
	b.Close()
	if m := expectType(t, w, "leave"); m["user"] != "bob" || m["topic"] != topic {
		t.Fatalf("leave: %v", m)
	}
	// Without join_leave: presence kept, nothing announced.
	q := joinAs(t, n, "dave", "quiet.x")
	publishHTTP(t, n, "quiet.x", []byte(`1`))
	if m := expectType(t, q, "delivery"); m["seq"] != float64(1) {
		t.Fatalf("quiet: %v", m)
	}
	if p := askPresence(t, q, "presence", "quiet.x"); p.Users != 1 {
		t.Fatalf("quiet presence: %+v", p)
	}
}

// TestPresenceRemoteExpiry: another process's snapshot (worker mode merges
// them from NATS) lists its users here; when it stops coming (the process
// died) they expire and this node's subscribers hear their leave, once,
// except for a user still connected here.
func TestPresenceRemoteExpiry(t *testing.T) {
	n := presenceNode(t, func(c *server.Config) { c.Presence.RemoteTTL = 1500 * time.Millisecond })
	const topic = "room.r"
	w := joinAs(t, n, "watcher", topic)
	expectType(t, w, "join")
	member := func(u string) server.PresenceMember { return server.PresenceMember{User: u, Conns: 1} }
	snap := server.PresenceSnapshot{Topic: topic, Conns: 3, Members: []server.PresenceMember{member("zed"), member("yan"), member("watcher")}}
	n.MergePresence("dead-1", snap)
	n.MergePresence("dead-2", server.PresenceSnapshot{Topic: topic, Conns: 1, Members: []server.PresenceMember{member("zed")}})
	if p := askPresence(t, w, "presence", topic); p.Users != 3 || p.Conns != 5 {
		t.Fatalf("with the remote snapshots: %+v", p)
	}
	// Neither source refreshes: both expire on a later tick.
	gone := map[string]bool{}
	for len(gone) < 2 {
		m := expectType(t, w, "leave")
		if u := m["user"].(string); gone[u] || (u != "zed" && u != "yan") {
			t.Fatalf("leave %v (already: %v)", m, gone)
		} else {
			gone[u] = true
		}
	}
	publishHTTP(t, n, topic, []byte(`"probe"`))
	if m := expectType(t, w, "delivery"); m["data"] != "probe" {
		t.Fatalf("after the expiry: %v, want the probe (no leave for watcher)", m)
	}
	if p := askPresence(t, w, "presence", topic); p.Users != 1 || p.Conns != 1 || p.Members[0].User != "watcher" {
		t.Fatalf("after the expiry: %+v", p)
	}
}
