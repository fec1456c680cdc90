package supervisor_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any server message: an ack, a reset or a delivery.
type frame struct {
	Type      string            `json:"type"`
	Epochs    map[string]string `json:"epochs"`
	Topic     string            `json:"topic"`
	Seq       uint64            `json:"seq"`
	Data      json.RawMessage   `json:"data"`
	Snapshot  bool              `json:"snapshot"`
	Conflated bool              `json:"conflated"`
}

func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bad frame %s: %v", b, err)
	}
	return f
}

// TestWorkersServeCurrentValueAndResume: in worker mode a subscriber gets a
// topic's current value even if its worker never followed the topic before
// (the worker primes it from the JetStream stream before acknowledging), all
// workers name the same epoch (the stream's), and a client that reconnects
// resumes exactly where it left off on whichever worker it lands, also on a
// topic no worker followed (replayed from the messages the stream keeps).
func TestWorkersServeCurrentValueAndResume(t *testing.T) {
	n := startNode(t, "--workers", "2")
	const topic = "prices.resume"
	for i := 1; i <= 3; i++ {
		n.publish(topic, fmt.Sprintf(`{"p":%d}`, i))
	}

	// Subscribers until both workers hold some: each gets ack, then snapshot 3.
	var subs []*websocket.Conn
	var epoch string
	for i := 0; i < 40; i++ {
		c := dialRaw(t, n.ws)
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["`+topic+`"]}`)); err != nil {
			t.Fatal(err)
		}
		ack := next(t, c)
		if ack.Type != "subscribed" || ack.Epochs[topic] == "" {
			t.Fatalf("subscriber %d: ack %+v", i, ack)
		}
		if epoch == "" {
			epoch = ack.Epochs[topic]
		} else if ack.Epochs[topic] != epoch {
			t.Fatalf("subscriber %d: epoch %q, others %q", i, ack.Epochs[topic], epoch)
		}
		if s := next(t, c); !s.Snapshot || s.Seq != 3 || string(s.Data) != `{"p":3}` {
			t.Fatalf("subscriber %d: want snapshot 3, got %+v", i, s)
		}
		subs = append(subs, c)
	}
	for _, w := range n.workers() {
		if w.Node == nil || w.Node.Stats.Conns == 0 {
			t.Fatalf("a worker got none of 40 subscribers: %+v", n.workers())
		}
	}

	seq := n.publish(topic, `{"p":4}`)
	for i, c := range subs {
		if m := next(t, c); m.Seq != seq || m.Snapshot {
			t.Fatalf("subscriber %d: want live %d, got %+v", i, seq, m)
		}
	}
	// Seen up to 4; two more are published while "disconnected".
	n.publish(topic, `{"p":5}`)
	n.publish(topic, `{"p":6}`)
	for range 10 { // lands on either worker
		expectReplay(t, n, topic, epoch, 4, 6)
	}

	// A topic no worker follows: the worker a client lands on reads the
	// stream's stored messages for it and replays what the client missed.
	const fresh = "news.fresh"
	for i := 1; i <= 5; i++ {
		n.publish(fresh, fmt.Sprintf(`{"n":%d}`, i))
	}
	for range 6 {
		expectReplay(t, n, fresh, epoch, 2, 5)
	}
}

// expectReplay reconnects a client that saw topic up to since and checks
// that it receives since+1..to as plain deliveries (no reset, no snapshot).
func expectReplay(t *testing.T, n *node, topic, epoch string, since, to uint64) {
	t.Helper()
	c := dialRaw(t, fmt.Sprintf("%s?topics=%s&since=%s:%d&epochs=%s:%s", n.ws, topic, topic, since, topic, epoch))
	defer c.Close()
	for want := since + 1; want <= to; want++ {
		if m := next(t, c); m.Type != "" || m.Seq != want || m.Snapshot {
			t.Fatalf("resume of %s after %d: want replay of %d, got %+v", topic, since, want, m)
		}
	}
}
