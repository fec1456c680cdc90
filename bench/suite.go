package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenarios are the names `fanwire bench --scenario` accepts, in run order.
var Scenarios = []string{"density", "density-max", "fanout", "fanout-1000-topics", "handshake", "slow-consumers", "bandwidth"}

// ExtraScenarios run only when named: "transports" (density and fan-out
// in one table, for --servers fanwire,fanwire-sse,fanwire-poll).
var ExtraScenarios = []string{"transports"}

// Options is one `fanwire bench` invocation.
type Options struct {
	Quick   bool
	Out     string   // results directory
	Servers []Server // in table order, fanwire first
	Loader  string   // the fanwire binary (for `load connect` worker processes)
	Pinned  bool     // servers run on their own CPUs (Server.CPUs); results get a -pinned suffix
	Logf    func(string, ...any)
	// Suffix is appended to the scenario name of every results file
	// ("-uws": 2026-12-01-fanout-uws.md), so runs can sit side by side.
	Suffix string
	// SlowDuration overrides the slow-consumer scenario's publishing time
	// (0: its default), to see where a stalled client's backlog ends up.
	SlowDuration time.Duration
}

// ParseScenarios turns "all" or a comma-separated list into scenario names.
func ParseScenarios(s string) ([]string, error) {
	if s == "" || s == "all" {
		return Scenarios, nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		ok := slices.Contains(Scenarios, name) || slices.Contains(ExtraScenarios, name)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (have %s, all, or %s)", name, strings.Join(Scenarios, ", "), strings.Join(ExtraScenarios, ", "))
		}
		out = append(out, name)
	}
	return out, nil
}

// RunScenario runs one scenario for every server and writes its files.
func RunScenario(ctx context.Context, name string, o Options) (*Result, []string, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var (
		r      *Result
		charts map[string]Chart
	)
	o.Servers = serversFor(name, o.Servers)
	load := loadAverage()
	switch name {
	case "density", "density-max":
		d := DefaultDensity()
		d.Scenario = name
		if o.Quick {
			d.Conns, d.Steps, d.Settle = 1000, 2, 500*time.Millisecond
		}
		if name == "density-max" {
			// The largest count every server gets here: 19k (the
			// open-files limit is 20,000 per process), clients in 2 processes.
			d.Conns, d.Steps, d.Loader, d.ClientProcs = 19000, 1, o.Loader, 2
			if o.Quick {
				d.Conns = 2000
			}
		}
		r, charts = RunDensity(ctx, o.Servers, d, logf), nil
		charts = DensityCharts(r)
	case "fanout":
		r = RunFanout(ctx, o.Servers, DefaultFanout(o.Quick), logf)
		charts = FanoutCharts(r)
	case "fanout-1000-topics":
		r = RunFanout(ctx, o.Servers, DefaultFanoutTopics(o.Quick), logf)
		charts = FanoutCharts(r)
	case "handshake":
		hc := DefaultHandshake(o.Quick)
		if !o.Quick && slices.ContainsFunc(o.Servers, func(s Server) bool { return isTokenVariant(s.Name) }) {
			// The token comparison: storms of 15k (within the verified-token
			// cache's 16k), one with new tokens and two with the same again.
			hc.Conns, hc.Rounds = 15000, 3
		}
		r = RunHandshake(ctx, o.Servers, hc, logf)
	case "slow-consumers":
		cfg := DefaultSlow(o.Quick)
		if o.SlowDuration > 0 {
			cfg.Duration = o.SlowDuration
		}
		r = RunSlow(ctx, o.Servers, cfg, logf)
		charts = SlowCharts(r)
	case "bandwidth":
		r = RunBandwidth(ctx, o.Servers, DefaultBandwidth(o.Quick), logf)
	case "transports":
		r, charts = RunTransports(ctx, o.Servers, DefaultTransports(o.Quick), logf)
	default:
		return nil, nil, fmt.Errorf("unknown scenario %q", name)
	}
	if o.Pinned {
		r.Scenario += "-pinned"
		r.Settings["server_cpus"] = o.Servers[0].CPUs
	}
	if o.Quick {
		r.Scenario += "-quick"
		r.Settings["quick"] = true
	}
	r.Scenario += o.Suffix
	if load != "" {
		r.Notes = append(r.Notes, "Load average of the box when the scenario started (1, 5, 15 min): "+load+"; the 2 cores are shared with other work, so read fanwire/peer ratios from the same run, not absolute figures.")
	}
	if slices.ContainsFunc(o.Servers, func(s Server) bool { return IsUWS(s.Name) }) {
		r.Notes = append(r.Notes, "uwshub is uWebSockets (C++, bench/peers/uwshub): one uSockets epoll loop for WebSockets, its own pub/sub (a publish is queued once and drained corked at the end of the loop pass), compression, pings and idle timeout off, 1 MiB backpressure then close; the publish API on a second thread hands frames to the loop with uWS::Loop::defer (uwshub-oneloop: the API on the WebSocket loop). Built from sources with listen backlog = somaxconn like the other servers (uSockets' default is 512). No /debug/heap: its Go-heap column is empty.")
	}
	paths, err := WriteAll(r, charts, o.Out)
	return r, paths, err
}

// loadAverage is the first three fields of /proc/loadavg ("" if unreadable).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

// BuildPeers compiles every peer of the bench/peers module at src into a
// new temporary directory and returns it (the caller removes it).
func BuildPeers(ctx context.Context, src string) (string, error) {
	dir, err := os.MkdirTemp("", "fanwire-bench-peers-")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./...")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building peers in %s: %v\n%s", src, err, out)
	}
	return dir, nil
}

// PeerNames are the Go peers under bench/peers, in table order.
var PeerNames = []string{"gorillahub", "nbiohub", "coderhub"}

// flushPrefix names fanwire run with --flush-interval: "fanwire-flush5ms".
const flushPrefix = "fanwire-flush"

// DefaultServers is what `fanwire bench` compares: fanwire writing each
// publish at once, fanwire gathering publishes for 5 ms, then the peers.
// The uWebSockets peer comes last; it is skipped when its sources are missing.
var DefaultServers = append(append([]string{"fanwire", flushPrefix + "5ms"}, PeerNames...), UWSName)

// loopsPrefix names fanwire run with --loops N: "fanwire-loops1" is one
// event loop, the shape of a one-thread uWebSockets server.
const loopsPrefix = "fanwire-loops"

// IsFanwire says whether name is fanwire itself or one of its flag variants.
func IsFanwire(name string) bool {
	return name == "fanwire" || strings.HasPrefix(name, flushPrefix) || isTokenVariant(name) || strings.HasPrefix(name, loopsPrefix) || transportOf(name) != ""
}

// loopsOf is the --loops of a "fanwire-loops<N>" name.
func loopsOf(name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, loopsPrefix))
	return n, strings.HasPrefix(name, loopsPrefix) && err == nil && n > 0
}

// flushInterval is the --flush-interval of a "fanwire-flush<duration>" name.
func flushInterval(name string) (time.Duration, bool) {
	if !strings.HasPrefix(name, flushPrefix) {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimPrefix(name, flushPrefix))
	return d, err == nil && d > 0
}

// CheckServerName rejects a name ServerList cannot start.
func CheckServerName(name string) error {
	if name == "fanwire" || slices.Contains(PeerNames, name) || isTokenVariant(name) || name == serverCentrifugo || IsUWS(name) || transportOf(name) != "" {
		return nil
	}
	if _, ok := flushInterval(name); ok {
		return nil
	}
	if _, ok := loopsOf(name); ok {
		return nil
	}
	return fmt.Errorf("unknown server %q (have fanwire, %s<duration>, %s<N>, %s, %s (handshake only), %s, %s (clients on SSE and long-polling), %s, %s, %s, %s)", name, flushPrefix, loopsPrefix, serverHS256, serverES256, serverSSE, serverPoll, strings.Join(PeerNames, ", "), serverCentrifugo, UWSName, UWSOneLoop)
}

// ServerList makes the servers to run: fanwire (and its flush variants) from
// its binary, peers from peerDir. No server pings during a run (idle and
// never-reading clients).
func ServerList(names []string, fanwire, peerDir string) []Server {
	common := []string{"--ping-interval", "10m"}
	var list []Server
	for _, name := range names {
		s := Server{Name: name, Path: filepath.Join(peerDir, name), Args: common}
		if IsFanwire(name) {
			s.Path, s.Subcommand = fanwire, "serve"
			s.Args = append([]string{"--log-level", "warn"}, common...)
			// Capacity runs: no abuse limits (one source address, connection storms).
			s.Args = append(s.Args, "--max-conns-per-ip", "0", "--max-conn-rate", "0")
			if d, ok := flushInterval(name); ok {
				s.Args = append(s.Args, "--flush-interval", d.String())
			}
			if n, ok := loopsOf(name); ok {
				s.Args = append(s.Args, "--loops", strconv.Itoa(n))
			}
			s.Transport = transportOf(name)
			if s.Transport == transportPoll {
				s.Args = append(s.Args, "--poll-timeout", "10m") // idle long-polls held for the whole run
			}
		}
		if name == serverCentrifugo {
			s = centrifugoServer() // its own config: centrifugo.go
		}
		if name == UWSOneLoop {
			s.Path = filepath.Join(peerDir, UWSName)
			s.Args = append(append([]string(nil), common...), "--publish-thread=false")
		}
		list = append(list, s)
	}
	return list
}

// serversFor drops the flush variants from scenarios where gathering
// publishes changes nothing (idle connections, handshakes): same binary,
// same figures, twice the run time.
func serversFor(scenario string, all []Server) []Server {
	var out []Server
	for _, s := range all {
		_, flush := flushInterval(s.Name)
		switch scenario {
		case "density", "density-max", "handshake":
		default:
			flush = false
		}
		// Token variants measure the upgrade only: their clients elsewhere carry no token.
		// Transport variants: where their clients exist (transportScenario).
		if !flush && (!isTokenVariant(s.Name) || scenario == "handshake") && (s.Transport == "" || transportScenario(scenario)) {
			out = append(out, s)
		}
	}
	return out
}
