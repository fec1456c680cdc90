package loadtest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Fleet runs one Plan in this process: a few epoll loops, each owning a
// share of the connections.
type Fleet struct {
	plan    Plan
	loops   []*loop
	started time.Time
	base    memSample // before anything of the fleet existed
	fixed   memSample // after the loops (buffers, histograms) exist
}

// StartFleet resolves the target, creates the loops and starts dialing.
func StartFleet(plan Plan) (*Fleet, error) {
	plan.withDefaults()
	if err := plan.validate(); err != nil {
		return nil, err
	}
	tgt, err := parseTarget(plan.URL)
	if err != nil {
		return nil, err
	}
	var sources []netip.Addr
	for _, s := range plan.Sources {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", s, err)
		}
		sources = append(sources, a)
	}
	f := &Fleet{plan: plan}
	if plan.MeasureMemory {
		f.base = sampleMemory()
	}
	tokenPaths, perConn, err := allLoopPaths(&plan, tgt) // tokens.go: signed before the ramp
	if err != nil {
		return nil, err
	}
	for i := 0; i < plan.Loops; i++ {
		share := plan.Conns / plan.Loops
		if i < plan.Conns%plan.Loops {
			share++
		}
		// Each loop starts at a different source so they do not collide.
		srcs := sources
		if len(sources) > 1 {
			k := i * len(sources) / plan.Loops
			srcs = append(append([]netip.Addr(nil), sources[k:]...), sources[:k]...)
		}
		l, err := newLoop(i, &f.plan, tgt, tokenPaths[i], srcs, share)
		if err != nil {
			f.closePollers()
			return nil, err
		}
		l.perConn = perConn
		f.loops = append(f.loops, l)
	}
	if plan.MeasureMemory {
		f.fixed = sampleMemory()
	}
	f.started = time.Now()
	for _, l := range f.loops {
		go l.run()
	}
	return f, nil
}

func (f *Fleet) closePollers() {
	for _, l := range f.loops {
		l.p.close()
	}
}

// Counters sums the loops' counters (safe from any goroutine).
func (f *Fleet) Counters() Counters {
	var c Counters
	for _, l := range f.loops {
		c.Add(l.stats.counters())
	}
	return c
}

// RampDone reports whether every planned connection has been attempted and
// settled (open or failed).
func (f *Fleet) RampDone() bool {
	for _, l := range f.loops {
		if !l.rampDone.Load() {
			return false
		}
	}
	return true
}

// LiveP99 is the worst loop's p99 delivery latency in µs (status line only).
func (f *Fleet) LiveP99() int64 {
	var m int64
	for _, l := range f.loops {
		m = max(m, l.stats.latencyQuantile(99))
	}
	return m
}

// Stop asks every loop to close its connections cleanly (non-blocking).
func (f *Fleet) Stop() {
	for _, l := range f.loops {
		l.stopReq.Store(true)
	}
}

// Wait blocks until every loop has closed all its sockets.
func (f *Fleet) Wait() error {
	var errs []error
	for _, l := range f.loops {
		<-l.done
		if l.err != nil {
			errs = append(errs, l.err)
		}
	}
	return errors.Join(errs...)
}

// Histograms merges the loops' latency and connect-time histograms.
func (f *Fleet) Histograms() (latency, connect *hdrhistogram.Histogram) {
	latency, connect = newHist(), newHist()
	for _, l := range f.loops {
		l.stats.mergeHistsInto(latency, connect)
	}
	return latency, connect
}

// Downtime merges the loops' reconnect-time histograms (server close to the
// reconnect's 101).
func (f *Fleet) Downtime() *hdrhistogram.Histogram {
	h := newHist()
	for _, l := range f.loops {
		l.stats.mergeDowntimeInto(h)
	}
	return h
}

// AckHistogram merges the loops' publish-to-ack histograms (chat mode).
func (f *Fleet) AckHistogram() *hdrhistogram.Histogram {
	ack := newHist()
	for _, l := range f.loops {
		l.stats.mergeAckInto(ack)
	}
	return ack
}

// Memory measures heap and RSS growth since the fleet started, per open
// connection. Call it while connections are idle (after the ramp).
func (f *Fleet) Memory() Memory {
	now := sampleMemory()
	open := f.Counters().Open
	return Memory{
		Conns:     open,
		HeapBytes: int64(now.heap) - int64(f.base.heap),
		RSSBytes:  int64(now.rss) - int64(f.base.rss),
		FixedHeap: int64(f.fixed.heap) - int64(f.base.heap),
		FixedRSS:  int64(f.fixed.rss) - int64(f.base.rss),
		Processes: 1,
	}
}

// Memory is the load generator's own cost of holding Conns connections:
// the growth of the Go heap (in use, after GC) and of the resident set
// since before the fleet existed. Fixed* is the part present before the
// first connection (per-loop read buffers, histograms, pollers).
type Memory struct {
	Conns     int64 `json:"conns"`
	HeapBytes int64 `json:"heap_bytes"`
	RSSBytes  int64 `json:"rss_bytes"`
	FixedHeap int64 `json:"fixed_heap_bytes"`
	FixedRSS  int64 `json:"fixed_rss_bytes"`
	Processes int   `json:"processes"`
}

// Add merges another process's measurement.
func (m *Memory) Add(o Memory) {
	m.Conns += o.Conns
	m.HeapBytes += o.HeapBytes
	m.RSSBytes += o.RSSBytes
	m.FixedHeap += o.FixedHeap
	m.FixedRSS += o.FixedRSS
	m.Processes += o.Processes
}

// PerConn returns heap and RSS bytes per connection, everything included.
func (m Memory) PerConn() (heap, rss float64) {
	if m.Conns == 0 {
		return 0, 0
	}
	return float64(m.HeapBytes) / float64(m.Conns), float64(m.RSSBytes) / float64(m.Conns)
}

// MarginalPerConn leaves out the fixed per-process costs.
func (m Memory) MarginalPerConn() (heap, rss float64) {
	if m.Conns == 0 {
		return 0, 0
	}
	return float64(m.HeapBytes-m.FixedHeap) / float64(m.Conns), float64(m.RSSBytes-m.FixedRSS) / float64(m.Conns)
}

type memSample struct{ heap, rss uint64 }

func sampleMemory() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, rss: readRSS()}
}

// readRSS returns the resident set size from /proc/self/statm.
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(fields[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
