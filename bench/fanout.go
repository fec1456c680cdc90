package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// FanoutConfig is the fan-out throughput scenario: Subscribers reading
// subscribers over Topics topics, then publish steps at increasing Rates
// (messages per second over all topics), each for Step, until the server
// falls behind.
type FanoutConfig struct {
	Name        string // scenario name in the results ("fanout", "fanout-1000-topics")
	Subscribers int
	Topics      int
	Rates       []float64
	Step        time.Duration // publishing time per rate
	Drain       time.Duration // max wait for a step's deliveries after its last publish
	Size        int           // publish body bytes
	ConnectRate float64
	Loops       int // load generator epoll loops
	Start       time.Duration
	// A step falls behind when less than MinDelivered of the expected
	// deliveries arrived within Drain or its p99 exceeds MaxP99; the
	// ladder stops there.
	MinDelivered float64
	MaxP99       time.Duration
	// Good is the latency bound of the headline figure (issue 6: 50 ms).
	Good time.Duration
}

// DefaultFanout is the 10k-subscribers, one-topic run; quick is CI-sized.
func DefaultFanout(quick bool) FanoutConfig {
	c := FanoutConfig{Name: "fanout", Subscribers: 10000, Topics: 1, Rates: []float64{2, 5, 10, 20, 50, 100, 200, 400},
		Step: 4 * time.Second, Drain: 3 * time.Second, Size: 100, ConnectRate: 5000, Loops: 2, Start: 10 * time.Second,
		MinDelivered: 0.99, MaxP99: time.Second, Good: 50 * time.Millisecond}
	if quick {
		c.Subscribers, c.Rates, c.Step, c.Drain = 1000, []float64{20, 100}, 1500*time.Millisecond, time.Second
	}
	return c
}

// DefaultFanoutTopics spreads the subscribers over 1,000 topics (10 each):
// publish rates are 100× higher for the same deliveries per second.
func DefaultFanoutTopics(quick bool) FanoutConfig {
	c := DefaultFanout(quick)
	c.Name, c.Topics = "fanout-1000-topics", 1000
	c.Rates = []float64{200, 500, 1000, 2000, 5000, 10000, 20000, 40000}
	if quick {
		c.Topics, c.Rates = 100, []float64{1000, 5000}
	}
	return c
}

// Fan-out metric keys (figures) and series names (per step, X = rate).
const (
	MetricBestPerCPU   = "best_per_cpu"
	MetricBestRate     = "best_rate"
	MetricBestP99      = "best_p99_ms"
	MetricMaxRateOK    = "max_rate_kept_up"
	MetricMaxPerSecond = "max_deliveries_per_s"
	MetricFirstPerCPU  = "first_step_per_cpu"
	MetricFirstP99     = "first_step_p99_ms"

	SeriesPerCPU    = "deliveries_per_cpu_s"
	SeriesPerSecond = "deliveries_per_s"
	SeriesDelivered = "delivered_ratio"
	SeriesP50       = "p50_ms"
	SeriesP99       = "p99_ms"
	SeriesP999      = "p99_9_ms"
	SeriesServerCPU = "server_cpu_pct"
	SeriesKernel    = "server_kernel_pct"
	SeriesGenCPU    = "generator_cpu_pct"
	SeriesPubRate   = "publish_rate_achieved"
)

func fanoutMetrics(good time.Duration) []Metric {
	g := fmt.Sprintf("p99 ≤ %v", good)
	return []Metric{
		{Key: MetricBestPerCPU, Label: "best deliveries / server CPU-s with " + g},
		{Key: MetricBestRate, Label: "at publish rate", Unit: "msg/s", NoRatio: true},
		{Key: MetricBestP99, Label: "its p99", Unit: "ms", LowerIsBetter: true, NoRatio: true},
		{Key: MetricMaxPerSecond, Label: "most deliveries/s kept up"},
		{Key: MetricMaxRateOK, Label: "highest rate kept up", Unit: "msg/s", NoRatio: true},
		{Key: MetricFirstPerCPU, Label: "first step: deliveries / server CPU-s"},
		{Key: MetricFirstP99, Label: "first step: p99", Unit: "ms", LowerIsBetter: true},
	}
}

var fanoutSteps = []StepColumn{
	{Series: SeriesPubRate, Label: "publishes/s achieved"},
	{Series: SeriesPerSecond, Label: "deliveries/s"},
	{Series: SeriesPerCPU, Label: "deliveries / server CPU-s", Ratio: true},
	{Series: SeriesDelivered, Label: "delivered", Unit: "%", Percent: true},
	{Series: SeriesP50, Label: "p50", Unit: "ms"},
	{Series: SeriesP99, Label: "p99", Unit: "ms", Ratio: true, LowerIsBetter: true},
	{Series: SeriesP999, Label: "p99.9", Unit: "ms"},
	{Series: SeriesServerCPU, Label: "server CPU", Unit: "% of 1 core"},
	{Series: SeriesKernel, Label: "server CPU in kernel (stime)", Unit: "%"},
	{Series: SeriesGenCPU, Label: "generator+publisher CPU", Unit: "% of 1 core"},
}

// RunFanout runs the scenario against each server in turn.
func RunFanout(ctx context.Context, servers []Server, cfg FanoutConfig, logf func(string, ...any)) *Result {
	r := &Result{
		Scenario: cfg.Name, Date: time.Now(), Host: ThisHost(), Baseline: "fanwire",
		Metrics: fanoutMetrics(cfg.Good), StepColumns: fanoutSteps, StepLabel: "publish rate (msg/s)",
		Settings: map[string]any{
			"subscribers": cfg.Subscribers, "topics": cfg.Topics, "rates": cfg.Rates, "step": cfg.Step.String(),
			"drain": cfg.Drain.String(), "size": cfg.Size, "loops": cfg.Loops, "min_delivered": cfg.MinDelivered,
			"max_p99": cfg.MaxP99.String(), "good_p99": cfg.Good.String(),
		},
		Notes: []string{
			fmt.Sprintf("%d subscribers (load generator epoll loops in the harness process, seq and latency checked on every delivery) over %d topic(s); ~%d-byte JSON messages POSTed to the control API at each rate for %v; a step ends when every expected delivery arrived or after %v more.",
				cfg.Subscribers, cfg.Topics, cfg.Size, cfg.Step, cfg.Drain),
			"Deliveries / server CPU-s = deliveries in the step / (utime+stime delta of the server from /proc/PID/stat over the step). Latency = the message's scheduled send time (the publish POST goes out then, unless the publish API makes the publisher wait) → frame parsed by the subscriber; it includes the HTTP publish.",
			fmt.Sprintf("The ladder stops at the first step with < %.0f%% delivered, p99 > %v or less than 95%% of the asked publish rate achieved (4 concurrent POSTs; latency runs from each message's scheduled send time, so a slow publish API counts) — the server, or the generator sharing its 2 cores, fell behind. The generator+publisher CPU column says which: both share the same 2 cores.", 100*cfg.MinDelivered, cfg.MaxP99),
		},
	}
	for _, s := range servers {
		logf("%s: %s", cfg.Name, s.Name)
		r.Servers = append(r.Servers, fanoutOne(ctx, s, cfg, logf))
	}
	return r
}

func fanoutOne(ctx context.Context, s Server, cfg FanoutConfig, logf func(string, ...any)) ServerResult {
	p, sr, ok := startMeasured(ctx, s, cfg.Start)
	if !ok {
		return sr
	}
	defer p.Stop(5 * time.Second)
	topics := topicNames(fmt.Sprintf("fo%d", time.Now().UnixNano()%1e6), cfg.Topics)
	paths := make([]string, len(topics))
	for i, t := range topics {
		paths[i] = "/ws?topics=" + t
	}
	fleet, err := startFleet(ctx, FleetConfig{WSAddr: p.WSAddr, Paths: paths, Conns: cfg.Subscribers,
		Rate: cfg.ConnectRate, Loops: cfg.Loops, Ramp: 2*time.Minute + time.Duration(float64(cfg.Subscribers)/cfg.ConnectRate*float64(time.Second)),
		Dialect: p.Server.Dialect, Transport: s.Transport})
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	defer stopFleet(fleet)
	sleep(ctx, time.Second) // handshake garbage, accept backlog: let the server go quiet
	pub := &Publisher{API: "http://" + p.HTTPAddr, Topics: topics, Size: cfg.Size, Workers: 4,
		APIKey: p.Server.APIKey, Expect: int64(cfg.Subscribers / cfg.Topics)}
	defer pub.Close()
	series := map[string]*Series{}
	for _, c := range fanoutSteps {
		series[c.Series] = &Series{Name: c.Series, XLabel: "publish rate (msg/s)", YLabel: c.Label + unitSuffix(c.Unit)}
	}
	add := func(name string, x, y float64) {
		se := series[name]
		se.X, se.Y = append(se.X, x), append(se.Y, y)
	}
	for i, rate := range cfg.Rates {
		if ctx.Err() != nil {
			break
		}
		st, err := fanoutStep(ctx, p, fleet, pub, rate, cfg)
		if err != nil {
			sr.Error = fmt.Sprintf("rate %.0f: %v", rate, err)
			break
		}
		add(SeriesPubRate, rate, st.pubRate)
		add(SeriesPerSecond, rate, st.perSecond)
		add(SeriesPerCPU, rate, st.perCPU)
		add(SeriesDelivered, rate, st.ratio)
		add(SeriesP50, rate, st.lat.P50)
		add(SeriesP99, rate, st.lat.P99)
		add(SeriesP999, rate, st.lat.P999)
		add(SeriesServerCPU, rate, 100*st.serverCPU/st.wall)
		add(SeriesKernel, rate, 100*st.serverSys/math.Max(st.serverCPU, 1.0/ClockTicks))
		add(SeriesGenCPU, rate, 100*st.genCPU/st.wall)
		logf("%s: %s %5.0f msg/s: %.0f deliveries/s, %.0f / server CPU-s, delivered %.2f%%, p50 %.1f ms p99 %.1f ms p99.9 %.1f ms, CPU server %.0f%% generator %.0f%%",
			cfg.Name, s.Name, rate, st.perSecond, st.perCPU, 100*st.ratio, st.lat.P50, st.lat.P99, st.lat.P999,
			100*st.serverCPU/st.wall, 100*st.genCPU/st.wall)
		if i == 0 {
			sr.Figures[MetricFirstPerCPU] = st.perCPU
			sr.Figures[MetricFirstP99] = st.lat.P99
		}
		kept := st.ratio >= cfg.MinDelivered && st.lat.P99 <= ms(cfg.MaxP99) && st.pubRate >= 0.95*rate
		if kept {
			sr.Figures[MetricMaxRateOK] = rate
			sr.Figures[MetricMaxPerSecond] = st.perSecond
		}
		if kept && st.lat.P99 <= ms(cfg.Good) && st.perCPU > sr.Figures[MetricBestPerCPU] {
			sr.Figures[MetricBestPerCPU] = st.perCPU
			sr.Figures[MetricBestRate] = rate
			sr.Figures[MetricBestP99] = st.lat.P99
		}
		if !kept {
			logf("%s: %s fell behind at %.0f msg/s; ladder stops", cfg.Name, s.Name, rate)
			break
		}
	}
	for _, c := range fanoutSteps {
		sr.Series = append(sr.Series, *series[c.Series])
	}
	return sr
}

type stepFigures struct {
	perSecond, perCPU, ratio float64
	pubRate                  float64
	serverCPU, genCPU, wall  float64
	serverSys                float64 // the kernel (stime) part of serverCPU
	lat                      LatencyMs
}

// fanoutStep publishes at rate for cfg.Step, waits for the deliveries
// (bounded by cfg.Drain) and charges the CPU of that window.
func fanoutStep(ctx context.Context, p *Process, fleet fleetView, pub *Publisher, rate float64, cfg FanoutConfig) (stepFigures, error) {
	var f stepFigures
	c0 := fleet.Counters()
	h0, _ := fleet.Histograms()
	cpu, err := startCPU(p.PID())
	if err != nil {
		return f, err
	}
	// A slow publish API must not stretch the step without bound.
	pctx, cancel := context.WithTimeout(ctx, 2*cfg.Step+2*time.Second)
	ps := pub.Run(pctx, rate, cfg.Step)
	cancel()
	if ps.Published == 0 {
		return f, fmt.Errorf("nothing published (%d errors, last: %s)", ps.Errors, ps.LastError)
	}
	if p.Server.Transport == transportPoll {
		// Long-pollers between two requests are not in the publish
		// answer's count; every one of them is owed every message.
		ps.Expected = ps.Published * int64(cfg.Subscribers/max(cfg.Topics, 1))
	}
	deadline := time.Now().Add(cfg.Drain)
	delivered := func() int64 { c := fleet.Counters(); return c.Messages - c.Dups - (c0.Messages - c0.Dups) }
	for delivered() < ps.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	f.serverCPU, f.genCPU, f.wall, err = cpu.since()
	if err != nil {
		return f, err
	}
	f.serverSys = cpu.serverSys
	h1, _ := fleet.Histograms()
	n := delivered()
	f.lat = latencyMs(latencySince(h0, h1))
	f.perSecond = float64(n) / max(ps.Elapsed.Seconds(), ps.Asked.Seconds())
	f.pubRate = ps.Rate()
	f.perCPU = float64(n) / math.Max(f.serverCPU, 1.0/ClockTicks)
	if ps.Expected > 0 {
		f.ratio = float64(n) / float64(ps.Expected)
	}
	if c := fleet.Counters(); c.ClosedByServer > c0.ClosedByServer {
		return f, fmt.Errorf("the server closed %d subscribers (%v)", c.ClosedByServer-c0.ClosedByServer, c.ClosedBy)
	}
	return f, nil
}

func topicNames(prefix string, n int) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = fmt.Sprintf("%s.%d", prefix, i)
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " (" + u + ")"
}
