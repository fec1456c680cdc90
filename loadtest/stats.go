package loadtest

import (
	"sync"
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Counters is a point-in-time view of what some connections did. It is the
// unit that loops, processes and workers sum up (see Add), and it is what
// travels from a worker to its parent as JSON.
type Counters struct {
	Attempted      int64            `json:"attempted"`                     // connects started
	Established    int64            `json:"established"`                   // 101 received and accept key valid
	Open           int64            `json:"open"`                          // open right now
	Failed         int64            `json:"failed"`                        // connections given up: every attempt failed
	Retried        int64            `json:"retried"`                       // failed attempts that were dialed again
	FailedBy       map[string]int64 `json:"failed_by,omitempty"`           // causes of all failed attempts, retried or not
	ReconnFailedBy map[string]int64 `json:"reconnect_failed_by,omitempty"` // of those, attempts to reconnect (--resume) by cause
	ClosedByServer int64            `json:"closed_by_server"`              // open conns the server (or network) ended
	ClosedBy       map[string]int64 `json:"closed_by,omitempty"`
	ClosedClean    int64            `json:"closed_clean"`                 // our close answered by the server's close
	ClosedNoReply  int64            `json:"closed_no_reply"`              // our close answered by EOF without a close frame
	CloseTimeout   int64            `json:"close_timeout"`                // our close not answered in time
	Aborted        int64            `json:"aborted"`                      // still connecting when the run stopped
	Churned        int64            `json:"churned"`                      // closed on purpose by churn mode
	Messages       int64            `json:"messages"`                     // data messages received
	Bytes          int64            `json:"bytes"`                        // payload bytes received
	Gaps           int64            `json:"gaps"`                         // missing seq numbers seen, not announced (silent)
	Announced      int64            `json:"announced_gaps"`               // missing seq numbers the server announced (reset or conflation)
	Resets         int64            `json:"resets"`                       // {"type":"reset"} frames received
	Reconnects     int64            `json:"reconnects"`                   // server-closed connections dialed again (--resume)
	Reconnected    int64            `json:"reconnected"`                  // of those, open again
	GivenUp        int64            `json:"given_up"`                     // of those, never open again: a final failure, or still trying when the run stopped
	FirstDownNs    int64            `json:"first_down_unix_ns,omitempty"` // the first server close that was reconnected
	LastBackNs     int64            `json:"last_back_unix_ns,omitempty"`  // the last reconnect that got its 101
	Dups           int64            `json:"dups"`                         // repeated or old seq numbers seen
	Pings          int64            `json:"pings"`                        // server pings answered with pongs

	// chat mode (chat.go)
	OutOfOrder int64            `json:"out_of_order,omitempty"` // a seq received after a higher one (chat)
	PubSent    int64            `json:"pub_sent,omitempty"`
	PubSkipped int64            `json:"pub_skipped,omitempty"` // due while the connection was not open
	PubAcked   int64            `json:"pub_acked,omitempty"`
	PubErrors  int64            `json:"pub_errors,omitempty"`
	PubErrBy   map[string]int64 `json:"pub_errors_by,omitempty"`
	Expected   int64            `json:"expected,omitempty"` // deliveries owed so far: acks x members of the room
}

// Add sums o into c (maps merged key by key).
func (c *Counters) Add(o Counters) {
	c.Attempted += o.Attempted
	c.Established += o.Established
	c.Open += o.Open
	c.Failed += o.Failed
	c.Retried += o.Retried
	c.FailedBy = addMap(c.FailedBy, o.FailedBy)
	c.ReconnFailedBy = addMap(c.ReconnFailedBy, o.ReconnFailedBy)
	c.ClosedByServer += o.ClosedByServer
	c.ClosedBy = addMap(c.ClosedBy, o.ClosedBy)
	c.ClosedClean += o.ClosedClean
	c.ClosedNoReply += o.ClosedNoReply
	c.CloseTimeout += o.CloseTimeout
	c.Aborted += o.Aborted
	c.Churned += o.Churned
	c.Messages += o.Messages
	c.Bytes += o.Bytes
	c.Gaps += o.Gaps
	c.Announced += o.Announced
	c.Resets += o.Resets
	c.Reconnects += o.Reconnects
	c.Reconnected += o.Reconnected
	c.GivenUp += o.GivenUp
	if o.FirstDownNs != 0 && (c.FirstDownNs == 0 || o.FirstDownNs < c.FirstDownNs) {
		c.FirstDownNs = o.FirstDownNs
	}
	c.LastBackNs = max(c.LastBackNs, o.LastBackNs)
	c.Dups += o.Dups
	c.Pings += o.Pings
	c.OutOfOrder += o.OutOfOrder
	c.PubSent += o.PubSent
	c.PubSkipped += o.PubSkipped
	c.PubAcked += o.PubAcked
	c.PubErrors += o.PubErrors
	c.PubErrBy = addMap(c.PubErrBy, o.PubErrBy)
	c.Expected += o.Expected
}

func addMap(dst, src map[string]int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

// Histogram bounds: microseconds from 1 µs to 60 s (clamped), 3 digits.
const (
	histMin    = 1
	histMax    = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func recordClamped(h *hdrhistogram.Histogram, v int64) {
	if v < histMin {
		v = histMin
	} else if v > histMax {
		v = histMax
	}
	_ = h.RecordValue(v)
}

// loopStats is written by one loop goroutine and read by snapshotters.
// Hot counters are atomics; rare cause maps and histograms sit behind mu.
type loopStats struct {
	attempted, established, open, failed       atomic.Int64
	retried                                    atomic.Int64
	closedByServer, closedClean, closedNoReply atomic.Int64
	closeTimeout, aborted, churned             atomic.Int64
	messages, bytes, gaps, dups, pings         atomic.Int64
	announced, resets, reconnects              atomic.Int64
	reconnected, givenUp                       atomic.Int64
	firstDown, lastBack                        atomic.Int64 // unix ns; written by the loop only
	outOfOrder, expected                       atomic.Int64 // chat
	pubSent, pubSkipped, pubAcked, pubErrors   atomic.Int64 // chat

	mu       sync.Mutex
	failedBy map[string]int64
	reconnBy map[string]int64 // failed reconnect attempts by cause
	closedBy map[string]int64
	latency  *hdrhistogram.Histogram // delivery latency, µs
	connect  *hdrhistogram.Histogram // connect start to 101, µs
	downtime *hdrhistogram.Histogram // reconnects: server close to the new 101, µs
	ack      *hdrhistogram.Histogram // chat: publish to its ack, µs
	pubErrBy map[string]int64        // chat: publish errors by code
}

// newLoopStats makes the loop's stats; the delivery histogram (~150 KB)
// only exists when deliveries are tracked.
func newLoopStats(trackLatency bool) *loopStats {
	s := &loopStats{
		failedBy: map[string]int64{},
		reconnBy: map[string]int64{},
		closedBy: map[string]int64{},
		connect:  newHist(),
		downtime: newHist(),
		pubErrBy: map[string]int64{},
	}
	if trackLatency {
		s.latency = newHist()
	}
	return s
}

// fail records a failed attempt; retry says it will be dialed again,
// reconnecting that it was a reconnect's.
func (s *loopStats) fail(cause string, retry, reconnecting bool) {
	if retry {
		s.retried.Add(1)
	} else {
		s.failed.Add(1)
	}
	s.mu.Lock()
	s.failedBy[cause]++
	if reconnecting {
		s.reconnBy[cause]++
	}
	s.mu.Unlock()
}

func (s *loopStats) closedByServerAs(cause string) {
	s.closedByServer.Add(1)
	s.mu.Lock()
	s.closedBy[cause]++
	s.mu.Unlock()
}

func (s *loopStats) recordLatency(us int64) {
	s.mu.Lock()
	recordClamped(s.latency, us)
	s.mu.Unlock()
}

func (s *loopStats) recordAck(us int64) {
	s.mu.Lock()
	if s.ack != nil {
		recordClamped(s.ack, us)
	}
	s.mu.Unlock()
}

func (s *loopStats) pubError(code string) {
	s.pubErrors.Add(1)
	s.mu.Lock()
	s.pubErrBy[code]++
	s.mu.Unlock()
}

func (s *loopStats) recordConnect(us int64) {
	s.mu.Lock()
	recordClamped(s.connect, us)
	s.mu.Unlock()
}

func (s *loopStats) counters() Counters {
	c := Counters{
		Attempted:      s.attempted.Load(),
		Established:    s.established.Load(),
		Open:           s.open.Load(),
		Failed:         s.failed.Load(),
		Retried:        s.retried.Load(),
		ClosedByServer: s.closedByServer.Load(),
		ClosedClean:    s.closedClean.Load(),
		ClosedNoReply:  s.closedNoReply.Load(),
		CloseTimeout:   s.closeTimeout.Load(),
		Aborted:        s.aborted.Load(),
		Churned:        s.churned.Load(),
		Messages:       s.messages.Load(),
		Bytes:          s.bytes.Load(),
		Gaps:           s.gaps.Load(),
		Announced:      s.announced.Load(),
		Resets:         s.resets.Load(),
		Reconnects:     s.reconnects.Load(),
		Reconnected:    s.reconnected.Load(),
		GivenUp:        s.givenUp.Load(),
		FirstDownNs:    s.firstDown.Load(),
		LastBackNs:     s.lastBack.Load(),
		Dups:           s.dups.Load(),
		Pings:          s.pings.Load(),
		OutOfOrder:     s.outOfOrder.Load(),
		PubSent:        s.pubSent.Load(),
		PubSkipped:     s.pubSkipped.Load(),
		PubAcked:       s.pubAcked.Load(),
		PubErrors:      s.pubErrors.Load(),
		Expected:       s.expected.Load(),
	}
	s.mu.Lock()
	c.FailedBy = addMap(nil, s.failedBy)
	c.ReconnFailedBy = addMap(nil, s.reconnBy)
	c.ClosedBy = addMap(nil, s.closedBy)
	c.PubErrBy = addMap(nil, s.pubErrBy)
	s.mu.Unlock()
	return c
}

// recordBack counts a reconnect that is open again, down for (now-down) ns.
func (s *loopStats) recordBack(down, now int64) {
	s.reconnected.Add(1)
	if f := s.firstDown.Load(); f == 0 || down < f {
		s.firstDown.Store(down)
	}
	s.lastBack.Store(max(s.lastBack.Load(), now))
	s.mu.Lock()
	recordClamped(s.downtime, (now-down)/1000)
	s.mu.Unlock()
}

// mergeDowntimeInto adds this loop's reconnect-time histogram into dst.
func (s *loopStats) mergeDowntimeInto(dst *hdrhistogram.Histogram) {
	s.mu.Lock()
	dst.Merge(s.downtime)
	s.mu.Unlock()
}

// mergeHistsInto adds this loop's histograms into dst latency/connect.
func (s *loopStats) mergeHistsInto(latency, connect *hdrhistogram.Histogram) {
	s.mu.Lock()
	if s.latency != nil {
		latency.Merge(s.latency)
	}
	connect.Merge(s.connect)
	s.mu.Unlock()
}

// mergeAckInto adds this loop's publish-to-ack histogram into dst (chat).
func (s *loopStats) mergeAckInto(dst *hdrhistogram.Histogram) {
	s.mu.Lock()
	if s.ack != nil {
		dst.Merge(s.ack)
	}
	s.mu.Unlock()
}

// latencyQuantile is a cheap live figure for the status line.
func (s *loopStats) latencyQuantile(q float64) int64 {
	if s.latency == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency.ValueAtQuantile(q)
}
