package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// SlowConfig is the slow-consumer scenario: Subscribers on one topic, of
// which SlowFraction are raw sockets that never read (small receive
// buffers, so the kernel absorbs little and the server must buffer, drop or
// close); the rest read and time every delivery.
type SlowConfig struct {
	Subscribers  int
	SlowFraction float64
	Rate         float64 // messages per second
	Size         int
	Duration     time.Duration
	Drain        time.Duration
	SlowRcvBuf   int
	Loops        int
	Start        time.Duration
}

// DefaultSlow is 10k subscribers, 1% slow, 5 × 4 KB msg/s for 20 s: a
// load every server sustains without slow consumers (fan-out scenario:
// 50k deliveries/s), so what changes is due to the 1%.
func DefaultSlow(quick bool) SlowConfig {
	c := SlowConfig{Subscribers: 10000, SlowFraction: 0.01, Rate: 5, Size: 4000, Duration: 20 * time.Second,
		Drain: 3 * time.Second, SlowRcvBuf: 4096, Loops: 2, Start: 10 * time.Second}
	if quick {
		c.Subscribers, c.Duration, c.Drain = 1000, 3*time.Second, time.Second
	}
	return c
}

// Slow-consumer metric keys.
const (
	MetricRSSGrowthMax  = "rss_growth_max_mib"
	MetricRSSGrowthEnd  = "rss_growth_end_mib"
	MetricKernelSendMax = "kernel_send_queue_max_mib"
	MetricSlowClosed    = "slow_closed_1008"
	MetricHealthyP50    = "healthy_p50_ms"
	MetricHealthyP99    = "healthy_p99_ms"
	MetricHealthyP999   = "healthy_p99_9_ms"
	MetricHealthyRatio  = "healthy_delivered_pct"
	MetricSlowAlive     = "slow_alive_end"
	MetricSlowPerCPU    = "deliveries_per_cpu_s"
	SeriesRSSGrowthTime = "rss_growth_mib"
)

var slowMetrics = []Metric{
	{Key: MetricRSSGrowthMax, Label: "server RSS growth, max", Unit: "MiB", LowerIsBetter: true},
	{Key: MetricRSSGrowthEnd, Label: "RSS growth at end", Unit: "MiB", LowerIsBetter: true, NoRatio: true},
	{Key: MetricKernelSendMax, Label: "kernel send queues, max", Unit: "MiB", LowerIsBetter: true, NoRatio: true},
	{Key: MetricHealthyP50, Label: "healthy p50", Unit: "ms", LowerIsBetter: true},
	{Key: MetricHealthyP99, Label: "healthy p99", Unit: "ms", LowerIsBetter: true},
	{Key: MetricHealthyP999, Label: "healthy p99.9", Unit: "ms", LowerIsBetter: true, NoRatio: true},
	{Key: MetricHealthyRatio, Label: "healthy delivered", Unit: "%", NoRatio: true},
	{Key: MetricSlowAlive, Label: "slow conns still open at end", NoRatio: true},
	{Key: MetricSlowClosed, Label: "slow conns closed with 1008 (fanwire /stats)", NoRatio: true},
	{Key: MetricSlowPerCPU, Label: "deliveries / server CPU-s"},
}

// RunSlow runs the scenario against each server in turn.
func RunSlow(ctx context.Context, servers []Server, cfg SlowConfig, logf func(string, ...any)) *Result {
	slow := int(math.Round(float64(cfg.Subscribers) * cfg.SlowFraction))
	r := &Result{
		Scenario: "slow-consumers", Date: time.Now(), Host: ThisHost(), Baseline: "fanwire", Metrics: slowMetrics,
		Settings: map[string]any{"subscribers": cfg.Subscribers, "slow": slow, "rate": cfg.Rate, "size": cfg.Size,
			"duration": cfg.Duration.String(), "slow_rcvbuf": cfg.SlowRcvBuf, "loops": cfg.Loops},
		Notes: []string{
			fmt.Sprintf("%d subscribers on one topic; %d of them are raw sockets (SO_RCVBUF %d) that upgrade and never read again. %.0f msg/s of ~%d bytes for %v.",
				cfg.Subscribers, slow, cfg.SlowRcvBuf, cfg.Rate, cfg.Size, cfg.Duration),
			"RSS growth = server RSS (smaps_rollup) sampled every 250 ms while publishing minus RSS before the first publish. Kernel send queues = the sum of tx_queue (/proc/net/tcp) over the server's sockets, sampled every 500 ms: the backlog the kernel holds, which RSS does not show. Healthy latency and delivered % are over the reading subscribers only.",
			"Policies differ: fanwire closes a connection with 1008 once its backlog passes --max-pending (256 KiB) on a topic without last value; a closing connection's socket lingers up to 4 × --slow-grace while it still has unsent bytes; gorillahub and coderhub drop a client whose 256-message send channel is full; nbiohub closes at nbio's 1 MiB write buffer cap.",
		},
	}
	for _, s := range servers {
		logf("slow-consumers: %s", s.Name)
		r.Servers = append(r.Servers, slowOne(ctx, s, cfg, slow, logf))
	}
	return r
}

func slowOne(ctx context.Context, s Server, cfg SlowConfig, slow int, logf func(string, ...any)) ServerResult {
	p, sr, ok := startMeasured(ctx, s, cfg.Start)
	if !ok {
		return sr
	}
	defer p.Stop(5 * time.Second)
	topic := fmt.Sprintf("slow%d", time.Now().UnixNano()%1e6)
	path := "/ws?topics=" + topic
	var stuck IdleClients
	defer stuck.Close()
	if err := stuck.Open(ctx, IdleConfig{Addr: p.WSAddr, Path: path, SourceIPs: 8, Workers: 8, RcvBuf: cfg.SlowRcvBuf, Dialect: p.Server.Dialect}, slow); err != nil {
		sr.Error = "slow clients: " + err.Error()
		return sr
	}
	healthy := cfg.Subscribers - slow
	fleet, err := startFleet(ctx, FleetConfig{WSAddr: p.WSAddr, Paths: []string{path}, Conns: healthy, Rate: 5000,
		Loops: cfg.Loops, Ramp: 2 * time.Minute, Dialect: p.Server.Dialect})
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	defer stopFleet(fleet)
	sleep(ctx, time.Second)
	rss0, err := RSS(p.PID())
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	c0 := fleet.Counters()
	h0, _ := fleet.Histograms()
	cpu, err := startCPU(p.PID())
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	pub := &Publisher{API: "http://" + p.HTTPAddr, Topics: []string{topic}, Size: cfg.Size, Workers: 4, APIKey: p.Server.APIKey, Expect: int64(healthy)}
	defer pub.Close()
	done := make(chan PublishStats, 1)
	pctx, cancel := context.WithTimeout(ctx, 2*cfg.Duration) // bounded even if publishing is slowed
	defer cancel()
	go func() { done <- pub.Run(pctx, cfg.Rate, cfg.Duration) }()
	growth := Series{Name: SeriesRSSGrowthTime, XLabel: "seconds of publishing", YLabel: "server RSS growth (MiB)"}
	t0 := time.Now()
	var ps PublishStats
	sample := time.NewTicker(250 * time.Millisecond)
	defer sample.Stop()
	maxGrowth, maxQueued, tick := 0.0, 0.0, 0
wait:
	for {
		select {
		case ps = <-done:
			break wait
		case <-sample.C:
			if tick++; tick%2 == 0 {
				if q, err := SendQueued(p.WSAddr); err == nil {
					maxQueued = math.Max(maxQueued, float64(q)/(1<<20))
				}
			}
			if rss, err := RSS(p.PID()); err == nil {
				g := float64(rss-rss0) / (1 << 20)
				maxGrowth = math.Max(maxGrowth, g)
				growth.X, growth.Y = append(growth.X, math.Round(time.Since(t0).Seconds()*100)/100), append(growth.Y, g)
			}
		}
	}
	expected := ps.Published * int64(healthy)
	delivered := func() int64 { c := fleet.Counters(); return c.Messages - c.Dups - (c0.Messages - c0.Dups) }
	for deadline := time.Now().Add(cfg.Drain); delivered() < expected && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	srvCPU, _, _, _ := cpu.since()
	rss1, _ := RSS(p.PID())
	h1, _ := fleet.Histograms()
	lat := latencyMs(latencySince(h0, h1))
	n := delivered()
	sr.Figures[MetricRSSGrowthMax] = maxGrowth
	sr.Figures[MetricRSSGrowthEnd] = float64(rss1-rss0) / (1 << 20)
	sr.Figures[MetricKernelSendMax] = maxQueued
	sr.Figures[MetricHealthyP50], sr.Figures[MetricHealthyP99], sr.Figures[MetricHealthyP999] = lat.P50, lat.P99, lat.P999
	if expected > 0 {
		sr.Figures[MetricHealthyRatio] = 100 * float64(n) / float64(expected)
	}
	sr.Figures[MetricSlowAlive] = float64(stuck.Established())
	if n, ok := fanwireSlowClosed(p.HTTPAddr); ok {
		sr.Figures[MetricSlowClosed] = float64(n)
	}
	sr.Figures[MetricSlowPerCPU] = float64(n) / math.Max(srvCPU, 1.0/ClockTicks)
	sr.Series = append(sr.Series, growth)
	if c := fleet.Counters(); c.ClosedByServer > c0.ClosedByServer {
		sr.Error = fmt.Sprintf("the server closed %d healthy subscribers (%v)", c.ClosedByServer-c0.ClosedByServer, c.ClosedBy)
	}
	logf("slow-consumers: %s: published %d (%d errors), RSS growth max %.1f MiB end %.1f MiB, kernel send queues max %.1f MiB, healthy delivered %.2f%% p50 %.1f ms p99 %.1f ms p99.9 %.1f ms, slow alive %d/%d",
		s.Name, ps.Published, ps.Errors, maxGrowth, sr.Figures[MetricRSSGrowthEnd], maxQueued, sr.Figures[MetricHealthyRatio], lat.P50, lat.P99, lat.P999,
		int(sr.Figures[MetricSlowAlive]), slow)
	return sr
}

// SlowCharts: server memory over the run.
func SlowCharts(r *Result) map[string]Chart {
	return map[string]Chart{"rss-growth": SeriesChart(r, SeriesRSSGrowthTime, "Server RSS growth with 1% slow consumers")}
}

// fanwireSlowClosed reads slow_closed from a fanwire node's GET /stats
// (false for peers, which have no such endpoint).
func fanwireSlowClosed(httpAddr string) (int64, bool) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/stats")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var st struct {
		SlowClosed *int64 `json:"slow_closed"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil || st.SlowClosed == nil {
		return 0, false
	}
	return *st.SlowClosed, true
}
