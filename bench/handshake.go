package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// HandshakeConfig is the connection storm: Conns new connections opened as
// fast as the load generator can (at most MaxInflight connecting per loop),
// Rounds times; the server's CPU is charged from the first connect to the
// last 101.
type HandshakeConfig struct {
	Conns  int
	Rounds int
	Loops  int
	Start  time.Duration
}

// DefaultHandshake is 2 storms of 10k; quick is 1 storm of 1k.
func DefaultHandshake(quick bool) HandshakeConfig {
	if quick {
		return HandshakeConfig{Conns: 1000, Rounds: 1, Loops: 2, Start: 10 * time.Second}
	}
	return HandshakeConfig{Conns: 10000, Rounds: 2, Loops: 2, Start: 10 * time.Second}
}

// Handshake metric keys.
const (
	MetricUpgradesPerCPU = "upgrades_per_cpu_s"
	MetricUpgradesPerSec = "upgrades_per_s"
	// Token variants: the first storm presents new tokens (every one
	// verified), the later ones the same tokens again (the server's cache).
	MetricUpgradesPerCPUNew   = "upgrades_per_cpu_s_new"
	MetricUpgradesPerCPUAgain = "upgrades_per_cpu_s_again"
	MetricServerCPUPct        = "server_cpu_pct"
	MetricServerKernel        = "server_kernel_pct"
	MetricGenCPUPct           = "generator_cpu_pct"
	MetricConnectP50          = "connect_p50_ms"
	MetricConnectP99          = "connect_p99_ms"
	MetricFailed              = "failed"
)

var handshakeMetrics = []Metric{
	{Key: MetricUpgradesPerCPU, Label: "upgrades / server CPU-s"},
	{Key: MetricUpgradesPerCPUNew, Label: "upgrades / server CPU-s, first storm (new tokens)"},
	{Key: MetricUpgradesPerCPUAgain, Label: "upgrades / server CPU-s, later storms (same tokens again)"},
	{Key: MetricUpgradesPerSec, Label: "upgrades/s (wall, 2 shared cores)"},
	{Key: MetricServerCPUPct, Label: "server CPU", Unit: "% of 1 core", NoRatio: true},
	{Key: MetricServerKernel, Label: "server CPU in kernel (stime)", Unit: "%", NoRatio: true},
	{Key: MetricGenCPUPct, Label: "generator CPU", Unit: "% of 1 core", NoRatio: true},
	{Key: MetricConnectP50, Label: "connect→101 p50", Unit: "ms", LowerIsBetter: true},
	{Key: MetricConnectP99, Label: "connect→101 p99", Unit: "ms", LowerIsBetter: true},
	{Key: MetricFailed, Label: "failed", NoRatio: true},
}

// RunHandshake runs the storm against each server in turn.
func RunHandshake(ctx context.Context, servers []Server, cfg HandshakeConfig, logf func(string, ...any)) *Result {
	r := &Result{
		Scenario: "handshake", Date: time.Now(), Host: ThisHost(), Baseline: "fanwire", Metrics: handshakeMetrics,
		Settings: map[string]any{"conns": cfg.Conns, "rounds": cfg.Rounds, "loops": cfg.Loops, "max_inflight_per_loop": 512},
		Notes: []string{
			fmt.Sprintf("%d rounds of %d new connections each, dialed as fast as the load generator goes (no rate limit; at most 512 connecting per loop, %d loops), each subscribing to one topic by URL; all closed between rounds.", cfg.Rounds, cfg.Conns, cfg.Loops),
			"fanwire-hs256 and fanwire-es256 are fanwire with --auth required and an HMAC secret or an ECDSA P-256 public key; connection i presents its own token (sub bench-i, signed by the harness before the storms) as ?token=. The first storm's tokens are all new to the server (each one verified); later storms reconnect with the same tokens, which the server's verified-token cache answers until their exp.",
			"Upgrades / server CPU-s = upgrades / (server utime+stime from the first connect to the last 101): the upgrades one core of this machine does per second. On loopback, part of the kernel's TCP work for the server's side runs in the client's system calls, so it is the same handicap for every server.",
		},
	}
	for _, s := range servers {
		if isTokenVariant(s.Name) {
			r.Scenario = "handshake-tokens" // its own results file: the token comparison
		}
	}
	for _, s := range servers {
		logf("handshake: %s", s.Name)
		r.Servers = append(r.Servers, handshakeOne(ctx, s, cfg, logf))
	}
	return r
}

func handshakeOne(ctx context.Context, s Server, cfg HandshakeConfig, logf func(string, ...any)) ServerResult {
	s, tokens, cleanup, err := tokenServer(s, cfg.Conns) // tokens.go: nil for servers without tokens
	if err != nil {
		return ServerResult{Name: s.Name, Figures: map[string]float64{}, Error: "token keys: " + err.Error()}
	}
	defer cleanup()
	p, sr, ok := startMeasured(ctx, s, cfg.Start)
	if !ok {
		return sr
	}
	defer p.Stop(5 * time.Second)
	var upgrades, srvCPU, srvSys, genCPU, wall, p50, p99 float64
	var againUpgrades, againCPU float64
	for round := range max(cfg.Rounds, 1) {
		sleep(ctx, time.Second)
		cpu, err := startCPU(p.PID())
		if err != nil {
			sr.Error = err.Error()
			break
		}
		fleet, err := startFleet(ctx, FleetConfig{WSAddr: p.WSAddr, Paths: []string{"/ws?topics=storm"},
			Conns: cfg.Conns, Rate: 1e9, Loops: cfg.Loops, Ramp: time.Minute, Tokens: tokens, Dialect: p.Server.Dialect})
		if err != nil {
			sr.Error = fmt.Sprintf("round %d: %v", round+1, err)
			break
		}
		sc, g, w, err := cpu.since()
		_, con := fleet.Histograms()
		stopFleet(fleet)
		if err != nil {
			sr.Error = err.Error()
			break
		}
		if round == 0 {
			sr.Figures[MetricUpgradesPerCPUNew] = float64(cfg.Conns) / math.Max(sc, 1.0/ClockTicks)
		} else {
			againUpgrades, againCPU = againUpgrades+float64(cfg.Conns), againCPU+sc
		}
		upgrades += float64(cfg.Conns)
		srvCPU, srvSys, genCPU, wall = srvCPU+sc, srvSys+cpu.serverSys, genCPU+g, wall+w
		l := latencyMs(con)
		p50, p99 = math.Max(p50, l.P50), math.Max(p99, l.P99)
		logf("handshake: %s round %d: %d upgrades in %.2fs wall, server CPU %.2fs (%.0f upgrades/CPU-s), generator CPU %.2fs, connect p50 %.1f ms p99 %.1f ms",
			s.Name, round+1, cfg.Conns, w, sc, float64(cfg.Conns)/math.Max(sc, 0.01), g, l.P50, l.P99)
	}
	if upgrades > 0 {
		sr.Figures[MetricUpgradesPerCPU] = upgrades / math.Max(srvCPU, 1.0/ClockTicks)
		sr.Figures[MetricUpgradesPerSec] = upgrades / wall
		if againUpgrades > 0 {
			sr.Figures[MetricUpgradesPerCPUAgain] = againUpgrades / math.Max(againCPU, 1.0/ClockTicks)
		}
		sr.Figures[MetricServerCPUPct] = 100 * srvCPU / wall
		sr.Figures[MetricServerKernel] = 100 * srvSys / math.Max(srvCPU, 1.0/ClockTicks)
		sr.Figures[MetricGenCPUPct] = 100 * genCPU / wall
		sr.Figures[MetricConnectP50] = p50
		sr.Figures[MetricConnectP99] = p99
		sr.Figures[MetricFailed] = 0
	}
	return sr
}
