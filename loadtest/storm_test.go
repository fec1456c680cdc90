package loadtest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

// A restart storm in small (bench/scripts/storm.sh runs it with 100,000
// connections): 2,000 clients held with --resume, the node shut down
// (paced 1001 closes with reconnect hints; connections arriving meanwhile
// get 503 + Retry-After) and started again on the same port. Every client
// must be back, none given up, and the report must say how they came back.
// The second run has a connection-rate limit on the new node: the excess
// gets 503 + Retry-After and is honoured.
func TestReconnectStormAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connRate  float64
		transport string
	}{{"unlimited", 0, ""}, {"max-conn-rate", 800, ""}, {"sse", 0, TransportSSE}} {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 2000
			a := startStormNode(t, "127.0.0.1:0", 0)
			addr := a.WSAddr()
			cfg := DefaultConfig("connect")
			cfg.URL = "ws://" + addr + "/ws?topics=storm"
			cfg.Conns, cfg.Rate = conns, 10000
			cfg.Hold, cfg.Duration = 60*time.Second, 60*time.Second
			cfg.Workers, cfg.Loops = 1, 2
			cfg.Resume, cfg.EndWhenBack = true, true
			cfg.Transport = tc.transport
			relaxTimeouts(&cfg)
			type result struct {
				r   *Report
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := Run(context.Background(), cfg, io.Discard, true)
				done <- result{r, err}
			}()
			waitFor(t, "the clients to connect", 30*time.Second, func() bool { return a.Stats().Conns == conns })
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := shutdownOnce(a)(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			cancel()
			t.Logf("shutdown took %s", time.Since(t0))
			b := startStormNode(t, addr, tc.connRate)
			t.Logf("restarted after %s", time.Since(t0))
			var res result
			select {
			case res = <-done:
			case <-time.After(90 * time.Second):
				t.Fatal("the load generator did not end")
			}
			t.Logf("load generator done after %s (elapsed %.1fs)", time.Since(t0), res.r.ElapsedSec)
			if res.err != nil {
				t.Fatal(res.err)
			}
			r, rc := res.r, res.r.Reconnect
			if rc == nil {
				t.Fatalf("no reconnect figures: %+v", r.Connections)
			}
			t.Logf("closed %d, back %d, given up %d, attempts %d %v, all back in %.2fs, downtime %s; node b rejected %d over the rate",
				rc.Closed, rc.Reconnected, rc.GivenUp, rc.Attempts, rc.FailedBy, rc.FullSec, rc.DowntimeUs, b.Stats().RejectedRate)
			if !r.OK || rc.Closed != conns || rc.Reconnected != conns || rc.GivenUp != 0 || r.Connections.Failed != 0 {
				t.Fatalf("not all back: ok=%v problems=%v reconnect=%+v", r.OK, r.Problems, rc)
			}
			if rc.DowntimeUs.Count != conns || (tc.transport == "" && r.Connections.ClosedBy["close_1001"] != conns) {
				t.Fatalf("want %d 1001 closes with hints, each timed back: closed by %v, downtime %+v", conns, r.Connections.ClosedBy, rc.DowntimeUs)
			}
			if tc.connRate > 0 && (rc.FailedBy["status_503"] == 0 || b.Stats().RejectedRate == 0) {
				t.Fatalf("the rate limit was not hit: %v", rc.FailedBy)
			}
		})
	}
}

// startStormNode runs a node on listen (host:port; port 0 picks one) whose
// drain is short, with --max-conn-rate connRate (0: unlimited).
func startStormNode(t *testing.T, listen string, connRate float64) *server.Node {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = listen, "127.0.0.1:0"
	cfg.Loops = 2
	cfg.DrainRate, cfg.DrainWindow = 4000, time.Second
	cfg.Limits.ConnRate = connRate
	cfg.Logger = slog.New(slog.DiscardHandler)
	var n *server.Node
	var err error
	for range 50 { // the old node's port can take a moment to be free
		if n, err = server.NewNode(cfg); err == nil {
			if err = n.Start(); err == nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = shutdownOnce(n)(ctx)
	})
	return n
}

var shutdowns sync.Map // *server.Node -> func(context.Context) error

// shutdownOnce shuts n down the first time it is called for n; later calls
// (the test's cleanup after the restart) return at once.
func shutdownOnce(n *server.Node) func(context.Context) error {
	var once sync.Once
	f, _ := shutdowns.LoadOrStore(n, func(ctx context.Context) (err error) {
		once.Do(func() { err = n.Shutdown(ctx) })
		return err
	})
	return f.(func(context.Context) error)
}
