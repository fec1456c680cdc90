package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

// interestLog records OnInterest calls.
type interestLog chan string

func (l interestLog) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-l:
		if got != want {
			t.Fatalf("interest: got %s, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("interest: no %s", want)
	}
}

func sendOp(t *testing.T, c *websocket.Conn, op string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(op)); err != nil {
		t.Fatal(err)
	}
}

func expectFeedAck(t *testing.T, c *websocket.Conn, typ, topic, epoch string) {
	t.Helper()
	m := readFeed(t, c)
	if m.Type != typ || len(m.Topics) != 1 || m.Topics[0] != topic || epoch != "" && m.Epochs[topic] != epoch {
		t.Fatalf("want %s ack for %s (epoch %q), got %+v", typ, topic, epoch, m)
	}
}

// With AwaitPrime (worker mode) a subscription to a topic the node does not
// follow yet waits for Prime: its ack and snapshot come after it, reflect
// what the bus said, and live messages that beat the prime are not lost.
func TestAwaitPrimeSubscriptionsWaitForTheBus(t *testing.T) {
	const epoch = "stest"
	interest := make(interestLog, 16)
	n := startNode(t, false, func(c *server.Config) {
		c.AwaitPrime, c.Epoch = true, epoch
		c.OnInterest = func(topic string, on bool) { interest <- fmt.Sprintf("%s=%v", topic, on) }
	})
	deliver := func(topic string, seq uint64) {
		t.Helper()
		if _, err := n.Deliver(topic, seq, fmt.Appendf(nil, "%d", seq)); err != nil {
			t.Fatal(err)
		}
	}

	c1 := dialFeed(t, n, "", 0)
	sendOp(t, c1, `{"op":"subscribe","topics":["prices.p","other"]}`)
	interest.expect(t, "prices.p=true")
	interest.expect(t, "other=true")
	deliver("prices.p", 8) // the live stream beats the stored last message
	n.Prime("prices.p", stored(6, 7))
	expectFeedAck(t, c1, "subscribed", "prices.p", epoch)
	if m := readFeed(t, c1); !m.Snapshot || m.Seq != 8 || string(m.Data) != "8" {
		t.Fatalf("want snapshot 8, got %+v", m)
	}
	n.Prime("other", nil)
	expectFeedAck(t, c1, "subscribed", "other", epoch)
	deliver("other", 1)
	expectSeqs(t, c1, "other", 1, 1)

	// Unsubscribed while waiting: never served, and the node stops following.
	c2 := dialFeed(t, n, "", 0)
	sendOp(t, c2, `{"op":"subscribe","topics":["news.x"]}`)
	interest.expect(t, "news.x=true")
	sendOp(t, c2, `{"op":"unsubscribe","topics":["news.x"]}`)
	expectFeedAck(t, c2, "unsubscribed", "news.x", "")
	n.Prime("news.x", stored(3, 3))
	interest.expect(t, "news.x=false")
	deliver("news.x", 4)
	sendOp(t, c2, `{"op":"subscribe","topics":["other"]}`) // primed: answered at once
	expectFeedAck(t, c2, "subscribed", "other", epoch)

	// Followed again after nobody watched: what was kept is stale, so the
	// topic waits for a new prime and serves its value, not the old one.
	sendOp(t, c1, `{"op":"unsubscribe","topics":["prices.p"]}`)
	expectFeedAck(t, c1, "unsubscribed", "prices.p", "")
	interest.expect(t, "prices.p=false")
	c3 := dialFeed(t, n, "?topics=prices.p", 0)
	interest.expect(t, "prices.p=true")
	n.Prime("prices.p", stored(10, 12))
	if m := readFeed(t, c3); !m.Snapshot || m.Seq != 12 {
		t.Fatalf("want snapshot 12 after re-following, got %+v", m)
	}
	deliver("prices.p", 13)
	expectSeqs(t, c3, "prices.p", 13, 13)
}

// stored is what a bus would hand over: seqs from..to, data = the seq.
func stored(from, to uint64) []server.StoredMessage {
	var out []server.StoredMessage
	for s := from; s <= to; s++ {
		out = append(out, server.StoredMessage{Seq: s, Data: fmt.Appendf(nil, "%d", s), At: time.Now()})
	}
	return out
}

// The stored messages a prime brings become the topic's history, ahead of
// those that already came live, so a client resumes on a node that only
// just started to follow the topic.
func TestAwaitPrimeResumesFromStoredHistory(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.AwaitPrime, c.Epoch = true, "stest" })
	c := dialFeed(t, n, "?topics=news.h&since=news.h:2&epochs=news.h:stest", 0)
	if _, err := n.Deliver("news.h", 6, []byte("6")); err != nil { // live beats the prime
		t.Fatal(err)
	}
	n.Prime("news.h", stored(1, 6))
	expectSeqs(t, c, "news.h", 3, 6)
	if _, err := n.Deliver("news.h", 7, []byte("7")); err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, c, "news.h", 7, 7)

	// A later subscriber on the now primed topic resumes from the same history.
	c2 := dialFeed(t, n, "?topics=news.h&since=news.h:4&epochs=news.h:stest", 0)
	expectSeqs(t, c2, "news.h", 5, 7)
}
