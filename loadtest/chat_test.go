package loadtest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/namespace"
)

// startChatNode runs a node with the namespace file `fanwire load chat`
// documents (anonymous publish into chat.load.*); nsFile "" = none.
func startChatNode(t *testing.T, nsFile string) *server.Node {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if nsFile != "" {
		set, err := namespace.Load(nsFile, namespace.Defaults{History: cfg.History, HistoryTTL: cfg.HistoryTTL})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth.Namespaces = set
	}
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

func chatConfig(n *server.Node, users, rooms, hot, workers int) Config {
	cfg := DefaultConfig("chat")
	cfg.URL = "ws://" + n.WSAddr() + "/ws"
	cfg.Users, cfg.Rooms, cfg.HotRoomUsers = users, rooms, hot
	cfg.PublishInterval = 200 * time.Millisecond
	cfg.Duration = time.Second
	cfg.Rate = 10000
	cfg.Workers = workers
	cfg.Loops = 2
	relaxTimeouts(&cfg)
	return cfg
}

// Every subscriber gets every acknowledged message of its room once, in
// order; the figures add up.
func TestChatRunExactDeliveries(t *testing.T) {
	for _, workers := range []int{1, 2} {
		n := startChatNode(t, "scripts/chat-load.toml")
		cfg := chatConfig(n, 50, 5, 20, workers)
		r, err := Run(context.Background(), cfg, io.Discard, true)
		if err != nil {
			t.Fatal(err)
		}
		ch := r.Chat
		if ch == nil || !r.OK {
			t.Fatalf("workers %d: ok=%v problems=%v chat=%+v", workers, r.OK, r.Problems, ch)
		}
		if r.Processes != workers || ch.Subscribers != 70 || ch.Acked == 0 || ch.Acked != ch.Sent || ch.Errors != 0 {
			t.Fatalf("workers %d: processes %d, chat %+v", workers, r.Processes, ch)
		}
		if ch.Lost != 0 || ch.Dups != 0 || ch.OutOfOrder != 0 || ch.SeqsUnacked != 0 || ch.DupAcks != 0 || ch.Delivered != ch.Expected {
			t.Fatalf("workers %d: delivery %+v", workers, ch)
		}
		// Each ack of a room is owed to each of its members (the sender too).
		if ch.Expected == 0 || ch.LatencyUs.Count != ch.Delivered || ch.AckUs.Count != ch.Acked {
			t.Fatalf("workers %d: expected %d, latency samples %d of %d, ack samples %d of %d",
				workers, ch.Expected, ch.LatencyUs.Count, ch.Delivered, ch.AckUs.Count, ch.Acked)
		}
		if r.Connections.ClosedClean != 70 {
			t.Fatalf("workers %d: closed clean %d, want 70", workers, r.Connections.ClosedClean)
		}
	}
}

// Without a namespace that allows client publish every publish is refused
// with forbidden, and the run fails saying so.
func TestChatRunReportsRefusedPublishes(t *testing.T) {
	n := startChatNode(t, "")
	cfg := chatConfig(n, 10, 2, 0, 1)
	cfg.Duration = 500 * time.Millisecond
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := r.Chat
	if r.OK || ch == nil || ch.Sent == 0 || ch.Errors != ch.Sent || ch.ErrorsBy["forbidden"] != ch.Sent || ch.Acked != 0 {
		t.Fatalf("ok=%v problems=%v chat=%+v", r.OK, r.Problems, ch)
	}
}

// The chat oracle tells late (out of order) from duplicate deliveries and
// takes back a gap when the missing seq arrives late.
func TestChatOracleSeparatesLateFromDuplicate(t *testing.T) {
	plan := Plan{URL: "ws://127.0.0.1:1/ws", Conns: 1, Rate: 1, Loops: 1, TrackSeq: true,
		Chat: &ChatPlan{Users: 1, Rooms: 1, Interval: time.Second, HotInterval: time.Second, Topics: []string{"a"}}}
	plan.withDefaults()
	l, err := newLoop(0, &plan, &target{}, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.p.close()
	slot := l.allocSlot()
	l.conns[slot].state = stOpen
	var data []byte
	for _, m := range []string{
		`{"type":"published","id":1,"topic":"a","seq":1}`,
		`{"topic":"a","seq":1,"data":{"t":1}}`,
		`{"topic":"a","seq":3,"data":{"t":1}}`, // 2 missing...
		`{"topic":"a","seq":2,"data":{"t":1}}`, // ...arrives late
		`{"topic":"a","seq":3,"data":{"t":1}}`, // duplicate
		`{"type":"join","topic":"a","user":"u"}`,
		`{"type":"error","id":2,"code":"rate_limited","message":"x"}`,
		`{"topic":"a","seq":5,"data":{"t":1}}`, // 4 never comes
	} {
		data = codec.AppendFrame(data, codec.OpText, []byte(m))
	}
	if _, alive := l.frames(slot, data, time.Now().UnixNano()); !alive {
		t.Fatal("frames failed")
	}
	s := l.stats.counters()
	if s.Messages != 5 || s.Dups != 1 || s.OutOfOrder != 1 || s.Gaps != 1 || s.PubAcked != 1 || s.PubErrBy["rate_limited"] != 1 {
		t.Fatalf("counters %+v: want 5 deliveries, 1 dup, 1 late, 1 gap, 1 ack, 1 rate_limited", s)
	}
	if got, last := l.chat.got[0], l.chat.last[0]; got != 4 || last != 5 {
		t.Fatalf("user received %d distinct, last %d; want 4, 5", got, last)
	}
}

// Server CPU is read from /proc stat lines (a command name may hold spaces
// and parentheses) over a process and its descendants.
func TestServerCPUReadsProcessTree(t *testing.T) {
	line := []byte("4242 (fan wire (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0")
	if v, err := statCPU(line); err != nil || v != 3.25 {
		t.Fatalf("statCPU = %v, %v; want 3.25 s", v, err)
	}
	if _, err := statCPU([]byte("4242 (x) S 1")); err == nil {
		t.Fatal("a short line must fail")
	}
	tree, err := treeCPU(os.Getpid())
	if err != nil || len(tree) == 0 {
		t.Fatalf("treeCPU(self) = %v, %v", tree, err)
	}
	if _, err := treeCPU(1 << 30); err == nil {
		t.Fatal("a missing pid must fail")
	}
}
