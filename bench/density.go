package bench

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"
)

// DensityConfig is the idle-connection density scenario: open Conns idle
// upgraded connections in Steps equal steps against each server and record
// the server's RSS and the kernel's slab memory after each step.
type DensityConfig struct {
	Conns     int           // total idle connections (≤ 19k: the open-files limit is per process)
	Steps     int           // measuring points, evenly spaced up to Conns
	Path      string        // upgrade path, e.g. "/ws?topics=idle": one subscription per connection
	SourceIPs int           // client source addresses 127.0.0.2..
	Workers   int           // concurrent dialers
	Settle    time.Duration // pause before each sample so the server goes quiet
	Start     time.Duration // how long a server may take to listen
	// Scenario names the result ("density", "density-max").
	Scenario string
	// Loader, when set, is the fanwire binary whose `load connect` holds
	// the connections in ClientProcs worker processes (one run per step)
	// instead of the harness: needed above one process's open-files limit.
	Loader      string
	ClientProcs int
	LoadRate    float64 // connects per second of the load runs
}

// DefaultDensity is the 10k run.
func DefaultDensity() DensityConfig {
	return DensityConfig{Conns: 10000, Steps: 4, Path: "/ws?topics=idle", SourceIPs: 8, Workers: 16,
		Settle: 2 * time.Second, Start: 10 * time.Second}
}

// Density metric keys.
const (
	MetricRSSPerConn  = "rss_per_conn"
	MetricPSSPerConn  = "pss_per_conn"
	MetricTotPerConn  = "pss_plus_socket_slab_per_conn"
	MetricSlabPerConn = "slab_per_conn"
	MetricSockPerConn = "socket_slab_per_conn"
	MetricHeapPerConn = "go_live_per_conn"
	MetricSocketsUsed = "sockets_per_conn"
	MetricRSSBase     = "rss_base"
	MetricAlive       = "alive"
	MetricOpenSeconds = "open_seconds"
)

// DensityMetrics are the table columns of the density scenario.
var DensityMetrics = []Metric{
	{Key: MetricRSSPerConn, Label: "server RSS / conn", Unit: "B", LowerIsBetter: true},
	{Key: MetricPSSPerConn, Label: "server PSS / conn", Unit: "B", LowerIsBetter: true},
	{Key: MetricTotPerConn, Label: "PSS + kernel socket slab / conn", Unit: "B", LowerIsBetter: true},
	{Key: MetricHeapPerConn, Label: "Go heap+stacks / conn", Unit: "B", LowerIsBetter: true},
	{Key: MetricSockPerConn, Label: "kernel socket slab / conn, both ends", Unit: "B", LowerIsBetter: true},
	{Key: MetricSlabPerConn, Label: "all slab / conn (noisy)", Unit: "B", LowerIsBetter: true, NoRatio: true},
	{Key: MetricSocketsUsed, Label: "sockets / conn (2.00 = quiet machine)", NoRatio: true},
	{Key: MetricRSSBase, Label: "RSS before", Unit: "MiB", LowerIsBetter: true, NoRatio: true},
	{Key: MetricAlive, Label: "conns alive at end", Unit: "", NoRatio: true},
	{Key: MetricOpenSeconds, Label: "time to open all", Unit: "s", LowerIsBetter: true, NoRatio: true},
}

// RunDensity runs the scenario against each server in turn and returns the
// result; a server that fails gets its error recorded and the run goes on.
func RunDensity(ctx context.Context, servers []Server, cfg DensityConfig, logf func(string, ...any)) *Result {
	r := &Result{
		Scenario: cmp.Or(cfg.Scenario, "density"),
		Date:     time.Now(),
		Host:     ThisHost(),
		Baseline: "fanwire",
		Metrics:  DensityMetrics,
		Settings: map[string]any{
			"conns": cfg.Conns, "steps": cfg.Steps, "path": cfg.Path, "source_ips": cfg.SourceIPs,
			"workers": cfg.Workers, "settle": cfg.Settle.String(),
			"client_processes": max(cfg.ClientProcs, 1),
		},
		Notes: []string{
			"RSS/conn = (server RSS after N idle upgraded conns - RSS before any) / N, read before anything forces a GC. RSS is Rss in /proc/PID/smaps_rollup (exact), not VmRSS in /proc/PID/status (since Linux 6.2 an approximate per-CPU counter: it was seen MBs short at a fresh multi-threaded server's baseline).",
			"PSS/conn = the same delta of Pss in /proc/PID/smaps_rollup: pages shared with other processes count in proportion, so it does not charge the binary's shared pages to every process.",
			"PSS + kernel socket slab/conn: the whole cost of one idle connection on this box (user and kernel memory, both socket ends).",
			"Go heap+stacks/conn = delta of HeapAlloc+StackInuse right after a forced GC, from the server's GET /debug/heap (read after RSS); '–' where the server has no such endpoint.",
			"Kernel socket slab/conn = delta of sum(active_objs*objsize) over /proc/slabinfo caches " + strings.Join(SocketSlabCaches, ", ") + ", / N. On loopback it holds BOTH ends of each connection (the client's are raw blocking sockets: no epoll item, so the epoll part is the server's). System-wide, so other work on the machine adds noise.",
			"All slab/conn = /proc/meminfo Slab delta / N: includes dentries and file-system caches, which other work on a shared machine moves by tens of MB; only meaningful on a quiet machine.",
		},
	}
	if cfg.Loader != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("The idle connections are held by `fanwire load connect` split over %d worker processes (one run per step; the open-files limit is per process), not by the harness: their sockets are epoll-registered and answer pings, so the kernel socket slab also holds the client side's epoll items.", max(cfg.ClientProcs, 1)))
	}
	for _, s := range servers {
		logf("density: %s", s.Name)
		sr := densityOne(ctx, s, cfg, logf)
		r.Servers = append(r.Servers, sr)
	}
	return r
}

func densityOne(ctx context.Context, s Server, cfg DensityConfig, logf func(string, ...any)) ServerResult {
	p, sr, ok := startMeasured(ctx, s, cfg.Start)
	if !ok {
		return sr
	}
	clients, err := idleClientsFor(p, cfg)
	if err != nil {
		sr.Error = err.Error()
		p.Kill()
		return sr
	}
	defer func() {
		clients.Close()
		if !p.Stop(5 * time.Second) {
			logf("density: %s did not exit on SIGTERM within 5s; killed", s.Name)
		}
	}()
	sleep(ctx, cfg.Settle)
	rss0, err1 := RSS(p.PID())
	slab0, err2 := Slab()
	sock0, err3 := SocketSlab(SocketSlabCaches)
	used0, err4 := SocketsUsed()
	pss0, err5 := PSS(p.PID())
	if err := firstError(err1, err2, err3, err4, err5); err != nil {
		sr.Error = err.Error()
		return sr
	}
	sr.Figures[MetricRSSBase] = float64(rss0) / (1 << 20)
	heap0, herr := ProbeHeap(p.HTTPAddr)
	if herr != nil && herr != ErrNoHeapProbe {
		logf("density: %s heap probe: %v", s.Name, herr)
	}
	heapSeries := Series{Name: MetricHeapPerConn, XLabel: "idle connections", YLabel: "Go heap+stacks per connection (B)"}
	rssSeries := Series{Name: MetricRSSPerConn, XLabel: "idle connections", YLabel: "server RSS per connection (B)"}
	slabSeries := Series{Name: MetricSlabPerConn, XLabel: "idle connections", YLabel: "all slab per connection (B)"}
	sockSeries := Series{Name: MetricSockPerConn, XLabel: "idle connections", YLabel: "kernel socket slab per connection, both ends (B)"}
	steps := max(cfg.Steps, 1)
	var openTime time.Duration
	for i := 1; i <= steps; i++ {
		target := cfg.Conns * i / steps
		t0 := time.Now()
		if err := clients.Add(ctx, target-clients.Len()); err != nil {
			sr.Error = fmt.Sprintf("opening connection %d: %v", clients.Len()+1, err)
			break
		}
		openTime += time.Since(t0)
		sleep(ctx, cfg.Settle)
		rss, err1 := RSS(p.PID())
		slab, err2 := Slab()
		sock, err3 := SocketSlab(SocketSlabCaches)
		used, err4 := SocketsUsed()
		pss, err5 := PSS(p.PID())
		if err := firstError(err1, err2, err3, err4, err5); err != nil {
			sr.Error = err.Error()
			break
		}
		n := float64(clients.Len())
		if herr == nil {
			if h, err := ProbeHeap(p.HTTPAddr); err == nil {
				heapSeries.X, heapSeries.Y = append(heapSeries.X, n), append(heapSeries.Y, float64(h.Live()-heap0.Live())/n)
			}
		}
		rssSeries.X, rssSeries.Y = append(rssSeries.X, n), append(rssSeries.Y, float64(rss-rss0)/n)
		slabSeries.X, slabSeries.Y = append(slabSeries.X, n), append(slabSeries.Y, float64(slab-slab0)/n)
		sockSeries.X, sockSeries.Y = append(sockSeries.X, n), append(sockSeries.Y, float64(sock-sock0)/n)
		sr.Figures[MetricSocketsUsed] = float64(used-used0) / n
		sr.Figures[MetricPSSPerConn] = float64(pss-pss0) / n
		sr.Figures[MetricTotPerConn] = float64(pss-pss0+sock-sock0) / n
		logf("density: %s %d conns: RSS %+.0f B/conn, PSS %+.0f B/conn, socket slab %+.0f B/conn, all slab %+.0f B/conn", s.Name, clients.Len(),
			float64(rss-rss0)/n, float64(pss-pss0)/n, float64(sock-sock0)/n, float64(slab-slab0)/n)
	}
	if k := len(rssSeries.Y); k > 0 {
		sr.Figures[MetricRSSPerConn] = rssSeries.Y[k-1]
		sr.Figures[MetricSlabPerConn] = slabSeries.Y[k-1]
		sr.Figures[MetricSockPerConn] = sockSeries.Y[k-1]
	}
	if k := len(heapSeries.Y); k > 0 {
		sr.Figures[MetricHeapPerConn] = heapSeries.Y[k-1]
		sr.Series = append(sr.Series, heapSeries)
	}
	sr.Figures[MetricAlive] = float64(clients.Alive())
	sr.Figures[MetricOpenSeconds] = openTime.Seconds()
	sr.Series = append(sr.Series, rssSeries, sockSeries, slabSeries)
	return sr
}

// DensityCharts are the plots of a density result: memory per connection
// against the connection count, one line per server.
func DensityCharts(r *Result) map[string]Chart {
	return map[string]Chart{
		"rss-per-conn":         SeriesChart(r, MetricRSSPerConn, "Server RSS per idle connection"),
		"heap-per-conn":        SeriesChart(r, MetricHeapPerConn, "Go heap+stacks per idle connection (after GC)"),
		"socket-slab-per-conn": SeriesChart(r, MetricSockPerConn, "Kernel socket slab per idle connection (both ends)"),
	}
}

// SeriesChart draws the series called name of every server in r.
func SeriesChart(r *Result, name, title string) Chart {
	c := Chart{Title: title}
	for _, s := range r.Servers {
		for _, se := range s.Series {
			if se.Name != name {
				continue
			}
			c.XLabel, c.YLabel = se.XLabel, se.YLabel
			c.Lines = append(c.Lines, Line{Name: s.Name, X: se.X, Y: se.Y})
		}
	}
	return c
}

// idleClientsFor picks where the idle connections live: the harness, or
// `fanwire load connect` processes when cfg.Loader is set.
func idleClientsFor(p *Process, cfg DensityConfig) (idleSet, error) {
	if cfg.Loader == "" {
		return &rawIdle{cfg: IdleConfig{Addr: p.WSAddr, Path: cfg.Path, SourceIPs: cfg.SourceIPs, Workers: cfg.Workers, Dialect: p.Server.Dialect, Transport: p.Server.Transport}}, nil
	}
	if p.Server.Transport != "" {
		return nil, fmt.Errorf("bench: %s: idle %s connections are held by the harness only (not with a loader)", p.Server.Name, p.Server.Transport)
	}
	l, err := newLoadIdle(cfg.Loader, "ws://"+p.WSAddr+dialectPath(p.Server.Dialect, cfg.Path), cfg.ClientProcs, cmp.Or(cfg.LoadRate, 3000), p.PID())
	if err != nil {
		return nil, err
	}
	l.Dialect = p.Server.Dialect
	return l, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func firstError(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
