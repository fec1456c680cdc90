package metrics

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds (seconds) of every fanwire latency histogram.
var Bounds = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Histogram is a lock-free, allocation-free latency histogram with the fixed
// Bounds: Observe is a few atomic adds, so an event loop may call it once
// per handshake. The zero value is ready.
type Histogram struct {
	counts [len(Bounds) + 1]atomic.Uint64 // the last is +Inf
	sumNs  atomic.Uint64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	i := 0
	for i < len(Bounds) && s > Bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

// HistogramSnapshot is a Histogram's state: Counts per bucket (not
// cumulative, the last one +Inf) and the sum in seconds.
type HistogramSnapshot struct {
	Counts []uint64 `json:"counts"`
	Sum    float64  `json:"sum"`
}

// Snapshot reads h.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return s
}

// Add sums o into s (several loops' or workers' histograms).
func (s *HistogramSnapshot) Add(o HistogramSnapshot) {
	if len(s.Counts) < len(o.Counts) {
		s.Counts = append(s.Counts, make([]uint64, len(o.Counts)-len(s.Counts))...)
	}
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	s.Sum += o.Sum
}

// cumulative turns the bucket counts into Prometheus' cumulative form.
func (s HistogramSnapshot) cumulative() (count uint64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(Bounds))
	for i, c := range s.Counts {
		count += c
		if i < len(Bounds) {
			buckets[Bounds[i]] = count
		}
	}
	return count, buckets
}
