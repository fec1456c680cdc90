package loadtest

import (
	"context"
	"io"
	"testing"
	"time"
)

// A few thousand connections across two re-executed worker processes.
func TestConnectRunAcrossTwoWorkers(t *testing.T) {
	n := startNode(t)
	cfg := DefaultConfig("connect")
	cfg.URL = "ws://" + n.WSAddr() + "/ws?topics=connect-test"
	cfg.Conns = 3000
	cfg.Rate = 20000
	cfg.Hold = 300 * time.Millisecond
	cfg.Duration = 30 * time.Second
	cfg.Workers = 2
	cfg.Loops = 2
	relaxTimeouts(&cfg)
	cfg.MeasureMemory = true
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Connections
	if !r.OK || r.Processes != 2 || c.Attempted != 3000 || c.Established != 3000 || c.ClosedClean != 3000 {
		t.Fatalf("report: ok=%v processes=%d problems=%v counters=%+v", r.OK, r.Processes, r.Problems, c)
	}
	if c.Open != 0 || c.Failed != 0 || c.ClosedByServer != 0 || c.CloseTimeout != 0 {
		t.Fatalf("not a clean run: %+v", c)
	}
	t.Logf("elapsed %.1fs, counters %+v", r.ElapsedSec, c)
	if r.ConnectUs.Count != 3000 {
		t.Fatalf("connect latency samples = %d, want 3000", r.ConnectUs.Count)
	}
	if r.Memory == nil || r.Memory.Conns != 3000 {
		t.Fatalf("memory figure missing: %+v", r.Memory)
	}
}

// Every publish reaches every subscriber exactly once, in order.
func TestFanoutRunExactDeliveries(t *testing.T) {
	n := startNode(t)
	cfg := DefaultConfig("fanout")
	cfg.URL = "ws://" + n.WSAddr() + "/ws"
	cfg.API = "http://" + n.HTTPAddr()
	cfg.Conns = 200
	cfg.Topics = 4
	cfg.PubRate = 200
	cfg.Duration = 2 * time.Second
	cfg.Rate = 10000
	cfg.Workers = 1
	cfg.Loops = 2
	relaxTimeouts(&cfg)
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	if d == nil || !r.OK {
		t.Fatalf("report: ok=%v problems=%v delivery=%+v", r.OK, r.Problems, d)
	}
	const publishes, perTopic = 400, 50
	if d.Published != publishes || d.Expected != publishes*perTopic || d.ExpectedPlan != d.Expected {
		t.Fatalf("published %d expected %d (plan %d)", d.Published, d.Expected, d.ExpectedPlan)
	}
	if d.Delivered != d.Expected || d.Lost != 0 || d.Gaps != 0 || d.Dups != 0 {
		t.Fatalf("delivery: %+v", d)
	}
	if d.PublishRTTUs.Count != publishes {
		t.Fatalf("publish round trips recorded: %d", d.PublishRTTUs.Count)
	}
	if d.LatencyUs.Count != d.Expected {
		t.Fatalf("latency samples %d, want %d", d.LatencyUs.Count, d.Expected)
	}
	if r.Connections.ClosedClean != 200 {
		t.Fatalf("closed clean %d, want 200", r.Connections.ClosedClean)
	}
}

// A reconnect storm: every connection ever opened is closed cleanly.
func TestChurnRunReconnectsCleanly(t *testing.T) {
	n := startNode(t)
	cfg := DefaultConfig("churn")
	cfg.URL = "ws://" + n.WSAddr() + "/ws?topics=churn-test"
	cfg.Conns = 200
	cfg.Rate = 10000
	cfg.ChurnRate = 400
	cfg.Duration = time.Second
	cfg.Workers = 1
	relaxTimeouts(&cfg)
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Connections
	if !r.OK || c.Failed != 0 || c.Churned < 100 {
		t.Fatalf("ok=%v problems=%v counters=%+v", r.OK, r.Problems, c)
	}
	// Each churned close is followed by a redial, except perhaps in the last pass.
	if c.Attempted != c.Established+c.Aborted || c.ClosedClean != c.Established || c.Attempted < 200+c.Churned-int64(cfg.Loops) {
		t.Fatalf("counters do not add up: %+v", c)
	}
}

// relaxTimeouts makes connect and close deadlines generous: they are
// bounds, and a shared, loaded machine (or -race) must not turn a slow
// close handshake into a failure.
func relaxTimeouts(cfg *Config) {
	cfg.ConnectTimeout = 30 * time.Second
	cfg.CloseTimeout = 30 * time.Second
	cfg.Drain = 30 * time.Second // fanout: ends as soon as all deliveries arrived
}
