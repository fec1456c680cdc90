package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

// feedMsg is any server -> client message of the feed contract.
type feedMsg struct {
	Type      string            `json:"type"`
	Topic     string            `json:"topic"`
	Topics    []string          `json:"topics"`
	Epochs    map[string]string `json:"epochs"`
	Seq       uint64            `json:"seq"`
	From      uint64            `json:"from"`
	Epoch     string            `json:"epoch"`
	Snapshot  bool              `json:"snapshot"`
	Conflated bool              `json:"conflated"`
	Skipped   []uint64          `json:"skipped"`
	Data      json.RawMessage   `json:"data"`
}

func dialFeed(t testing.TB, n *server.Node, query string, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if rcvbuf > 0 {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
		}}
		d.NetDialContext = nd.DialContext
	}
	c, _, err := d.Dial("ws://"+n.WSAddr()+"/ws"+query, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFeed(t testing.TB, c *websocket.Conn) feedMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m feedMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	return m
}

func subscribeFeed(t testing.TB, c *websocket.Conn, op string) feedMsg {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(op)); err != nil {
		t.Fatal(err)
	}
	ack := readFeed(t, c)
	if ack.Type != "subscribed" {
		t.Fatalf("want subscribed ack, got %+v", ack)
	}
	return ack
}

func publishN(t testing.TB, n *server.Node, topic string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, _, err := n.Publish(topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

func expectSeqs(t testing.TB, c *websocket.Conn, topic string, from, to uint64) {
	t.Helper()
	for want := from; want <= to; want++ {
		m := readFeed(t, c)
		if m.Topic != topic || m.Seq != want || m.Snapshot || m.Conflated {
			t.Fatalf("want %s seq %d, got %+v", topic, want, m)
		}
	}
}

func TestFeedsResumeAfterDisconnect(t *testing.T) {
	n := startNode(t, false, nil)
	c := dialFeed(t, n, "", 0)
	ack := subscribeFeed(t, c, `{"op":"subscribe","topics":["r.feed"]}`)
	epoch := ack.Epochs["r.feed"]
	if epoch == "" {
		t.Fatalf("ack without epoch: %+v", ack)
	}
	publishN(t, n, "r.feed", 1, 50)
	expectSeqs(t, c, "r.feed", 1, 20)
	c.Close() // forced disconnect with 30 messages unread

	publishN(t, n, "r.feed", 51, 100)
	c2 := dialFeed(t, n, "", 0)
	subscribeFeed(t, c2, `{"op":"subscribe","topics":["r.feed"],"since":{"r.feed":20},"epochs":{"r.feed":"`+epoch+`"}}`)
	expectSeqs(t, c2, "r.feed", 21, 100)
	publishN(t, n, "r.feed", 101, 101)
	expectSeqs(t, c2, "r.feed", 101, 101) // live stream joins without a gap or duplicate

	// The same resume by URL.
	c3 := dialFeed(t, n, "?topics=r.feed&since=r.feed:95&epochs=r.feed:"+epoch, 0)
	expectSeqs(t, c3, "r.feed", 96, 101)
	if s := n.Stats(); s.Replays != 2 {
		t.Errorf("replays = %d, want 2", s.Replays)
	}
}

func TestFeedsResumeBeyondHistory(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.History = 10 })
	publishN(t, n, "prices.X", 1, 50) // last-value topic (default patterns)
	publishN(t, n, "plain", 1, 50)    // no last value

	c := dialFeed(t, n, "", 0)
	subscribeFeed(t, c, `{"op":"subscribe","topics":["prices.X"],"since":{"prices.X":5}}`)
	if m := readFeed(t, c); m.Type != "reset" || m.Topic != "prices.X" || m.From != 50 || m.Epoch == "" {
		t.Fatalf("want reset from 50, got %+v", m)
	}
	if m := readFeed(t, c); !m.Snapshot || m.Seq != 50 || string(m.Data) != "50" {
		t.Fatalf("want snapshot of seq 50, got %+v", m)
	}

	subscribeFeed(t, c, `{"op":"subscribe","topics":["plain"],"since":{"plain":5}}`)
	if m := readFeed(t, c); m.Type != "reset" || m.From != 41 {
		t.Fatalf("want reset from 41 (oldest held), got %+v", m)
	}
	expectSeqs(t, c, "plain", 41, 50)

	c2 := dialFeed(t, n, "", 0)
	subscribeFeed(t, c2, `{"op":"subscribe","topics":["plain"],"since":{"plain":48},"epochs":{"plain":"another-epoch"}}`)
	if m := readFeed(t, c2); m.Type != "reset" {
		t.Fatalf("epoch mismatch: want reset, got %+v", m)
	}
}

// checkStream verifies that a subscriber's stream has no unannounced gap or
// duplicate: each message is prev+1, or a conflated one whose skipped range
// is exactly the gap.
func checkStream(prev uint64, m feedMsg) error {
	switch {
	case m.Conflated && len(m.Skipped) == 2 && m.Skipped[0] == prev+1 && m.Seq == m.Skipped[1]+1:
		return nil
	case !m.Conflated && m.Seq == prev+1:
		return nil
	}
	return errors.New("after seq " + strconv.FormatUint(prev, 10) + " got seq " + strconv.FormatUint(m.Seq, 10) +
		" conflated=" + strconv.FormatBool(m.Conflated))
}

func TestFeedsSnapshotWhilePublishing(t *testing.T) {
	n := startNode(t, false, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ~50k publishes/s on a last-value topic
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = n.Publish("prices.hot", []byte(strconv.Itoa(i)))
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(20 * time.Millisecond)

	for i := 0; i < 60; i++ {
		c := dialFeed(t, n, "?topics=prices.hot", 0)
		first := readFeed(t, c)
		if !first.Snapshot || first.Seq == 0 || string(first.Data) != strconv.FormatUint(first.Seq, 10) {
			t.Fatalf("subscriber %d: first message is not the snapshot: %+v", i, first)
		}
		prev := first.Seq
		for j := 0; j < 30; j++ {
			m := readFeed(t, c)
			if err := checkStream(prev, m); err != nil {
				t.Fatalf("subscriber %d after snapshot %d: %v", i, first.Seq, err)
			}
			prev = m.Seq
		}
		c.Close()
	}
}

func TestFeedsSlowConsumer(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.MaxPending = 64 << 10
		c.SendBuffer = 64 << 10 // so the kernel does not absorb a 1.5 s pause
		c.SlowGrace = 5 * time.Second
	})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	healthy := dialFeed(t, n, "?topics=prices.fast", 0)
	stalled := dialFeed(t, n, "?topics=prices.fast", 4096) // stops reading for 10 s
	paused := dialFeed(t, n, "?topics=prices.fast", 4096)  // stops reading for 1.5 s (< grace)

	rate, seconds := 10000, 10
	if raceEnabled {
		rate = 2000 // the race detector makes the clients' reading several times slower
	}
	perTick := rate / 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		pad := strings.Repeat("x", 60)
		for i := 1; i <= rate*seconds; i++ {
			_, _, _ = n.Publish("prices.fast", []byte(`{"i":`+strconv.Itoa(i)+`,"pad":"`+pad+`"}`))
			if i%perTick == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(2)
	go func() { // every message, in order, for the healthy subscriber
		defer wg.Done()
		var prev uint64
		for prev < uint64(rate*seconds) {
			_ = healthy.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, b, err := healthy.ReadMessage()
			if err != nil {
				errs <- errors.New("healthy: " + err.Error())
				return
			}
			var m feedMsg
			_ = json.Unmarshal(b, &m)
			if m.Seq != prev+1 || m.Conflated {
				errs <- errors.New("healthy subscriber: " + checkStreamMsg(prev, m))
				return
			}
			prev = m.Seq
		}
	}()
	go func() { // pauses, then must get a conflated frame covering its gap and stay open
		defer wg.Done()
		time.Sleep(1500 * time.Millisecond)
		var prev uint64
		sawConflated := false
		for prev < uint64(rate*seconds) {
			_ = paused.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, b, err := paused.ReadMessage()
			if err != nil {
				errs <- errors.New("paused: " + err.Error())
				return
			}
			var m feedMsg
			_ = json.Unmarshal(b, &m)
			if prev > 0 {
				if err := checkStream(prev, m); err != nil {
					errs <- errors.New("paused subscriber: " + err.Error())
					return
				}
			}
			sawConflated = sawConflated || m.Conflated
			prev = m.Seq
		}
		if !sawConflated {
			errs <- errors.New("paused subscriber was never conflated")
		}
	}()

	time.Sleep(time.Duration(seconds) * time.Second)
	s := n.Stats()
	// The stalled client reads again: the backlog it was sent, then close 1008.
	var closeErr *websocket.CloseError
	for {
		_ = stalled.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, _, err := stalled.ReadMessage(); err != nil {
			if !errors.As(err, &closeErr) || closeErr.Code != websocket.ClosePolicyViolation {
				t.Fatalf("stalled client: want close 1008, got %v", err)
			}
			break
		}
	}
	<-done
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("stats after 10 s at %d msg/s: %+v; close reason %q; heap %d -> %d KiB",
		rate, s, closeErr.Text, before.HeapAlloc>>10, after.HeapAlloc>>10)
	if s.SlowMode < 2 || s.Conflated == 0 || s.SlowClosed != 1 {
		t.Errorf("want 2+ slow-mode entries, conflation and 1 slow close, got %+v", s)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Errorf("heap grew by %d MiB: memory is not bounded", grown>>20)
	}
}

func checkStreamMsg(prev uint64, m feedMsg) string {
	return "after seq " + strconv.FormatUint(prev, 10) + " got " + strconv.FormatUint(m.Seq, 10) +
		" conflated=" + strconv.FormatBool(m.Conflated)
}

func TestFeedsPacedShutdown(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
	cfg.DrainRate, cfg.DrainWindow = 1000, 2*time.Second
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	const clients = 200
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = dialFeed(t, n, "?topics=x", 0)
	}
	type closed struct {
		at    time.Time
		delay int
		err   error
	}
	results := make(chan closed, clients)
	for _, c := range conns {
		go func(c *websocket.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				results <- closed{err: err}
				return
			}
			ms, ok := strings.CutPrefix(ce.Text, "going away; reconnect in ")
			d, perr := strconv.Atoi(strings.TrimSuffix(ms, "ms"))
			if !ok || perr != nil {
				results <- closed{err: errors.New("no reconnect hint in " + ce.Text)}
				return
			}
			results <- closed{at: time.Now(), delay: d}
		}(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for i := 0; i < clients; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.delay < 0 || r.delay >= 2000 {
			t.Errorf("reconnect hint %d ms outside [0, 2000)", r.delay)
		}
		if first.IsZero() || r.at.Before(first) {
			first = r.at
		}
		if r.at.After(last) {
			last = r.at
		}
	}
	if spread := last.Sub(first); spread < 120*time.Millisecond {
		t.Errorf("%d closes at 1000/s took %v, want them paced over ~200 ms", clients, spread)
	}
}
