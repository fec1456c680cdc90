package server_test

import (
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"
)

// readAckSeqs reads a subscribe ack and returns its "seqs".
func readAckSeqs(t *testing.T, c *websocket.Conn, op string) map[string]uint64 {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(op)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var ack struct {
		Type   string            `json:"type"`
		Epochs map[string]string `json:"epochs"`
		Seqs   map[string]uint64 `json:"seqs"`
	}
	if err := json.Unmarshal(b, &ack); err != nil || ack.Type != "subscribed" || ack.Seqs == nil {
		t.Fatalf("ack %s (%v): want subscribed with seqs", b, err)
	}
	return ack.Seqs
}

// The subscribe ack names, per topic, the seq after which live deliveries
// follow the catch-up: a client that has received nothing yet still knows
// where to resume (fanwire.js relies on it).
func TestSubscribeAckCarriesSeqs(t *testing.T) {
	n := startNode(t, false, nil)
	publishN(t, n, "feed.s", 1, 3)
	publishN(t, n, "prices.s", 1, 2)

	c := dialFeed(t, n, "", 0)
	seqs := readAckSeqs(t, c, `{"op":"subscribe","topics":["feed.s","prices.s","new.s"]}`)
	if seqs["feed.s"] != 3 || seqs["prices.s"] != 2 || seqs["new.s"] != 0 || len(seqs) != 3 {
		t.Fatalf("fresh subscribe: seqs %v, want feed.s 3, prices.s 2, new.s 0", seqs)
	}
	if m := readFeed(t, c); m.Topic != "prices.s" || m.Seq != 2 || !m.Snapshot {
		t.Fatalf("want the snapshot of prices.s at seq 2, got %+v", m)
	}
	// Subscribing again is a no-op and names the same starting point.
	publishN(t, n, "feed.s", 4, 4)
	expectSeqs(t, c, "feed.s", 4, 4)
	if again := readAckSeqs(t, c, `{"op":"subscribe","topics":["feed.s"]}`); again["feed.s"] != 3 {
		t.Fatalf("second subscribe: seqs %v, want feed.s 3", again)
	}

	// A resume: live deliveries follow the replay.
	r := dialFeed(t, n, "", 0)
	if seqs := readAckSeqs(t, r, `{"op":"subscribe","topics":["feed.s"],"since":{"feed.s":1}}`); seqs["feed.s"] != 4 {
		t.Fatalf("resume: seqs %v, want feed.s 4", seqs)
	}
	expectSeqs(t, r, "feed.s", 2, 4)
}
