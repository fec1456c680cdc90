package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/metrics"
	"github.com/fanwire/fanwire/server/wire"
)

// Close reasons, stored in conn.closedBy (the indexes of metrics.Reasons).
// reasonDropped is the zero value: a connection that goes away without the
// server choosing why was dropped by the client or the network.
const (
	reasonDropped uint8 = iota
	reasonNormal
	reasonIdle
	reasonSlow
	reasonProtocol
	reasonTooLarge
	reasonTokenExpired
	reasonLimit
	reasonShutdown
	reasonHandshakeFailed
	reasonHandshakeTimeout
	reasonHTTP
	reasonDisconnected
	numReasons
)

// connUpgraded is the high bit of conn.closedBy: the connection got its 101
// (and counts in the open gauge until it is gone).
const connUpgraded uint8 = 0x80

var _ [len(metrics.Reasons) - int(numReasons)]struct{} // the two lists agree
var _ [int(numReasons) - len(metrics.Reasons)]struct{}

// numKinds is the number of transports (conn.kind, stream.go).
const numKinds = int(kindPoll) + 1

var _ [len(metrics.Transports) - numKinds]struct{} // metrics.Transports follows conn.kind
var _ [numKinds - len(metrics.Transports)]struct{}

// loopMetrics are one loop's counters for /metrics, beyond loopStats. None is
// touched per delivery: bytes is added once per drain pass, the rest once
// per connection event.
type loopMetrics struct {
	accepted  atomic.Uint64
	upgrades  atomic.Uint64
	subs      atomic.Int64 // subscriptions in effect
	slowNow   atomic.Int64 // connections in slow mode
	bytes     atomic.Uint64
	closed    [numReasons]atomic.Uint64
	codes     [len(metrics.CloseCodes) + 1]atomic.Uint64
	hsFail    [len(metrics.HTTPStatuses) + 1]atomic.Uint64
	handshake metrics.Histogram
	// ipRejectsWithConn: --max-conns-per-ip refusals after a PROXY header,
	// whose close OnClose counts (the others happen before a conn exists).
	ipRejectsWithConn atomic.Uint64

	open      [numKinds]atomic.Int64 // upgraded and not yet gone (includes closing), by conn.kind
	clientPub atomic.Uint64          // client publishes accepted (publish.go)

	delivered [numKinds]atomic.Uint64 // live deliveries by conn.kind, added once per drain pass
}

// nodeMetrics are the node's own counters for /metrics.
type nodeMetrics struct {
	publishedLocal atomic.Uint64 // Node.Publish calls that succeeded
	publishedBus   atomic.Uint64 // Node.Deliver calls that were fanned out
	api            api.PublishMetrics
	addr           string       // --metrics-listen, bound (metrics_config.go)
	srv            *http.Server // its server
}

// setReason records why c is being closed, unless a reason is set already.
func (c *conn) setReason(r uint8) {
	if c.closedBy&^connUpgraded == reasonDropped {
		c.closedBy |= r
	}
}

// reasonForCode is the close reason of a server close with code when the
// caller did not name one.
func reasonForCode(code codec.CloseCode) uint8 {
	switch code {
	case codec.CloseGoingAway:
		return reasonShutdown
	case codec.CloseMessageTooBig:
		return reasonTooLarge
	case codec.ClosePolicyViolation:
		return reasonLimit
	case wire.CloseTokenExpired:
		return reasonTokenExpired
	case wire.CloseDisconnected:
		return reasonDisconnected
	}
	return reasonProtocol
}

// countCloseCode counts a close frame the server sends.
func (m *loopMetrics) countCloseCode(code codec.CloseCode) {
	m.codes[metrics.CodeIndex(int(code))].Add(1)
}

// countHandshakeFailure counts an upgrade refused with an HTTP status.
func (m *loopMetrics) countHandshakeFailure(status int) {
	m.hsFail[metrics.StatusIndex(status)].Add(1)
}

// upgraded counts a 101 and the accept-to-101 time; lastRead is still the
// accept time while the handshake runs.
func (l *loop) upgraded(c *conn) {
	c.closedBy |= connUpgraded
	l.met.upgrades.Add(1)
	l.met.open[c.kind].Add(1) // c.kind is set before the upgrade and never changes
	l.met.handshake.Observe(time.Duration(l.now-c.lastRead) * time.Millisecond)
}

// countDeliveries adds a drain pass's n live deliveries, sse and poll of
// them to streams, by transport (an atomic only for a transport that had any).
func (m *loopMetrics) countDeliveries(n, sse, poll uint64) {
	if ws := n - sse - poll; ws > 0 {
		m.delivered[kindWS].Add(ws)
	}
	if sse > 0 {
		m.delivered[kindSSE].Add(sse)
	}
	if poll > 0 {
		m.delivered[kindPoll].Add(poll)
	}
}

// transportStats sums the loops' open connections and live deliveries by transport.
func (n *Node) transportStats() (open map[string]int64, delivered map[string]uint64) {
	open, delivered = map[string]int64{}, map[string]uint64{}
	for _, l := range n.eng.allLoops() {
		for i, t := range metrics.Transports {
			open[t] += l.met.open[i].Load()
			delivered[t] += l.met.delivered[i].Load()
		}
	}
	return open, delivered
}

// countClosed runs once per connection, from OnClose.
func (l *loop) countClosed(c *conn) {
	l.met.closed[c.closedBy&^connUpgraded].Add(1)
	if c.closedBy&connUpgraded != 0 {
		l.met.open[c.kind].Add(-1)
	}
}

// Metrics is a snapshot of every counter /metrics exports. Any goroutine.
func (n *Node) Metrics() metrics.Snapshot {
	st := n.Stats()
	s := metrics.Snapshot{
		Conns: st.Conns, Topics: st.Topics, Accepted: n.rejected.Load(),
		PublishedLocal: n.met.publishedLocal.Load(), PublishedBus: n.met.publishedBus.Load(),
		PublishedAPI: n.met.api.Published.Load(), PublishSeconds: n.met.api.Latency.Snapshot(),
		Delivered: st.Delivered, SlowMode: st.SlowMode, Conflated: st.Conflated, SlowClosed: st.SlowClosed,
		Snapshots: st.Snapshots, Replays: st.Replays, Resets: st.Resets,
		Closed: map[string]uint64{}, CloseCodes: map[string]uint64{}, HandshakeFailures: map[string]uint64{},
		OpenByTransport: map[string]int64{}, HandshakeSeconds: (&metrics.Histogram{}).Snapshot(),
		DeliveredByTransport: map[string]uint64{},
	}
	var closed [numReasons]uint64
	var ipRejectsWithConn uint64
	var codes [len(metrics.CloseCodes) + 1]uint64
	var hsFail [len(metrics.HTTPStatuses) + 1]uint64
	for _, l := range n.eng.allLoops() {
		m := &l.met
		s.Accepted += m.accepted.Load()
		s.Upgrades += m.upgrades.Load()
		for i, t := range metrics.Transports {
			v := m.open[i].Load()
			s.Open += v
			s.OpenByTransport[t] += v
			s.DeliveredByTransport[t] += m.delivered[i].Load()
		}
		s.PublishedClient += m.clientPub.Load()
		s.Subscriptions += m.subs.Load()
		s.SlowNow += m.slowNow.Load()
		s.DeliveredBytes += m.bytes.Load()
		for i := range closed {
			closed[i] += m.closed[i].Load()
		}
		for i := range codes {
			codes[i] += m.codes[i].Load()
		}
		for i := range hsFail {
			hsFail[i] += m.hsFail[i].Load()
		}
		s.HandshakeSeconds.Add(m.handshake.Snapshot())
		ipRejectsWithConn += m.ipRejectsWithConn.Load()
	}
	// Refused at accept, before a conn exists (limits.go): --max-conns and
	// --max-conn-rate answer 503, --max-conns-per-ip 429. The handshake
	// timeout's 408 is written by the sweep (its close reason is counted).
	closed[reasonLimit] += st.Rejected + st.RejectedRate + st.RejectedIP - min(st.RejectedIP, ipRejectsWithConn)
	hsFail[metrics.StatusIndex(503)] += st.Rejected + st.RejectedRate
	hsFail[metrics.StatusIndex(429)] += st.RejectedIP
	hsFail[metrics.StatusIndex(408)] += st.HandshakeTimeouts
	for i, r := range metrics.Reasons {
		s.Closed[r] = closed[i]
	}
	for i, c := range metrics.CloseCodes {
		s.CloseCodes[strconv.Itoa(c)] = codes[i]
	}
	s.CloseCodes["other"] = codes[len(metrics.CloseCodes)]
	for i, c := range metrics.HTTPStatuses {
		s.HandshakeFailures[strconv.Itoa(c)] = hsFail[i]
	}
	s.HandshakeFailures["other"] = hsFail[len(metrics.HTTPStatuses)]
	return s
}

// Topics lists every topic with its subscribers, seq and epoch (unsorted;
// always complete). It holds the hub lock for one pass over the topics.
func (n *Node) Topics() ([]api.TopicInfo, bool) {
	h := n.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]api.TopicInfo, 0, len(h.topics))
	for _, t := range h.topics {
		out = append(out, topicInfo(t))
	}
	return out, true
}

// Topic describes one topic, with its newest message and history length.
func (n *Node) Topic(name string) (api.TopicDetail, bool) {
	h := n.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		return api.TopicDetail{}, false
	}
	d := api.TopicDetail{TopicInfo: topicInfo(t), History: t.history.n, KeepsLastValue: t.lastValue}
	newest := t.last
	if t.history.n > 0 {
		if f := t.history.at(t.history.n - 1); newest == nil || f.seq > newest.seq {
			newest = f
		}
	}
	if newest != nil {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(newest.envelope(), &env) == nil {
			d.Last = slices.Clone(env.Data)
			d.LastSeq = newest.seq
		}
	}
	return d, true
}

// topicInfo reads t. Caller holds hub.mu.
func topicInfo(t *topic) api.TopicInfo {
	subs := 0
	for _, lt := range t.loops {
		subs += int(lt.count.Load())
	}
	return api.TopicInfo{Topic: t.name, Subscribers: subs, Seq: t.seq, Epoch: t.epoch}
}

// operatorAPI is what the control API needs for /metrics, /topics and /admin.
func (n *Node) operatorAPI() api.Operator {
	gather := func() metrics.Gathered { return metrics.Gathered{Nodes: []metrics.Node{{Snapshot: n.Metrics()}}} }
	return api.Operator{
		Metrics: metrics.Handler(metrics.NewCollector(gather, false)),
		Publish: &n.met.api,
		Topics:  n,
		AdminData: func() any {
			topics, _ := n.Topics()
			return api.AdminFromGathered(gather(), "single", topics)
		},
	}
}
