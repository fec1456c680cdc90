package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is everything a run measured, plus the settings it used.
type Report struct {
	Mode        string    `json:"mode"`
	Settings    Config    `json:"settings"`
	Started     time.Time `json:"started"`
	ElapsedSec  float64   `json:"elapsed_s"`
	Processes   int       `json:"processes"` // 1 = no worker processes
	Connections Counters  `json:"connections"`
	ConnectUs   Latency   `json:"connect_latency_us"`           // TCP connect start to 101
	TrackedUs   *Latency  `json:"tracked_latency_us,omitempty"` // connect --track: send time ("t") to arrival of deliveries
	Delivery    *Delivery `json:"delivery,omitempty"`
	Reconnect   *Reconn   `json:"reconnect,omitempty"` // --resume and the server closed connections
	Memory      *MemFig   `json:"memory,omitempty"`
	Timeline    []Sample  `json:"timeline"`
	Errors      []string  `json:"errors,omitempty"` // process-level errors
	Problems    []string  `json:"problems,omitempty"`
	OK          bool      `json:"ok"`

	Chat *ChatResult `json:"chat,omitempty"` // chat mode (chat.go)
}

// Latency summarises an HDR histogram in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

// Delivery is the fanout outcome.
type Delivery struct {
	Published     int64            `json:"published"`
	PublishErrors int64            `json:"publish_errors"`
	PublishErrBy  map[string]int64 `json:"publish_errors_by,omitempty"`
	PublishRate   float64          `json:"publish_per_s"`
	PublishRTTUs  Latency          `json:"publish_rtt_us"`      // HTTP POST round trip (part of delivery latency)
	Expected      int64            `json:"expected"`            // sum of "subscribers" in publish responses
	ExpectedPlan  int64            `json:"expected_by_plan"`    // from subscribers per topic
	Uncounted     int64            `json:"uncounted,omitempty"` // publishes answered without a count: expected from the plan
	Delivered     int64            `json:"delivered"`           // messages received minus duplicates
	Lost          int64            `json:"lost"`
	LossRatio     float64          `json:"loss_ratio"`
	Gaps          int64            `json:"gaps"`           // missing seqs nobody announced: silent loss
	Announced     int64            `json:"announced_gaps"` // missing seqs announced by a reset or a conflated delivery
	Resets        int64            `json:"resets"`
	Dups          int64            `json:"dups"`             // a seq not above the last one: duplicated or out of order
	PerSecond     float64          `json:"deliveries_per_s"` // over the publishing window
	LatencyUs     Latency          `json:"latency_us"`
}

// Reconn is how connections the server closed came back (--resume): a
// restart or drain seen from the clients.
type Reconn struct {
	Closed      int64            `json:"closed"`      // open connections the server closed, queued to reconnect
	Reconnected int64            `json:"reconnected"` // open again
	GivenUp     int64            `json:"given_up"`    // never open again (a 4xx, or still trying when the run stopped)
	Attempts    int64            `json:"attempts"`    // reconnect attempts: the successful ones plus the failed ones
	FailedBy    map[string]int64 `json:"failed_attempts_by,omitempty"`
	FullSec     float64          `json:"full_reconnection_s"` // first such close to the last reconnect's 101
	DowntimeUs  Latency          `json:"downtime_us"`         // per connection: server close to its reconnect's 101
}

// MemFig is the load generator's own memory per idle connection:
// everything included, and without the fixed per-process part.
type MemFig struct {
	Conns               int64   `json:"conns"`
	Processes           int     `json:"processes"`
	HeapPerConn         float64 `json:"heap_bytes_per_conn"`
	RSSPerConn          float64 `json:"rss_bytes_per_conn"`
	MarginalHeapPerConn float64 `json:"marginal_heap_bytes_per_conn"`
	MarginalRSSPerConn  float64 `json:"marginal_rss_bytes_per_conn"`
	FixedHeapBytes      int64   `json:"fixed_heap_bytes"`
}

// Sample is one point of the timeline (one per second).
type Sample struct {
	T              float64 `json:"t_s"`
	Open           int64   `json:"open"`
	Established    int64   `json:"established"`
	Failed         int64   `json:"failed"`
	ClosedByServer int64   `json:"closed_by_server"`
	Messages       int64   `json:"messages"`
}

// merged is the sum of all processes' results.
type merged struct {
	counters Counters
	latency  *hdrhistogram.Histogram
	connect  *hdrhistogram.Histogram
	downtime *hdrhistogram.Histogram
	ack      *hdrhistogram.Histogram
	memory   *Memory
	errors   []string
}

// mergeResults sums counters, merges histograms and memory figures.
func mergeResults(rs []PartResult) merged {
	m := merged{latency: newHist(), connect: newHist(), downtime: newHist(), ack: newHist()}
	for _, r := range rs {
		m.counters.Add(r.Counters)
		m.latency.Merge(decodeHist(r.Latency))
		m.connect.Merge(decodeHist(r.Connect))
		m.downtime.Merge(decodeHist(r.Downtime))
		if r.Ack != "" {
			m.ack.Merge(decodeHist(r.Ack))
		}
		if r.Memory != nil {
			if m.memory == nil {
				m.memory = &Memory{}
			}
			m.memory.Add(*r.Memory)
		}
		if r.Error != "" {
			m.errors = append(m.errors, r.Error)
		}
	}
	return m
}

// judge fills Problems and OK from the figures.
func (r *Report) judge() {
	c := r.Connections
	if c.Failed > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d connection attempts failed (%s)", c.Failed, formatMap(c.FailedBy)))
	}
	if c.GivenUp > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of %d connections closed by the server never reconnected (given up)", c.GivenUp, c.Reconnects))
	}
	if c.ClosedByServer > 0 && !(r.Settings.Resume && c.ClosedByServer == c.Reconnects) {
		r.Problems = append(r.Problems, fmt.Sprintf("%d connections closed by the server (%s)", c.ClosedByServer, formatMap(c.ClosedBy)))
	}
	if d := r.Delivery; d != nil {
		if d.LossRatio > r.Settings.MaxLoss {
			r.Problems = append(r.Problems, fmt.Sprintf("lost %d of %d deliveries (%.4g%% > --max-loss %.4g%%)",
				d.Lost, d.Expected, 100*d.LossRatio, 100*r.Settings.MaxLoss))
		}
		if r.Connections.Failed == 0 && d.PublishErrors == 0 && d.Uncounted == 0 && d.Expected != d.ExpectedPlan {
			r.Problems = append(r.Problems, fmt.Sprintf("the node counted %d deliveries for our publishes, but %d subscribers' worth were connected (other nodes or foreign subscribers on the topics?)",
				d.Expected, d.ExpectedPlan))
		}
		if d.Dups > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d duplicate or out-of-order deliveries", d.Dups))
		}
		if d.Gaps > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d seqs missing without a reset (silent gaps)", d.Gaps))
		}
		if d.PublishErrors > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d publishes failed (%s)", d.PublishErrors, formatMap(d.PublishErrBy)))
		}
	}
	if ch := r.Chat; ch != nil {
		r.Problems = append(r.Problems, ch.problems(r.Settings.MaxLoss)...)
	}
	for _, e := range r.Errors {
		r.Problems = append(r.Problems, "process error: "+e)
	}
	r.OK = len(r.Problems) == 0
}

func formatMap(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText prints the human summary.
func (r *Report) WriteText(w io.Writer) {
	c := r.Connections
	fmt.Fprintf(w, "fanwire load %s: %s in %.1fs, %d process(es)\n", r.Mode, r.Settings.URL, r.ElapsedSec, r.Processes)
	fmt.Fprintf(w, "  connections: attempted %d, established %d, failed %d (after %d retries), closed by server %d\n",
		c.Attempted, c.Established, c.Failed, c.Retried, c.ClosedByServer)
	fmt.Fprintf(w, "  closing:     clean %d, no close frame %d, close timeout %d, aborted while connecting %d\n",
		c.ClosedClean, c.ClosedNoReply, c.CloseTimeout, c.Aborted)
	if len(c.FailedBy) > 0 {
		fmt.Fprintf(w, "  failed attempts by cause: %s\n", formatMap(c.FailedBy))
	}
	if len(c.ClosedBy) > 0 {
		fmt.Fprintf(w, "  closed by:   %s\n", formatMap(c.ClosedBy))
	}
	if rc := r.Reconnect; rc != nil {
		fmt.Fprintf(w, "  reconnects:  %d closed by the server, %d back, %d given up; all back %.1fs after the first close; %d attempts",
			rc.Closed, rc.Reconnected, rc.GivenUp, rc.FullSec, rc.Attempts)
		if len(rc.FailedBy) > 0 {
			fmt.Fprintf(w, " (failed: %s)", formatMap(rc.FailedBy))
		}
		fmt.Fprintf(w, "\n  downtime per connection (close to 101): %s\n", rc.DowntimeUs)
	}
	if c.Churned > 0 {
		fmt.Fprintf(w, "  churned:     %d closes+reconnects (%.0f/s over --duration)\n", c.Churned, float64(c.Churned)/max(r.Settings.Duration.Seconds(), 1e-9))
	}
	fmt.Fprintf(w, "  connect latency: %s\n", r.ConnectUs)
	if r.TrackedUs != nil {
		fmt.Fprintf(w, "  delivered: %d messages, gaps %d, dups %d; latency: %s\n", r.Connections.Messages, r.Connections.Gaps, r.Connections.Dups, *r.TrackedUs)
	}
	if d := r.Delivery; d != nil {
		fmt.Fprintf(w, "  published:   %d (%.0f/s), errors %d; POST round trip %s\n", d.Published, d.PublishRate, d.PublishErrors, d.PublishRTTUs)
		fmt.Fprintf(w, "  delivered:   %d of %d expected (%.0f/s), lost %d (%.4g%%), silent gaps %d, announced gaps %d (%d resets), dups/out of order %d\n",
			d.Delivered, d.Expected, d.PerSecond, d.Lost, 100*d.LossRatio, d.Gaps, d.Announced, d.Resets, d.Dups)
		if d.Uncounted > 0 {
			fmt.Fprintf(w, "               (%d publish answers gave no usable subscriber count (worker mode, or long-pollers between requests): expected from this run's own subscribers)\n", d.Uncounted)
		}
		fmt.Fprintf(w, "  delivery latency: %s\n", d.LatencyUs)
	}
	if ch := r.Chat; ch != nil {
		ch.writeText(w)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "  load generator memory: %.0f B heap/conn, %.0f B RSS/conn over %d idle conns in %d process(es)\n"+
			"                         marginal %.0f B heap, %.0f B RSS per conn (fixed loop buffers and histograms: %d KiB heap in all)\n",
			m.HeapPerConn, m.RSSPerConn, m.Conns, m.Processes, m.MarginalHeapPerConn, m.MarginalRSSPerConn, m.FixedHeapBytes>>10)
	}
	if r.OK {
		fmt.Fprintln(w, "  result: OK")
		return
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
}

func (l Latency) String() string {
	if l.Count == 0 {
		return "n/a"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		fmtUs(l.P50), fmtUs(l.P90), fmtUs(l.P99), fmtUs(l.P999), fmtUs(l.Max), l.Count)
}

func fmtUs(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%.2fs", float64(us)/1e6)
}
