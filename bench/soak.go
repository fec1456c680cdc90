package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/loadtest"
)

// SoakConfig is one soak: a node with worker processes on an external
// nats-server, mixed load for Duration (fan-out under the oracle, churn,
// slow consumers), worker kills and bus restarts on a schedule, samples of
// the node's resources, and at the end a check that they came back.
type SoakConfig struct {
	Fanwire    string // the fanwire binary: the node and the load generator
	NATSServer string // nats-server binary (Debian's package)
	Workers    int
	Duration   time.Duration // of the load
	Warmup     time.Duration // load time before the RSS baseline is taken
	Settle     time.Duration // max wait after the load for figures to come back
	Sample     time.Duration
	KillEvery  time.Duration // kill -9 of one worker, the workers in turn
	BusEvery   time.Duration // nats-server stopped and restarted
	BusDown    time.Duration // how long the bus stays down
	// KillInOutage also kills a worker 1 s into every bus outage (its
	// replacement starts while NATS is down).
	KillInOutage bool
	Quiet        time.Duration // no faults in the last Quiet of the load

	Subscribers int     // fan-out oracle subscribers
	Topics      int     // fan-out topics
	PubRate     float64 // fan-out publishes per second
	ChurnConns  int
	ChurnRate   float64
	SlowConns   int           // stalled subscribers per batch
	SlowEvery   time.Duration // a new batch replaces the last one
	SlowRate    float64       // messages/s on the slow topic
	SlowSize    int

	Tolerance SoakTolerance
	LogDir    string // server, bus and load generator logs
	Logf      func(string, ...any)
}

// SoakTolerance is how far the end figures may be from the baseline.
type SoakTolerance struct {
	Goroutines int   // ± against the idle node before the load
	FDs        int   // ± against the idle node before the load
	RSSMiB     int64 // end RSS (sum) at most this much above the post-warm-up RSS
}

// DefaultSoak is the 30-minute soak of `make soak`; the fault intervals
// shrink in proportion for shorter runs (SOAK_DURATION=2m while developing).
func DefaultSoak(d time.Duration) SoakConfig {
	c := SoakConfig{Workers: 2, Duration: d, Settle: 90 * time.Second, Sample: 5 * time.Second,
		KillEvery: 3 * time.Minute, BusEvery: 7 * time.Minute, BusDown: 3 * time.Second,
		Warmup: 3 * time.Minute, Quiet: 90 * time.Second,
		Subscribers: 3000, Topics: 6, PubRate: 30, ChurnConns: 500, ChurnRate: 10,
		SlowConns: 30, SlowEvery: time.Minute, SlowRate: 5, SlowSize: 4000,
		Tolerance: SoakTolerance{Goroutines: 10, FDs: 20, RSSMiB: 48}}
	if d < 30*time.Minute {
		f := float64(d) / float64(30*time.Minute)
		scale := func(full time.Duration) time.Duration { return time.Duration(float64(full) * f).Round(time.Second) }
		c.KillEvery, c.BusEvery, c.Warmup = scale(c.KillEvery), scale(c.BusEvery), scale(c.Warmup)
		c.Quiet, c.SlowEvery = max(scale(c.Quiet), 15*time.Second), max(scale(c.SlowEvery), 20*time.Second)
	}
	return c
}

// SoakSample is one point of the timeline; -1 means "not known" (a worker
// did not answer, e.g. while the bus was down).
type SoakSample struct {
	T          float64          `json:"t_s"` // since the load started (negative: baseline)
	Phase      string           `json:"phase"`
	RSS        int64            `json:"rss_bytes"` // supervisor + workers
	PSS        int64            `json:"pss_bytes"`
	FDs        int              `json:"open_fds"`
	Goroutines int              `json:"goroutines"`
	Conns      int64            `json:"conns"`
	SlowClosed int64            `json:"slow_closed"`
	BusRSS     int64            `json:"nats_server_rss_bytes"`
	Procs      []SoakProcSample `json:"procs"`
}

// SoakProcSample is one process of the node.
type SoakProcSample struct {
	Name       string `json:"name"` // supervisor, worker1, ...
	PID        int    `json:"pid"`
	RSS        int64  `json:"rss_bytes"`
	FDs        int    `json:"open_fds"`
	Goroutines int    `json:"goroutines"`
	Conns      int64  `json:"conns"`
	SlowClosed int64  `json:"slow_closed"`
}

// SoakEvent is an injected fault.
type SoakEvent struct {
	T      float64 `json:"t_s"`
	Kind   string  `json:"kind"` // kill, bus-restart
	Detail string  `json:"detail"`
}

// SoakCheck is one pass/fail line of the verdict.
type SoakCheck struct {
	Name     string  `json:"name"`
	Baseline float64 `json:"baseline"`
	End      float64 `json:"end"`
	Limit    string  `json:"limit"`
	OK       bool    `json:"ok"`
}

// SoakResult is what a soak writes to its results files.
type SoakResult struct {
	Date     time.Time      `json:"date"`
	Host     Host           `json:"host"`
	Settings map[string]any `json:"settings"`
	Baseline SoakSample     `json:"baseline"` // idle, before the load
	Warm     SoakSample     `json:"warm"`     // under load, after the warm-up
	Peak     SoakSample     `json:"peak"`     // highest RSS under load
	End      SoakSample     `json:"end"`      // after the load and the settle period
	SettleS  float64        `json:"settle_s"`
	// SupervisorTrend is the least-squares slope of the supervisor's RSS
	// under load after the warm-up (MiB per hour): the one process no fault
	// restarts, so a slow leak shows here even when the end check passes.
	SupervisorTrend float64            `json:"supervisor_rss_trend_mib_per_h"`
	Oracle          *loadtest.Delivery `json:"oracle,omitempty"`
	OracleConns     loadtest.Counters  `json:"oracle_connections"`
	Churn           loadtest.Counters  `json:"churn_connections"`
	Slow            SoakSlow           `json:"slow"`
	Restarts        int                `json:"worker_restarts"`
	Checks          []SoakCheck        `json:"checks"`
	Problems        []string           `json:"problems,omitempty"`
	Samples         []SoakSample       `json:"samples"`
	Events          []SoakEvent        `json:"events"`
	OK              bool               `json:"ok"`
	Notes           []string           `json:"notes"`
}

// SoakSlow is the slow-consumer slice.
type SoakSlow struct {
	Opened    int   `json:"opened"`
	Published int64 `json:"published"`
	Errors    int64 `json:"publish_errors"`
	Closed    int64 `json:"slow_closed_by_node"` // /stats slow_closed, summed over every worker process seen (its last sample)
}

// CheckSoak compares the end figures with the baselines. Goroutines and
// open files must come back to the idle node's figures (± tolerance): each
// connection, timer or subscription left behind shows there. RSS is
// compared with the node under load after the warm-up, because Go returns
// freed memory to the kernel lazily: an idle end above the loaded baseline
// means memory grew over the run.
func CheckSoak(base, warm, end SoakSample, tol SoakTolerance) []SoakCheck {
	within := func(name string, b, e, tol int) SoakCheck {
		ok := b >= 0 && e >= 0 && abs(e-b) <= tol
		return SoakCheck{Name: name, Baseline: float64(b), End: float64(e), Limit: fmt.Sprintf("±%d of idle baseline", tol), OK: ok}
	}
	mib := func(v int64) float64 { return math.Round(float64(v)/(1<<20)*10) / 10 }
	return []SoakCheck{
		within("goroutines", base.Goroutines, end.Goroutines, tol.Goroutines),
		within("open files", base.FDs, end.FDs, tol.FDs),
		{Name: "RSS (MiB)", Baseline: mib(warm.RSS), End: mib(end.RSS), Limit: fmt.Sprintf("≤ post-warm-up + %d MiB", tol.RSSMiB),
			OK: warm.RSS > 0 && end.RSS > 0 && end.RSS <= warm.RSS+tol.RSSMiB<<20},
		{Name: "connections", Baseline: float64(base.Conns), End: float64(end.Conns), Limit: "= idle baseline", OK: end.Conns >= 0 && end.Conns == base.Conns},
	}
}

// CheckOracle says what the fan-out oracle found that breaks the promise:
// a duplicate or out-of-order delivery, a silent gap, or a missing delivery
// that no reset announced.
func CheckOracle(d *loadtest.Delivery) []string {
	if d == nil {
		return []string{"the fan-out oracle wrote no report"}
	}
	var p []string
	if d.Published == 0 {
		p = append(p, "the oracle published nothing")
	}
	if d.Dups > 0 {
		p = append(p, fmt.Sprintf("%d duplicate or out-of-order deliveries", d.Dups))
	}
	if d.Gaps > 0 {
		p = append(p, fmt.Sprintf("%d seqs missing without a reset (silent gaps)", d.Gaps))
	}
	if d.Lost > d.Announced {
		p = append(p, fmt.Sprintf("%d deliveries lost, %d of them announced by a reset: %d unaccounted for", d.Lost, d.Announced, d.Lost-d.Announced))
	}
	return p
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// soakRun is the state of one run.
type soakRun struct {
	cfg     SoakConfig
	node    *Process
	bus     *natsProc
	t0      time.Time // load start
	mu      sync.Mutex
	samples []SoakSample
	events  []SoakEvent
}

// RunSoak runs the soak. An error means it could not run; a run that found
// a problem returns a result with OK false.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, err
	}
	storeDir, err := os.MkdirTemp("", "fanwire-soak-js-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(storeDir)
	bus, err := startNATS(ctx, cfg.NATSServer, storeDir, filepath.Join(cfg.LogDir, "nats-server.log"))
	if err != nil {
		return nil, err
	}
	defer bus.stop()
	logf("soak: nats-server %s (JetStream in %s)", bus.url(), storeDir)
	nodeLog, err := os.Create(filepath.Join(cfg.LogDir, "node.log"))
	if err != nil {
		return nil, err
	}
	defer nodeLog.Close()
	node, err := Start(ctx, Server{Name: "fanwire", Path: cfg.Fanwire, Subcommand: "serve", Log: nodeLog,
		Args: []string{"--workers", strconv.Itoa(cfg.Workers), "--nats", bus.url()}}, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer node.Stop(15 * time.Second)
	s := &soakRun{cfg: cfg, node: node, bus: bus}
	if err := s.waitWorkers(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	logf("soak: node ws %s control %s, %d workers; idle baseline", node.WSAddr, node.HTTPAddr, cfg.Workers)

	r := &SoakResult{Date: time.Now(), Host: ThisHost(), Settings: soakSettings(cfg)}
	sleep(ctx, 5*time.Second)
	r.Baseline = s.sampleSteady(ctx, "baseline", -1)
	logf("soak: baseline %s", describe(r.Baseline))

	// The load: three child processes and the slow consumers of this one.
	s.t0 = time.Now()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	fanoutJSON, churnJSON := filepath.Join(cfg.LogDir, "fanout.json"), filepath.Join(cfg.LogDir, "churn.json")
	fanout, err := s.startLoad(lctx, "fanout", "load", "fanout", "--url", "ws://"+node.WSAddr+"/ws", "--api", "http://"+node.HTTPAddr,
		"--subscribers", strconv.Itoa(cfg.Subscribers), "--topics", strconv.Itoa(cfg.Topics), "--pub-rate", fmt.Sprint(cfg.PubRate),
		"--size", "200", "--duration", cfg.Duration.String(), "--drain", "60s", "--resume", "--retries", "30",
		"--topic-prefix", "soak", "--rate", "500", "--json", fanoutJSON)
	if err != nil {
		return nil, err
	}
	churn, err := s.startLoad(lctx, "churn", "load", "churn", "--url", "ws://"+node.WSAddr+"/ws?topics=soak-churn",
		"--conns", strconv.Itoa(cfg.ChurnConns), "--churn-rate", fmt.Sprint(cfg.ChurnRate), "--rate", "200",
		"--duration", cfg.Duration.String(), "--retries", "30", "--json", churnJSON)
	if err != nil {
		return nil, err
	}
	slowDone := make(chan SoakSlow, 1)
	go func() { slowDone <- s.slowConsumers(lctx) }()
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); s.faults(lctx) }()

	// Sample until the load generators exit (fan-out: duration plus drain).
	loadDone := make(chan struct{})
	go func() { fanout.Wait(); churn.Wait(); close(loadDone) }()
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	lastLog := time.Now()
	warmTaken := false
sampling:
	for {
		select {
		case <-ctx.Done():
			stopLoad()
			return nil, ctx.Err()
		case <-loadDone:
			break sampling
		case <-tick.C:
			phase := "load"
			if time.Since(s.t0) > cfg.Duration {
				phase = "drain"
			}
			smp := s.sample(ctx, phase)
			if !warmTaken && time.Since(s.t0) >= cfg.Warmup && smp.RSS > 0 {
				r.Warm, warmTaken = smp, true
				logf("soak: post-warm-up baseline %s", describe(smp))
			}
			if phase == "load" && smp.RSS > r.Peak.RSS {
				r.Peak = smp
			}
			if time.Since(lastLog) >= 30*time.Second {
				lastLog = time.Now()
				logf("soak: %s/%s %s", time.Since(s.t0).Round(time.Second), cfg.Duration, describe(smp))
			}
		}
	}
	stopLoad()
	<-faultsDone
	r.Slow = <-slowDone
	logf("soak: load ended after %s; settling (up to %s)", time.Since(s.t0).Round(time.Second), cfg.Settle)

	// Settle: the figures must come back within cfg.Settle.
	settle0 := time.Now()
	sleep(ctx, 15*time.Second)
	for {
		r.End = s.sampleSteady(ctx, "end", -1)
		r.Checks = CheckSoak(r.Baseline, r.Warm, r.End, cfg.Tolerance)
		if allOK(r.Checks) || time.Since(settle0) >= cfg.Settle || ctx.Err() != nil {
			break
		}
		sleep(ctx, cfg.Sample)
	}
	r.SettleS = math.Round(time.Since(settle0).Seconds())
	logf("soak: end %s (after %.0f s of settling)", describe(r.End), r.SettleS)

	if rep, err := readLoadReport(fanoutJSON); err != nil {
		r.Problems = append(r.Problems, "fan-out oracle: "+err.Error())
	} else {
		r.Oracle, r.OracleConns = rep.Delivery, rep.Connections
	}
	r.Problems = append(r.Problems, CheckOracle(r.Oracle)...)
	if rep, err := readLoadReport(churnJSON); err != nil {
		r.Problems = append(r.Problems, "churn: "+err.Error())
	} else {
		r.Churn = rep.Connections
	}
	for _, c := range r.Checks {
		if !c.OK {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: %v at the end against %v (%s)", c.Name, c.End, c.Baseline, c.Limit))
		}
	}
	if st, err := s.stats(); err == nil {
		for _, w := range st.Workers {
			r.Restarts += w.Restarts
		}
	}
	s.mu.Lock()
	r.Samples, r.Events = s.samples, s.events
	s.mu.Unlock()
	r.Slow.Closed = slowClosedOverRun(r.Samples)
	r.SupervisorTrend = supervisorTrend(r.Samples, cfg.Warmup.Seconds())
	kills := 0
	for _, e := range r.Events {
		if e.Kind == "kill" {
			kills++
		}
	}
	if r.Restarts < kills {
		r.Problems = append(r.Problems, fmt.Sprintf("%d workers killed but the supervisor counts %d restarts", kills, r.Restarts))
	}
	r.OK = len(r.Problems) == 0
	r.Notes = soakNotes(cfg)
	return r, nil
}

func allOK(cs []SoakCheck) bool {
	for _, c := range cs {
		if !c.OK {
			return false
		}
	}
	return true
}

func describe(s SoakSample) string {
	return fmt.Sprintf("RSS %.1f MiB (PSS %.1f), goroutines %d, fds %d, conns %d, slow closed %d",
		float64(s.RSS)/(1<<20), float64(s.PSS)/(1<<20), s.Goroutines, s.FDs, s.Conns, s.SlowClosed)
}

func soakSettings(c SoakConfig) map[string]any {
	return map[string]any{"workers": c.Workers, "duration": c.Duration.String(), "warmup": c.Warmup.String(),
		"settle_max": c.Settle.String(), "sample": c.Sample.String(), "kill_every": c.KillEvery.String(),
		"bus_restart_every": c.BusEvery.String(), "bus_down": c.BusDown.String(), "kill_in_outage": c.KillInOutage, "quiet_end": c.Quiet.String(),
		"subscribers": c.Subscribers, "topics": c.Topics, "pub_rate": c.PubRate, "churn_conns": c.ChurnConns,
		"churn_rate": c.ChurnRate, "slow_conns": c.SlowConns, "slow_every": c.SlowEvery.String(),
		"slow_rate": c.SlowRate, "slow_size": c.SlowSize,
		"tolerance": map[string]any{"goroutines": c.Tolerance.Goroutines, "open_files": c.Tolerance.FDs, "rss_mib": c.Tolerance.RSSMiB}}
}

func soakNotes(c SoakConfig) []string {
	return []string{
		fmt.Sprintf("fanwire serve --workers %d on an external nats-server (Debian's package, JetStream in a temp dir). Load for %v: `fanwire load fanout --resume` (%d subscribers, %d topics, %.0f publishes/s of 200 B) as the oracle; `fanwire load churn` (%d connections, %.0f reconnects/s); %d stalled subscribers (SO_RCVBUF 4 KiB, never read) replaced every %v on a topic with %.0f msg/s of %d B.",
			c.Workers, c.Duration, c.Subscribers, c.Topics, c.PubRate, c.ChurnConns, c.ChurnRate, c.SlowConns, c.SlowEvery, c.SlowRate, c.SlowSize),
		soakFaultNote(c),
		"Samples every 5 s from /proc (Rss and Pss from smaps_rollup, entries of /proc/PID/fd) of the supervisor and its workers, and GET /stats (goroutines, connections); a worker that does not answer (bus down) leaves goroutines and connections unknown (-1) in that sample.",
		"Checks: goroutines and open files of supervisor + workers after the settle period within the tolerance of the idle node before the load; summed RSS at most the tolerance above the RSS after the warm-up (Go returns freed memory lazily, so idle RSS is compared with loaded RSS); connections back to the idle figure; the oracle: no duplicate, no silent gap, every missing delivery announced by a reset. Killed workers restart with fresh memory, so the RSS check mostly watches the supervisor and the worker(s) alive at the end; the per-process samples are in the JSON.",
		"The box (2 cores) was shared with other helpers' tests and benchmarks during the run: absolute figures are noisy.",
	}
}

func soakFaultNote(c SoakConfig) string {
	n := fmt.Sprintf("Faults: kill -9 of one worker every %v from %v on (the workers in turn; the supervisor restarts it); nats-server stopped (SIGTERM) for %v and restarted on the same port and store every %v; none in the last %v.",
		c.KillEvery, c.KillEvery/2, c.BusDown, c.BusEvery, c.Quiet)
	if c.KillInOutage {
		n += " Also a worker killed 1 s into every bus outage, so that its replacement starts while NATS is down."
	}
	return n
}

// sample reads every process of the node once.
func (s *soakRun) sample(ctx context.Context, phase string) SoakSample {
	smp := SoakSample{Phase: phase, Goroutines: -1, Conns: -1}
	if !s.t0.IsZero() {
		smp.T = math.Round(time.Since(s.t0).Seconds()*10) / 10
	}
	st, err := s.stats()
	type proc struct {
		name        string
		pid, gor    int
		conns, slow int64
	}
	procs := []proc{{name: "supervisor", pid: s.node.PID(), gor: -1, conns: 0}}
	if err == nil {
		procs[0].gor = st.Goroutines
		for _, w := range st.Workers {
			p := proc{name: "worker" + strconv.Itoa(w.ID), pid: w.PID, gor: -1, conns: -1}
			if w.Node != nil {
				p.gor, p.conns, p.slow = w.Node.Goroutines, w.Node.Stats.Conns, w.Node.Stats.SlowClosed
			}
			procs = append(procs, p)
		}
	}
	known := err == nil
	smp.Goroutines, smp.Conns, smp.FDs = 0, 0, 0
	for _, p := range procs {
		ps := SoakProcSample{Name: p.name, PID: p.pid, Goroutines: p.gor, Conns: p.conns, SlowClosed: p.slow, FDs: -1}
		if p.pid > 0 {
			if v, err := RSS(p.pid); err == nil {
				ps.RSS = v
				smp.RSS += v
			}
			if v, err := PSS(p.pid); err == nil {
				smp.PSS += v
			}
			if n, err := OpenFDs(p.pid); err == nil {
				ps.FDs = n
			}
		}
		if ps.FDs < 0 || p.gor < 0 || p.conns < 0 {
			known = false
		}
		smp.FDs += max(ps.FDs, 0)
		smp.Goroutines += max(p.gor, 0)
		smp.Conns += max(p.conns, 0)
		smp.SlowClosed += p.slow
		smp.Procs = append(smp.Procs, ps)
	}
	if len(procs) != 1+s.cfg.Workers {
		known = false
	}
	if !known {
		smp.Goroutines, smp.Conns = -1, -1
	}
	if v, err := RSS(s.bus.pid()); err == nil {
		smp.BusRSS = v
	}
	if phase != "" {
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
	}
	return smp
}

// sampleSteady takes three samples a second apart and keeps the one with
// the median goroutine count (a sample taken while a worker answers its
// stats request or a GC runs is off by a few).
func (s *soakRun) sampleSteady(ctx context.Context, phase string, _ int) SoakSample {
	var got []SoakSample
	for i := 0; i < 3; i++ {
		if i > 0 {
			sleep(ctx, time.Second)
		}
		got = append(got, s.sample(ctx, ""))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Goroutines < got[j].Goroutines })
	m := got[1]
	m.Phase = phase
	s.mu.Lock()
	s.samples = append(s.samples, m)
	s.mu.Unlock()
	return m
}

// OpenFDs counts the entries of /proc/PID/fd.
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// soakStats is the part of the supervisor's GET /stats a soak reads.
type soakStats struct {
	Goroutines int `json:"goroutines"`
	Workers    []struct {
		ID       int  `json:"id"`
		PID      int  `json:"pid"`
		Ready    bool `json:"ready"`
		Restarts int  `json:"restarts"`
		Node     *struct {
			Goroutines int `json:"goroutines"`
			Stats      struct {
				Conns      int64 `json:"conns"`
				SlowClosed int64 `json:"slow_closed"`
			} `json:"stats"`
		} `json:"node"`
	} `json:"workers"`
}

func (s *soakRun) stats() (soakStats, error) {
	var st soakStats
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + s.node.HTTPAddr + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *soakRun) waitWorkers(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.stats()
		ready := 0
		for _, w := range st.Workers {
			if w.Ready && w.Node != nil {
				ready++
			}
		}
		if err == nil && ready == s.cfg.Workers {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: %d of %d workers ready after %v (%v): %s", ready, s.cfg.Workers, timeout, err, s.node.Output())
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

func (s *soakRun) event(kind, detail string) {
	e := SoakEvent{T: math.Round(time.Since(s.t0).Seconds()*10) / 10, Kind: kind, Detail: detail}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	s.cfg.Logf("soak: %s/%s %s: %s", time.Since(s.t0).Round(time.Second), s.cfg.Duration, kind, detail)
}

// faults kills workers and restarts the bus on their schedules until ctx
// ends or the quiet end of the load begins. Kills come half an interval
// out of step (1.5 min, 4.5 min, ... for 3 min) so that none falls into a
// bus outage by chance; KillInOutage adds one on purpose, 1 s into each.
func (s *soakRun) faults(ctx context.Context) {
	kill := time.NewTimer(s.cfg.KillEvery / 2)
	defer kill.Stop()
	bus := time.NewTicker(s.cfg.BusEvery)
	defer bus.Stop()
	quiet := time.After(s.cfg.Duration - s.cfg.Quiet)
	next := 1
	killNext := func(why string) {
		st, err := s.stats()
		if err != nil {
			s.event("kill", "skipped: "+err.Error())
			return
		}
		for _, w := range st.Workers {
			if w.ID == next && w.PID > 0 {
				err := syscall.Kill(w.PID, syscall.SIGKILL)
				s.event("kill", fmt.Sprintf("kill -9 worker %d pid %d%s (%v)", w.ID, w.PID, why, errOrOK(err)))
			}
		}
		next = next%s.cfg.Workers + 1
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-quiet:
			s.cfg.Logf("soak: no more faults (the last %v of the load is quiet)", s.cfg.Quiet)
			return
		case <-kill.C:
			killNext("")
			kill.Reset(s.cfg.KillEvery)
		case <-bus.C:
			s.event("bus-restart", fmt.Sprintf("nats-server stopped (SIGTERM) for %v", s.cfg.BusDown))
			t := time.Now()
			s.bus.stop()
			if s.cfg.KillInOutage {
				sleep(ctx, time.Second)
				killNext(" during the bus outage")
			}
			sleep(ctx, s.cfg.BusDown-time.Since(t))
			err := s.bus.start(ctx)
			s.cfg.Logf("soak: %s/%s nats-server back after %v (%v)", time.Since(s.t0).Round(time.Second), s.cfg.Duration, time.Since(t).Round(100*time.Millisecond), errOrOK(err))
		}
	}
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// slowConsumers keeps a batch of stalled subscribers on their own topic
// and a publisher filling their buffers, replacing the batch on schedule.
func (s *soakRun) slowConsumers(ctx context.Context) SoakSlow {
	var out SoakSlow
	const topic = "soak-slow"
	pub := &Publisher{API: "http://" + s.node.HTTPAddr, Topics: []string{topic}, Size: s.cfg.SlowSize, Workers: 2}
	defer pub.Close()
	done := make(chan PublishStats, 1)
	go func() { done <- pub.Run(ctx, s.cfg.SlowRate, s.cfg.Duration) }()
	var batch *IdleClients
	open := func() {
		if batch != nil {
			batch.Close()
		}
		batch = &IdleClients{}
		err := batch.Open(ctx, IdleConfig{Addr: s.node.WSAddr, Path: "/ws?topics=" + topic, SourceIPs: 8, Workers: 4, RcvBuf: 4096}, s.cfg.SlowConns)
		out.Opened += batch.Len()
		if err != nil && ctx.Err() == nil {
			s.cfg.Logf("soak: slow consumers: %v (%d opened)", err, batch.Len())
		}
	}
	open()
	t := time.NewTicker(s.cfg.SlowEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			batch.Close()
			ps := <-done
			out.Published, out.Errors = ps.Published, ps.Errors
			return out
		case <-t.C:
			open()
		}
	}
}

// loadProc is one `fanwire load` child.
type loadProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (l *loadProc) Wait() { <-l.done }

func (s *soakRun) startLoad(ctx context.Context, name string, args ...string) (*loadProc, error) {
	f, err := os.Create(filepath.Join(s.cfg.LogDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.cfg.Fanwire, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("soak: start %s: %w", name, err)
	}
	l := &loadProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		if err != nil && s.cfg.Logf != nil {
			s.cfg.Logf("soak: load %s exited: %v (its report says why; see %s)", name, err, f.Name())
		}
		close(l.done)
	}()
	go func() { // ctx cancelled early (Ctrl-C): stop the child
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-l.done:
		}
	}()
	return l, nil
}

// loadReport is the part of a `fanwire load --json` report a soak reads.
type loadReport struct {
	Connections loadtest.Counters  `json:"connections"`
	Delivery    *loadtest.Delivery `json:"delivery"`
	Problems    []string           `json:"problems"`
}

func readLoadReport(path string) (*loadReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r loadReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// natsProc is an external nats-server with JetStream that can be restarted
// on the same port and store.
type natsProc struct {
	bin, store, addr, logPath string
	mu                        sync.Mutex
	cmd                       *exec.Cmd
	exited                    chan struct{}
	log                       *os.File
}

func startNATS(ctx context.Context, bin, store, logPath string) (*natsProc, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	n := &natsProc{bin: bin, store: store, addr: addr, logPath: logPath, log: f}
	return n, n.start(ctx)
}

func (n *natsProc) url() string { return "nats://" + n.addr }

func (n *natsProc) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *natsProc) start(ctx context.Context) error {
	host, port, _ := net.SplitHostPort(n.addr)
	cmd := exec.Command(n.bin, "-a", host, "-p", port, "-js", "-sd", n.store)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("soak: start nats-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", n.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("soak: nats-server exited at start; see " + n.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("soak: nats-server not listening after 15s")
		}
	}
}

// stop ends the server (SIGTERM, SIGKILL after 10 s).
func (n *natsProc) stop() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// slowClosedOverRun sums each worker process's last slow_closed figure: a
// killed worker's counter dies with it, so the sum over PIDs is the run's.
func slowClosedOverRun(samples []SoakSample) int64 {
	last := map[int]int64{}
	for _, s := range samples {
		for _, p := range s.Procs {
			if p.PID > 0 && p.SlowClosed > last[p.PID] {
				last[p.PID] = p.SlowClosed
			}
		}
	}
	var n int64
	for _, v := range last {
		n += v
	}
	return n
}

// supervisorTrend is the slope of the supervisor's RSS in MiB per hour over
// the load samples after warmup seconds (0 with fewer than 3 points).
func supervisorTrend(samples []SoakSample, warmup float64) float64 {
	var xs, ys []float64
	for _, s := range samples {
		if s.Phase != "load" || s.T < warmup {
			continue
		}
		for _, p := range s.Procs {
			if p.Name == "supervisor" && p.RSS > 0 {
				xs, ys = append(xs, s.T/3600), append(ys, float64(p.RSS)/(1<<20))
			}
		}
	}
	return slope(xs, ys)
}

// slope is the least-squares slope of y over x (0 with fewer than 3 points).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 3 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return math.Round((n*sxy-sx*sy)/d*10) / 10
}
