package supervisor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/metrics/metricstest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const publishSecret = "supervisor-publish-secret-supervisor-42"

// publishConfig: chat rooms where tokens that grant it publish, stamped, with history.
const publishConfig = `
[[namespace]]
name = "chat"
topics = ["chat.*"]
token_required = false
history = 100
publish = true
stamp_sender = true
ephemeral_publish = true
`

func chatToken(t *testing.T, user string, publish ...string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(time.Hour).Unix(),
		"fanwire": map[string]any{"publish": publish, "info": map[string]any{"name": user}},
	}).SignedString([]byte(publishSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// readAny reads the next message as a map.
func readAny(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func sendOp(t *testing.T, c *websocket.Conn, op string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(op)); err != nil {
		t.Fatal(err)
	}
}

// workersWithSubscribers starts `serve --workers 2` with publishConfig and
// subscribes count connections of user alice (token for chat.*) to topic
// in-band (the ack comes once the worker follows the topic on the bus),
// until both workers hold some of them.
func workersWithSubscribers(t *testing.T, topic string, count int) (n *node, alice string, subs []*websocket.Conn) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(cfg, []byte(publishConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, "--workers", "2", "--auth", "namespace", "--token-hmac-secret", publishSecret, "--config", cfg)
	alice = chatToken(t, "alice", "chat.*")
	for range count {
		c := dialRaw(t, n.ws+"?token="+alice)
		sendOp(t, c, `{"op":"subscribe","topics":["`+topic+`"]}`)
		if m := readAny(t, c); m["type"] != "subscribed" {
			t.Fatalf("subscribe: %v", m)
		}
		subs = append(subs, c)
	}
	eventually(t, "clients on both workers", func() bool {
		ws := n.workers()
		return len(ws) == 2 && ws[0].Node != nil && ws[1].Node != nil && ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0
	})
	return n, alice, subs
}

// TestWorkersClientPublish: in worker mode a client publication goes
// through NATS to the supervisor's sequencer: its ack's seq is the seq
// every subscriber on both workers receives, it continues the topic's seqs
// with HTTP publishes, it is replayed on resume with its sender stamp; an
// ephemeral one reaches both workers without a seq and takes none.
func TestWorkersClientPublish(t *testing.T) {
	const topic = "chat.room1"
	n, alice, subs := workersWithSubscribers(t, topic, 12)

	// The publisher's ack and its own delivery may come in either order.
	sendOp(t, subs[0], `{"op":"publish","topic":"chat.room1","data":{"text":"hi"},"id":7}`)
	var ack, own map[string]any
	for ack == nil || own == nil {
		m := readAny(t, subs[0])
		if m["type"] == "published" {
			ack = m
		} else {
			own = m
		}
	}
	seq, _ := ack["seq"].(float64)
	if ack["id"] != float64(7) || seq == 0 || own["seq"] != seq {
		t.Fatalf("ack %v, own delivery %v", ack, own)
	}
	for i, c := range subs[1:] {
		m := readAny(t, c)
		if m["seq"] != seq || m["from"].(map[string]any)["user"] != "alice" {
			t.Fatalf("subscriber %d: %v, want seq %v from alice", i+1, m, seq)
		}
	}

	// Ephemeral: everyone, no seq; the next publish is seq+1.
	sendOp(t, subs[5], `{"op":"publish","topic":"chat.room1","data":"typing","ephemeral":true,"id":8}`)
	for i, c := range subs {
		for {
			m := readAny(t, c)
			if m["type"] == "published" {
				if m["ephemeral"] != true {
					t.Fatalf("ephemeral ack %v", m)
				}
				continue
			}
			if m["ephemeral"] != true || m["seq"] != nil {
				t.Fatalf("subscriber %d: %v, want the ephemeral message", i, m)
			}
			break
		}
	}
	if s := n.publish(topic, `"http"`); float64(s) != seq+1 {
		t.Fatalf("HTTP publish after an ephemeral one: seq %d, want %v", s, seq+1)
	}

	// Forbidden by token: nothing is sent to the bus.
	bob := dialRaw(t, n.ws+"?token="+chatToken(t, "bob"))
	sendOp(t, bob, `{"op":"publish","topic":"chat.room1","data":1,"id":9}`)
	if m := readAny(t, bob); m["code"] != "forbidden" || m["id"] != float64(9) {
		t.Fatalf("bob: %v", m)
	}

	// Resume on any worker: the client publication (stamped) and the HTTP one.
	late := dialRaw(t, n.ws+"?topics="+topic+"&since="+topic+":"+ftoa(seq-1)+"&token="+alice)
	for _, want := range []float64{seq, seq + 1} {
		m := readAny(t, late)
		if m["seq"] != want {
			t.Fatalf("replay: %v, want seq %v", m, want)
		}
		if want == seq && (m["from"] == nil || m["from"].(map[string]any)["user"] != "alice") {
			t.Fatalf("replayed client publication without its stamp: %v", m)
		}
	}

	// Metrics: the two client publications count as source="client" on the
	// workers that took them, not as the supervisor's "internal".
	var f metricstest.Families
	eventually(t, `publishes_total{source="client"} = 2`, func() bool {
		var err error
		f, err = metricstest.Scrape(n.control + "/metrics")
		return err == nil && f.Sum("fanwire_publishes_total", "source", "client") == 2
	})
	if api, internal := f.Sum("fanwire_publishes_total", "source", "api"), f.Sum("fanwire_publishes_total", "source", "internal"); api != 1 || internal != 0 {
		t.Fatalf(`publishes_total{source="api"} = %v, {source="internal"} = %v; want 1 and 0`, api, internal)
	}
}

func ftoa(f float64) string { b, _ := json.Marshal(uint64(f)); return string(b) }

const presenceConfig = `
[[namespace]]
name = "rooms"
topics = ["room.*"]
token_required = false
presence = true
join_leave = true
`

// TestWorkersPresence: presence answers on any worker converge on the
// members of both; a join and a leave reach subscribers on both workers.
func TestWorkersPresence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(cfg, []byte(presenceConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "--workers", "2", "--auth", "namespace", "--token-hmac-secret", publishSecret, "--config", cfg)
	const topic = "room.x"
	var subs []*websocket.Conn
	for i := 0; i < 10; i++ {
		c := dialRaw(t, n.ws+"?token="+chatToken(t, "u"+ftoa(float64(i))))
		sendOp(t, c, `{"op":"subscribe","topics":["`+topic+`"]}`)
		if m := readAny(t, c); m["type"] != "subscribed" {
			t.Fatalf("subscribe: %v", m)
		}
		subs = append(subs, c)
	}
	eventually(t, "clients on both workers", func() bool {
		ws := n.workers()
		return len(ws) == 2 && ws[0].Node != nil && ws[1].Node != nil && ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0
	})
	// Each client asks until its worker's answer lists all ten users.
	for i, c := range subs {
		eventually(t, "presence converged", func() bool {
			sendOp(t, c, `{"op":"presence_stats","topic":"`+topic+`","id":1}`)
			for {
				m := readAny(t, c)
				if m["type"] == "presence_stats" {
					return m["users"] == float64(10) && m["conns"] == float64(10)
				}
			}
		})
		_ = i
	}
	// A new user: everyone on both workers hears the join, then the leave.
	zed := dialRaw(t, n.ws+"?token="+chatToken(t, "zed"))
	sendOp(t, zed, `{"op":"subscribe","topics":["`+topic+`"]}`)
	readAny(t, zed)
	awaitEvent := func(kind string) {
		for i, c := range subs {
			for {
				m := readAny(t, c)
				if m["type"] == kind && m["user"] == "zed" {
					break
				}
				if m["type"] == "leave" && m["user"] != "zed" {
					t.Fatalf("client %d: unexpected %v", i, m)
				}
			}
		}
	}
	awaitEvent("join")
	zed.Close()
	awaitEvent("leave")
}
