package server_test

import (
	"fmt"
	"testing"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

// A bus delivery that jumps past the topic's last seq (messages the bus lost
// and could not fill in) is announced: every subscriber gets a reset naming
// the seq it continues from, and history never claims continuity across the
// jump (a resume from before it gets a reset, not a replay with a hole).
func TestDeliverGapIsAnnouncedByReset(t *testing.T) {
	const epoch = "sgap"
	interest := make(interestLog, 4)
	n := startNode(t, false, func(c *server.Config) {
		c.AwaitPrime, c.Epoch = true, epoch
		c.OnInterest = func(topic string, on bool) { interest <- fmt.Sprintf("%s=%v", topic, on) }
	})
	a, b := dialFeed(t, n, "", 0), dialFeed(t, n, "", 0)
	sendOp(t, a, `{"op":"subscribe","topics":["news.gap"]}`)
	interest.expect(t, "news.gap=true")
	n.Prime("news.gap", stored(1, 2))
	expectFeedAck(t, a, "subscribed", "news.gap", epoch)
	subscribeFeed(t, b, `{"op":"subscribe","topics":["news.gap"]}`)
	deliver := func(seq uint64) {
		t.Helper()
		if _, err := n.Deliver("news.gap", seq, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	deliver(3)
	deliver(7) // 4..6 lost on the bus
	deliver(8)
	for _, c := range []*websocket.Conn{a, b} {
		expectSeqs(t, c, "news.gap", 3, 3)
		if m := readFeed(t, c); m.Type != "reset" || m.Topic != "news.gap" || m.From != 7 || m.Epoch != epoch {
			t.Fatalf("want reset from 7 after the gap, got %+v", m)
		}
		expectSeqs(t, c, "news.gap", 7, 8)
	}
	// A client that saw up to 3 resumes: 4..6 are gone, so it is told.
	r := dialFeed(t, n, "?topics=news.gap&since=news.gap:3&epochs=news.gap:"+epoch, 0)
	if m := readFeed(t, r); m.Type != "reset" || m.From != 7 {
		t.Fatalf("resume across the gap: want reset from 7, got %+v", m)
	}
	expectSeqs(t, r, "news.gap", 7, 8)
	// One that saw 7 resumes normally.
	r2 := dialFeed(t, n, "?topics=news.gap&since=news.gap:7&epochs=news.gap:"+epoch, 0)
	deliver(9)
	expectSeqs(t, r2, "news.gap", 8, 9)
}
