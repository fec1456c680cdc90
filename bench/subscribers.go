package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/fanwire/fanwire/loadtest"
)

// loopbackSources spreads client sockets over 32 source addresses, as
// `fanwire load` does by default for a loopback target.
var loopbackSources = func() []string {
	var s []string
	for i := 2; i <= 33; i++ {
		s = append(s, fmt.Sprintf("127.0.0.%d", i))
	}
	return s
}()

// FleetConfig is a set of reading, checking subscribers driven in this
// process by the load generator's epoll loops (loadtest.Fleet): the same
// client code as `fanwire load`, for every server.
type FleetConfig struct {
	WSAddr string   // server "127.0.0.1:PORT"
	Paths  []string // upgrade paths, rotated over the connections (one topic each)
	Conns  int
	Rate   float64 // connects per second
	Loops  int
	Ramp   time.Duration // how long the ramp may take
	Tokens []string      // if set, connection i presents Tokens[i] (?token=)
	// Dialect is the server's protocol if not fanwire's (Server.Dialect):
	// the paths are rewritten for it (centrifugo.go).
	Dialect string
	// Transport: "" (WebSocket), "sse" or "poll" (loadtest --transport).
	Transport string
}

// startFleet opens cfg.Conns subscribers and returns once every one has
// settled (open or failed). Failures are an error: the scenarios need all.
func startFleet(ctx context.Context, cfg FleetConfig) (*loadtest.Fleet, error) {
	plan := loadtest.Plan{
		URL:      "ws://" + cfg.WSAddr + dialectPath(cfg.Dialect, cfg.Paths[0]),
		Paths:    dialectPaths(cfg.Dialect, cfg.Paths),
		Dialect:  cfg.Dialect,
		Conns:    cfg.Conns,
		Rate:     cfg.Rate,
		Loops:    max(cfg.Loops, 1),
		Sources:  loopbackSources,
		TrackSeq: true,
	}
	plan.Transport = cfg.Transport
	if len(cfg.Tokens) > 0 {
		plan.Auth = &loadtest.TokenPlan{Tokens: cfg.Tokens}
	}
	f, err := loadtest.StartFleet(plan)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.Ramp)
	for !f.RampDone() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopFleet(f)
			return nil, fmt.Errorf("bench: %d subscribers not connected within %v (%+v)", cfg.Conns, cfg.Ramp, brief(f.Counters()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := f.Counters(); c.Open != int64(cfg.Conns) {
		stopFleet(f)
		return nil, fmt.Errorf("bench: only %d of %d subscribers open (%+v)", c.Open, cfg.Conns, brief(c))
	}
	return f, nil
}

// stopFleet closes every connection cleanly and waits (bounded by the
// fleet's own close timeout).
func stopFleet(f *loadtest.Fleet) {
	f.Stop()
	_ = f.Wait()
}

// brief is the part of the counters worth printing in an error.
func brief(c loadtest.Counters) map[string]any {
	return map[string]any{"open": c.Open, "failed": c.Failed, "failed_by": c.FailedBy,
		"closed_by_server": c.ClosedByServer, "closed_by": c.ClosedBy}
}

// latencySince is the histogram of what was recorded between two snapshots
// of the same (cumulative) histogram: per-step percentiles from one fleet.
func latencySince(before, after *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	a := after.Export()
	if before != nil {
		b := before.Export()
		for i := range a.Counts {
			if i < len(b.Counts) {
				a.Counts[i] -= b.Counts[i]
			}
		}
	}
	return hdrhistogram.Import(a)
}

// LatencyMs is a latency summary in milliseconds.
type LatencyMs struct {
	Count          int64
	P50, P99, P999 float64
	Max            float64
}

func latencyMs(h *hdrhistogram.Histogram) LatencyMs {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return LatencyMs{Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

// cpuMeter reads the CPU time of the server and of this process (the load
// generator and publisher) so a window's CPU can be charged to each.
type cpuMeter struct {
	server             int
	srv0, srvSys0      float64
	self0              float64
	wall0              time.Time
	serverSys, srvUsr0 float64 // set by since: the server's stime over the window
}

func startCPU(serverPID int) (*cpuMeter, error) {
	m := &cpuMeter{server: serverPID}
	var err1, err2 error
	m.srvUsr0, m.srvSys0, err1 = CPUTimes(serverPID)
	m.srv0 = m.srvUsr0 + m.srvSys0
	m.self0, err2 = CPUSeconds(os.Getpid())
	m.wall0 = time.Now()
	return m, firstError(err1, err2)
}

// since returns server CPU-seconds, this process's CPU-seconds and wall
// seconds since startCPU.
func (m *cpuMeter) since() (server, self, wall float64, err error) {
	u, k, err1 := CPUTimes(m.server)
	g, err2 := CPUSeconds(os.Getpid())
	m.serverSys = k - m.srvSys0
	return u + k - m.srv0, g - m.self0, time.Since(m.wall0).Seconds(), firstError(err1, err2)
}

// fleetView is what a step reads from the subscribers (a loadtest.Fleet).
type fleetView interface {
	Counters() loadtest.Counters
	Histograms() (latency, connect *hdrhistogram.Histogram)
}
