package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every fanwire metric.
const Namespace = "fanwire"

// Node is one node's snapshot; Worker is "" for a single-process node and
// the worker's number in worker mode (the value of the worker label).
type Node struct {
	Worker string
	Snapshot
}

// Worker is one worker slot as the supervisor sees it.
type Worker struct {
	ID       string
	Up       bool // running and listening
	Restarts uint64
}

// Supervisor is what only the supervisor of `serve --workers N` knows.
type Supervisor struct {
	Workers        []Worker
	PublishedAPI   uint64 // publishes accepted by its control API
	PublishSeconds HistogramSnapshot
	BusPublished   uint64 // messages sequenced on the bus
	BusCASRetries  uint64 // publishes retried because another publisher took the seq
	BusErrors      uint64 // bus publishes that failed (HTTP 503)
	// ClientSequenced: workers' client publications it sequenced (part of
	// BusPublished; the workers count them as source="client").
	ClientSequenced uint64
}

// Gathered is everything one scrape reports.
type Gathered struct {
	Nodes      []Node
	Supervisor *Supervisor // nil for a single-process node
}

// Collector is a prometheus.Collector that calls gather once per scrape and
// emits its numbers as const metrics. With workerLabel, every node series
// carries worker="N".
type Collector struct {
	gather func() Gathered
	worker bool
	d      descs
}

type descs struct {
	conns, open, accepted, upgrades, closed, codes, hsFail, hsDur *prometheus.Desc
	subs, topics, slowNow, published, delivered, bytes            *prometheus.Desc
	slowMode, conflated, slowClosed, snapshots, replays, resets   *prometheus.Desc
	pubDur, busPub, busCAS, busErr, restarts, up                  *prometheus.Desc

	byKind *prometheus.Desc // deliveries by transport
}

// NewCollector returns a collector over gather; workerLabel is true in
// worker mode (the supervisor's scrape).
func NewCollector(gather func() Gathered, workerLabel bool) *Collector {
	var wl []string
	if workerLabel {
		wl = []string{"worker"}
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, append(labels, wl...), nil)
	}
	g := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &Collector{gather: gather, worker: workerLabel, d: descs{
		conns:      d("connections", "Open TCP connections on the WebSocket listener, in every phase (handshake, open, closing)."),
		open:       d("connections_open", "Upgraded connections now open, by transport: websocket, sse (Server-Sent Events), poll (long-polls being held).", "transport"),
		accepted:   d("connections_accepted_total", "TCP connections accepted on the WebSocket listener."),
		upgrades:   d("ws_upgrades_total", "Upgrade requests answered with 101 Switching Protocols."),
		closed:     d("connections_closed_total", "Connections closed, by reason.", "reason"),
		codes:      d("ws_close_codes_total", "Close frames the server sent (its own or the echo of the client's), by close code.", "code"),
		hsFail:     d("handshake_failures_total", "Upgrade requests refused with an HTTP error, by status.", "status"),
		hsDur:      d("handshake_duration_seconds", "Time from TCP accept to the 101 response (millisecond resolution: the event loop's clock)."),
		subs:       d("subscriptions", "Subscriptions (connection, topic) in effect now."),
		topics:     d("topics", "Topics known to the node (published or subscribed to since start)."),
		slowNow:    d("slow_connections", "Connections in slow (conflating) mode now."),
		published:  d("publishes_total", "Messages published, by source: api (the control API), internal (in-process feeds such as --demo), bus (received from the bus by a worker), client (client publications over WebSocket; worker mode: counted by the worker the client is on).", "source"),
		delivered:  d("deliveries_total", "Frames written to subscribers (one per message and subscriber)."),
		byKind:     d("deliveries_by_transport_total", "Live deliveries (as in fanwire_deliveries_total) by the subscriber's transport: websocket, sse, poll (a held long-poll's answer).", "transport"),
		bytes:      d("delivered_bytes_total", "Bytes of the frames written to subscribers."),
		slowMode:   d("slow_mode_entries_total", "Times a connection fell behind (over --max-pending) and entered slow (conflating) mode."),
		conflated:  d("conflated_total", "Messages replaced by a newer one for a slow connection."),
		slowClosed: d("slow_closes_total", "Slow connections closed with 1008."),
		snapshots:  d("snapshots_total", "Last values sent to new subscribers."),
		replays:    d("replays_total", "Resumes served from history."),
		resets:     d("resets_total", "Resumes that could not be served (a reset was sent)."),
		pubDur:     g("publish_duration_seconds", "Control API publish latency: request received to frames queued on the event loops (worker mode: to the bus's ack)."),
		busPub:     g("bus_publishes_total", "Messages sequenced and published on the bus (worker mode)."),
		busCAS:     g("bus_cas_retries_total", "Bus publishes retried because another publisher took the topic's next seq."),
		busErr:     g("bus_errors_total", "Bus publishes that failed (answered 503)."),
		restarts:   g("worker_restarts_total", "Times a worker process was restarted.", "worker"),
		up:         g("worker_up", "1 when the worker process is running and listening, else 0.", "worker"),
	}}
}

// Describe sends nothing: the collector is unchecked, its series depend on
// the mode and on what each scrape finds.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads one snapshot and emits it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g := c.gather()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	hist := func(d *prometheus.Desc, h HistogramSnapshot, labels ...string) {
		n, b := h.cumulative()
		ch <- prometheus.MustNewConstHistogram(d, n, h.Sum, b, labels...)
	}
	for _, n := range g.Nodes {
		var w []string
		if c.worker {
			w = []string{n.Worker}
		}
		l := func(vals ...string) []string { return append(vals, w...) }
		gauge(c.d.conns, float64(n.Conns), w...)
		for _, t := range Transports {
			gauge(c.d.open, float64(n.OpenByTransport[t]), l(t)...)
		}
		counter(c.d.accepted, n.Accepted, w...)
		counter(c.d.upgrades, n.Upgrades, w...)
		for _, r := range Reasons {
			counter(c.d.closed, n.Closed[r], l(r)...)
		}
		for _, code := range CloseCodes {
			s := strconv.Itoa(code)
			counter(c.d.codes, n.CloseCodes[s], l(s)...)
		}
		counter(c.d.codes, n.CloseCodes["other"], l("other")...)
		for _, st := range HTTPStatuses {
			s := strconv.Itoa(st)
			counter(c.d.hsFail, n.HandshakeFailures[s], l(s)...)
		}
		counter(c.d.hsFail, n.HandshakeFailures["other"], l("other")...)
		hist(c.d.hsDur, n.HandshakeSeconds, w...)
		gauge(c.d.subs, float64(n.Subscriptions), w...)
		gauge(c.d.topics, float64(n.Topics), w...)
		gauge(c.d.slowNow, float64(n.SlowNow), w...)
		if c.worker {
			counter(c.d.published, n.PublishedBus, l("bus")...)
			counter(c.d.published, n.PublishedClient, l("client")...)
		} else {
			counter(c.d.published, n.PublishedClient, "client")
			counter(c.d.published, n.PublishedAPI, "api")
			counter(c.d.published, n.PublishedLocal-min(n.PublishedLocal, n.PublishedAPI), "internal")
		}
		counter(c.d.delivered, n.Delivered, w...)
		for _, t := range Transports {
			counter(c.d.byKind, n.DeliveredByTransport[t], l(t)...)
		}
		counter(c.d.bytes, n.DeliveredBytes, w...)
		counter(c.d.slowMode, n.SlowMode, w...)
		counter(c.d.conflated, n.Conflated, w...)
		counter(c.d.slowClosed, n.SlowClosed, w...)
		counter(c.d.snapshots, n.Snapshots, w...)
		counter(c.d.replays, n.Replays, w...)
		counter(c.d.resets, n.Resets, w...)
		if !c.worker {
			hist(c.d.pubDur, n.PublishSeconds)
		}
	}
	if s := g.Supervisor; s != nil {
		// The supervisor's own publishes: worker="" (no worker) in the family
		// whose other series are the workers'.
		counter(c.d.published, s.PublishedAPI, "api", "")
		// --demo through the bus: what it sequenced for neither the API nor clients.
		counter(c.d.published, s.BusPublished-min(s.BusPublished, s.PublishedAPI+s.ClientSequenced), "internal", "")
		hist(c.d.pubDur, s.PublishSeconds)
		counter(c.d.busPub, s.BusPublished)
		counter(c.d.busCAS, s.BusCASRetries)
		counter(c.d.busErr, s.BusErrors)
		for _, w := range s.Workers {
			counter(c.d.restarts, w.Restarts, w.ID)
			up := 0.0
			if w.Up {
				up = 1
			}
			gauge(c.d.up, up, w.ID)
		}
	}
}

// Handler serves GET /metrics for c, with the Go runtime and process
// collectors alongside (go_*, process_*).
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
