package supervisor_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Presence across processes (issue 12): two nodes sharing one external
// nats-server, and a worker killed with -9. The documented bounds (README
// "Presence and join/leave"): snapshots every 1 s, dropped after 3 s
// without one; a leave comes 2-3 s after the user's last connection left.

// roomsConfig: presence with join/leave, and tokens that grant it may publish.
const roomsConfig = `
[[namespace]]
name = "rooms"
topics = ["room.*"]
token_required = false
presence = true
join_leave = true
publish = true
`

func roomsNode(t *testing.T, args ...string) *node {
	cfg := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(cfg, []byte(roomsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return startNode(t, append(args, "--auth", "namespace", "--token-hmac-secret", publishSecret, "--config", cfg)...)
}

// member is one user's WebSocket subscribed to a room; a goroutine keeps
// everything it receives, so waiting for one message loses no other.
type member struct {
	t      *testing.T
	user   string
	conn   *websocket.Conn
	mu     sync.Mutex
	log    []map[string]any
	nextID int
	done   chan struct{} // closed when the connection is gone
}

func joinRoom(t *testing.T, n *node, user, topic string) *member {
	t.Helper()
	c := dialRaw(t, n.ws+"?token="+chatToken(t, user, "room.*"))
	sendOp(t, c, `{"op":"subscribe","topics":["`+topic+`"]}`)
	if m := readAny(t, c); m["type"] != "subscribed" {
		t.Fatalf("%s subscribe: %v", user, m)
	}
	c.SetReadDeadline(time.Time{})
	m := &member{t: t, user: user, conn: c, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var v map[string]any
			if json.Unmarshal(b, &v) == nil {
				m.mu.Lock()
				m.log = append(m.log, v)
				m.mu.Unlock()
			}
		}
	}()
	return m
}

func (m *member) gone() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// find is the first message received so far that ok accepts.
func (m *member) find(ok func(map[string]any) bool) map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.log {
		if ok(v) {
			return v
		}
	}
	return nil
}

func (m *member) count(ok func(map[string]any) bool) (n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.log {
		if ok(v) {
			n++
		}
	}
	return n
}

func event(kind, user string) func(map[string]any) bool {
	return func(v map[string]any) bool { return v["type"] == kind && v["user"] == user }
}

// await waits (bounded, see eventually) for a message ok accepts.
func (m *member) await(what string, ok func(map[string]any) bool) map[string]any {
	m.t.Helper()
	var v map[string]any
	eventually(m.t, m.user+" to get "+what, func() bool { v = m.find(ok); return v != nil })
	return v
}

// request sends op with a fresh id and waits for the answer with that id.
func (m *member) request(op string) map[string]any {
	m.t.Helper()
	m.mu.Lock()
	m.nextID++
	id := m.nextID
	m.mu.Unlock()
	sendOp(m.t, m.conn, strings.Replace(op, "{", fmt.Sprintf(`{"id":%d,`, id), 1))
	return m.await(op, func(v map[string]any) bool { return v["id"] == float64(id) && v["type"] != nil })
}

// members is the user list this member's worker answers for topic.
func (m *member) members(topic string) []string {
	m.t.Helper()
	r := m.request(`{"op":"presence","topic":"` + topic + `"}`)
	var users []string
	list, _ := r["members"].([]any)
	for _, x := range list {
		users = append(users, x.(map[string]any)["user"].(string))
	}
	return users
}

// awaitMembers waits until m's worker lists exactly want (sorted).
func (m *member) awaitMembers(topic string, want []string) time.Duration {
	m.t.Helper()
	start := time.Now()
	var got []string
	eventually(m.t, fmt.Sprintf("%s's presence to list %v", m.user, want), func() bool {
		got = m.members(topic)
		return slices.Equal(got, want)
	})
	return time.Since(start)
}

// TestTwoNodesPresence: a user on node A and one on node B (each a
// supervisor with one worker) in the same room, sharing an external
// nats-server, see each other's join, both in presence, and the other's
// leave. With the bus gone, a client publish is answered bus_unavailable.
func TestTwoNodesPresence(t *testing.T) {
	url, stopNATS := startNATSServer(t)
	a := roomsNode(t, "--workers", "1", "--nats", url)
	b := roomsNode(t, "--workers", "1", "--nats", url)
	const topic = "room.nodes"

	alice := joinRoom(t, a, "alice", topic)
	alice.await("her own join", event("join", "alice"))
	started := time.Now()
	bob := joinRoom(t, b, "bob", topic)
	bob.await("his own join", event("join", "bob"))
	alice.await("bob's join from node B", event("join", "bob"))
	t.Logf("bob's join reached alice on the other node after %v", time.Since(started).Round(time.Millisecond))
	tookA := alice.awaitMembers(topic, []string{"alice", "bob"})
	tookB := bob.awaitMembers(topic, []string{"alice", "bob"})
	t.Logf("presence converged on node A after %v, on node B after %v more (bound: one 1 s snapshot period)",
		tookA.Round(time.Millisecond), tookB.Round(time.Millisecond))

	left := time.Now()
	bob.conn.Close()
	alice.await("bob's leave from node B", event("leave", "bob"))
	t.Logf("bob's leave reached alice %v after he closed (linger 2 s, then the 1 s tick)", time.Since(left).Round(time.Millisecond))
	alice.awaitMembers(topic, []string{"alice"})
	if n := alice.count(event("join", "bob")); n != 1 {
		t.Fatalf("alice got %d joins for bob, want 1", n)
	}

	// The bus goes away: the worker answers a client publish with
	// bus_unavailable and its id, and the connection stays open.
	stopNATS()
	var answer map[string]any
	eventually(t, "a client publish answered bus_unavailable", func() bool {
		answer = alice.request(`{"op":"publish","topic":"` + topic + `","data":1}`)
		return answer["type"] == "error"
	})
	if answer["code"] != "bus_unavailable" || answer["message"] == "" {
		t.Fatalf("client publish with NATS down: %v, want bus_unavailable", answer)
	}
	if alice.gone() {
		t.Fatal("the connection closed after bus_unavailable")
	}
}

// TestKilledWorkerMembersExpire: users on both workers of one node; kill
// -9 one worker. Its clients are cut off, the supervisor restarts it, and
// the clients on the other worker hear a leave for each of the dead
// worker's users (once, none for their own) and stop seeing them in
// presence, within the 3 s snapshot expiry plus a tick.
func TestKilledWorkerMembersExpire(t *testing.T) {
	n := roomsNode(t, "--workers", "2")
	const topic = "room.crash"
	var members []*member
	var users []string
	// Users until both workers have some (the kernel spreads connections).
	for {
		user := fmt.Sprintf("u%02d", len(members))
		members = append(members, joinRoom(t, n, user, topic))
		users = append(users, user)
		var ws []workerStatus
		eventually(t, "the workers to count every connection", func() bool {
			ws = n.workers()
			return len(ws) == 2 && ws[0].Node != nil && ws[1].Node != nil && ws[0].Node.Stats.Conns+ws[1].Node.Stats.Conns == int64(len(members))
		})
		if len(members) >= 6 && ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0 {
			break
		}
		if len(members) == 40 {
			t.Fatalf("40 connections, all on one worker: %+v", ws)
		}
	}
	for _, m := range members {
		m.awaitMembers(topic, users) // each worker has merged the other's snapshot
	}

	victim := n.workers()[0]
	killed := time.Now()
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var cut, kept []*member
	eventually(t, "the victim's clients to be cut off", func() bool {
		cut, kept = nil, nil
		for _, m := range members {
			if m.gone() {
				cut = append(cut, m)
			} else {
				kept = append(kept, m)
			}
		}
		return int64(len(cut)) == victim.Node.Stats.Conns
	})
	var keptUsers []string
	for _, m := range kept {
		keptUsers = append(keptUsers, m.user)
	}
	for _, m := range kept {
		for _, c := range cut {
			m.await(c.user+"'s leave", event("leave", c.user))
		}
	}
	t.Logf("killed worker pid %d: %d user(s) cut off; every leave reached the %d others %v after the kill (bound: 3 s expiry + the 1 s tick after the last 1 s snapshot)",
		victim.PID, len(cut), len(kept), time.Since(killed).Round(time.Millisecond))
	for _, m := range kept {
		m.awaitMembers(topic, keptUsers)
		for _, c := range cut {
			if k := m.count(event("leave", c.user)); k != 1 {
				t.Fatalf("%s got %d leaves for %s, want 1", m.user, k, c.user)
			}
		}
		for _, u := range keptUsers {
			if m.find(event("leave", u)) != nil {
				t.Fatalf("%s got a leave for %s, who is still connected", m.user, u)
			}
		}
	}
	eventually(t, "the killed worker restarted", func() bool {
		w := n.workers()[0]
		return w.Ready && w.PID != victim.PID && w.Restarts >= 1
	})
}
