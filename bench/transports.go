package bench

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Transport variants of fanwire: the same server, measured through its
// fallback transports. The server is started as "fanwire"; only the
// clients differ (Server.Transport): idle connections and subscribers
// speak Server-Sent Events (GET /sse) or long-polling (GET /poll).
const (
	serverSSE  = "fanwire-sse"
	serverPoll = "fanwire-poll"
)

// Client transports (Server.Transport; "" is WebSocket).
const (
	transportSSE  = "sse"
	transportPoll = "poll"
)

// transportOf is the client transport of a server name ("": WebSocket).
func transportOf(name string) string {
	switch name {
	case serverSSE:
		return transportSSE
	case serverPoll:
		return transportPoll
	}
	return ""
}

// transportScenario says whether a scenario measures the transport
// variants: idle connections and fan-out, not handshakes, slow consumers
// (raw WebSocket sockets) or bandwidth (WebSocket compression).
func transportScenario(scenario string) bool {
	switch scenario {
	case "density", "fanout", "fanout-1000-topics", "transports":
		return true
	}
	return false
}

// streamRequest is the GET of an idle SSE or long-poll connection for a
// WebSocket path (/ws?topics=idle becomes /sse?... or /poll?...). The
// long-poll asks from seq 0 so that it is held (a topic without a resume
// point is answered at once with its position).
func streamRequest(host, path, transport string) []byte {
	p, q, _ := strings.Cut(path, "?")
	p = strings.TrimSuffix(p, "/ws") + "/" + transport
	accept := "text/event-stream"
	if transport == transportPoll {
		accept = "application/json"
		for _, kv := range strings.Split(q, "&") {
			if t, ok := strings.CutPrefix(kv, "topics="); ok {
				var since []string
				for _, name := range strings.Split(t, ",") {
					since = append(since, name+":0")
				}
				q += "&since=" + strings.Join(since, ",")
			}
		}
	}
	if q != "" {
		p += "?" + q
	}
	return []byte("GET " + p + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: " + accept + "\r\n\r\n")
}

// checkStreamResponse validates the head of an SSE stream: 200. A held
// long-poll sends nothing yet; its head is not waited for.
func checkStreamResponse(resp []byte) error {
	if !strings.HasPrefix(string(resp), "HTTP/1.1 200 ") {
		line, _, _ := strings.Cut(string(resp), "\r\n")
		return fmt.Errorf("stream refused: %q", line)
	}
	return nil
}

// TransportsConfig is the transports scenario: the density run (idle
// connections) and the fan-out run for each server, one table.
type TransportsConfig struct {
	Density DensityConfig
	Fanout  FanoutConfig
}

// DefaultTransports: 15k idle connections in 3 steps, then the fan-out ladder.
func DefaultTransports(quick bool) TransportsConfig {
	d := DefaultDensity()
	d.Scenario, d.Conns, d.Steps = "density", 15000, 3
	if quick {
		d.Conns, d.Steps, d.Settle = 1000, 2, 500*time.Millisecond
	}
	return TransportsConfig{Density: d, Fanout: DefaultFanout(quick)}
}

// transportMetrics are the columns of the transports table.
var transportMetrics = []string{MetricRSSPerConn, MetricPSSPerConn, MetricHeapPerConn, MetricSockPerConn,
	MetricFirstPerCPU, MetricBestPerCPU, MetricMaxPerSecond, MetricMaxRateOK, MetricFirstP99}

// RunTransports runs density then fan-out for every server (typically
// fanwire, fanwire-sse, fanwire-poll: the same node, one client transport
// each) and merges their figures, so the ratios are SSE/WebSocket and
// poll/WebSocket from the same run.
func RunTransports(ctx context.Context, servers []Server, cfg TransportsConfig, logf func(string, ...any)) (*Result, map[string]Chart) {
	dr := RunDensity(ctx, servers, cfg.Density, logf)
	fr := RunFanout(ctx, servers, cfg.Fanout, logf)
	r := &Result{Scenario: "transports", Date: dr.Date, Host: dr.Host, Baseline: "fanwire",
		StepColumns: fr.StepColumns, StepLabel: fr.StepLabel, Settings: map[string]any{}}
	all := append(append([]Metric{}, dr.Metrics...), fr.Metrics...)
	for _, key := range transportMetrics {
		for _, m := range all {
			if m.Key == key {
				r.Metrics = append(r.Metrics, m)
			}
		}
	}
	for k, v := range dr.Settings {
		r.Settings["density_"+k] = v
	}
	for k, v := range fr.Settings {
		r.Settings["fanout_"+k] = v
	}
	r.Notes = append(r.Notes,
		"fanwire-sse and fanwire-poll are the same fanwire node as fanwire, measured through GET /sse and GET /poll: idle connections are SSE streams (head and subscribed event read) or held long-polls (?since=idle:0, held for the whole run: --poll-timeout 10m); subscribers are the load generator's SSE and long-poll clients (loadtest --transport sse|poll), every delivery's seq checked.",
		"A long-poll subscriber re-polls at once after each answer, on a new TCP connection (the node answers with Connection: close), with the positions the answer returned; the messages published in between come from the topic's history (--history), so nothing is lost, but each answer costs a connection. Expected deliveries of the poll row come from the plan (a long-poller between two requests is not counted by the publish answer).",
		"The box was shared with other helpers' runs: absolute figures are noisy, ratios within this run are what to read.")
	r.Notes = append(r.Notes, dr.Notes...)
	r.Notes = append(r.Notes, fr.Notes...)
	for i, s := range dr.Servers {
		sr := ServerResult{Name: s.Name, Figures: map[string]float64{}}
		maps.Copy(sr.Figures, s.Figures)
		sr.Series = append(sr.Series, s.Series...)
		errs := []string{}
		if s.Error != "" {
			errs = append(errs, "density: "+s.Error)
		}
		if i < len(fr.Servers) {
			f := fr.Servers[i]
			maps.Copy(sr.Figures, f.Figures)
			sr.Series = append(sr.Series, f.Series...)
			if f.Error != "" {
				errs = append(errs, "fanout: "+f.Error)
			}
		}
		sr.Error = strings.Join(errs, "; ")
		r.Servers = append(r.Servers, sr)
	}
	charts := DensityCharts(r)
	maps.Copy(charts, FanoutCharts(r))
	return r, charts
}
