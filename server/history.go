package server

import (
	"strconv"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
)

// epochMaker names topic epochs: node start time plus a counter, so a topic
// recreated here, or on a restarted node, never reuses an epoch.
type epochMaker struct {
	base  string
	n     uint64 // guarded by hub.mu
	fixed string // Config.Epoch: the same epoch for every topic
}

func newEpochMaker() epochMaker {
	return epochMaker{base: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

func (e *epochMaker) next() string {
	if e.fixed != "" {
		return e.fixed
	}
	e.n++
	return e.base + "-" + strconv.FormatUint(e.n, 36)
}

// history is a ring of a topic's most recent frames, oldest first, each
// holding one ref. Guarded by hub.mu.
type history struct {
	ring []*sharedFrame
	head int // index of the oldest entry
	n    int
}

func (h *history) at(i int) *sharedFrame { return h.ring[(h.head+i)%len(h.ring)] }

// push appends f (whose ref the caller took), evicting the oldest when full.
func (h *history) push(f *sharedFrame, capacity int) {
	if h.ring == nil {
		h.ring = make([]*sharedFrame, capacity)
	}
	if h.n == len(h.ring) {
		h.ring[h.head].release()
		h.ring[h.head] = f
		h.head = (h.head + 1) % len(h.ring)
		return
	}
	h.ring[(h.head+h.n)%len(h.ring)] = f
	h.n++
}

// take empties the ring and hands its entries, oldest first, to the caller
// (with their refs).
func (h *history) take() []*sharedFrame {
	out := make([]*sharedFrame, 0, h.n)
	for h.n > 0 {
		out = append(out, h.ring[h.head])
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.n--
	}
	return out
}

// trim drops entries published before cutoff (unix ns).
func (h *history) trim(cutoff int64) {
	for h.n > 0 && h.ring[h.head].at < cutoff {
		h.ring[h.head].release()
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.n--
	}
}

// keep records f as the topic's last value and in its history. Caller holds hub.mu.
func (h *hub) keep(t *topic, f *sharedFrame) {
	if t.lastValue {
		if t.last != nil {
			t.last.release()
		}
		f.refs.Add(1)
		t.last = f
	}
	if t.ns.History > 0 {
		f.refs.Add(1)
		t.history.push(f, t.ns.History)
		t.history.trim(f.at - int64(t.ns.HistoryTTL))
		h.aging.add(t)
	}
}

// agingList lists the topics that hold history. Publishes and resumes trim
// expired entries of their own topic only; expireSome visits the rest, so an
// idle topic's frames are released after --history-ttl too. Guarded by hub.mu.
type agingList struct {
	topics []*topic
	next   int // where the next expireSome call starts
}

func (a *agingList) add(t *topic) {
	if t.agingPos == 0 {
		a.topics = append(a.topics, t)
		t.agingPos = len(a.topics)
	}
}

func (a *agingList) remove(t *topic) {
	i, last := t.agingPos-1, len(a.topics)-1
	a.topics[i] = a.topics[last]
	a.topics[i].agingPos = i + 1
	a.topics[last] = nil
	a.topics = a.topics[:last]
	t.agingPos = 0
}

// expireSome drops expired history entries of up to k topics, continuing
// where the previous call stopped; it holds hub.mu for k topics at most.
func (h *hub) expireSome(k int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := &h.aging
	if len(a.topics) == 0 {
		return
	}
	now := time.Now().UnixNano()
	for k = min(k, len(a.topics)); k > 0; k-- {
		if a.next >= len(a.topics) {
			a.next = 0
		}
		t := a.topics[a.next]
		if t.history.trim(now - int64(t.ns.HistoryTTL)); t.history.n == 0 {
			a.remove(t) // the last entry moves into a.next: visit it next
		} else {
			a.next++
		}
	}
}

// resume is where a subscriber asks to continue: after seq since of epoch.
type resume struct {
	since uint64
	has   bool
	epoch string // "" = trust since without an epoch check
	delta bool   // the subscriber asks for Fossil deltas (granted where DeltaConfig allows)
}

// catchUp appends to out what a new subscriber of t receives before live
// frames, and returns the seq after which live frames are delivered. It runs
// under hub.mu together with the subscriber's registration, so nothing is
// missed or sent twice between the catch-up and the live stream.
//   - no resume point: the last value as a snapshot (last-value topics);
//   - resume point still held: the missed messages since+1..seq (from
//     history, or the last value when it is the only one missed);
//   - otherwise: {"type":"reset"}, then the current value as a snapshot
//     (from = its seq) or, without a last value, whatever history holds
//     (from = the oldest held seq), or nothing (from = next seq).
//
// Replayed history is limited to budget bytes (what the connection may have
// pending): a longer replay counts as not held, and a reset carries only the
// newest messages that fit.
func (h *hub) catchUp(l *loop, t *topic, r resume, budget int, out []byte) ([]byte, uint64) {
	now := t.seq
	if !r.has {
		if t.last != nil {
			out = appendSnapshot(out, t.last)
			l.stats.snapshots.Add(1)
		}
		return out, now
	}
	hist := &t.history
	hist.trim(time.Now().UnixNano() - int64(t.ns.HistoryTTL))
	fit := hist.newestWithin(budget) // hist.at(fit..n-1) fit in budget
	sameEpoch := r.epoch == "" || r.epoch == t.epoch
	if sameEpoch && r.since == now {
		return out, now
	}
	if sameEpoch && r.since < now && fit < hist.n && r.since+1 >= hist.at(fit).seq {
		for i := fit; i < hist.n; i++ {
			if f := hist.at(i); f.seq > r.since {
				out = append(out, f.b...)
			}
		}
		l.stats.replays.Add(1)
		return out, now
	}
	// The last value is a history of one (--history 0, or older than the TTL):
	// a client that missed only it gets it as a normal delivery, not a reset.
	if sameEpoch && t.last != nil && r.since+1 == t.last.seq {
		out = append(out, t.last.b...)
		l.stats.replays.Add(1)
		return out, now
	}
	l.stats.resets.Add(1)
	switch {
	case t.last != nil:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, t.last.seq, t.epoch) })
		out = appendSnapshot(out, t.last)
	case fit < hist.n:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, hist.at(fit).seq, t.epoch) })
		for i := fit; i < hist.n; i++ {
			out = append(out, hist.at(i).b...)
		}
	default:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, now+1, t.epoch) })
	}
	return out, now
}

// newestWithin is the index from which the newest entries total at most
// budget bytes (n: not even the newest fits).
func (h *history) newestWithin(budget int) int {
	i := h.n
	for i > 0 && len(h.at(i-1).b) <= budget {
		budget -= len(h.at(i - 1).b)
		i--
	}
	return i
}

// appendSnapshot re-encodes f's envelope with "snapshot":true.
func appendSnapshot(out []byte, f *sharedFrame) []byte {
	env := f.envelope()
	body := env[:len(env)-1]
	out = codec.AppendHeader(out, codec.OpText, true, len(body)+len(`,"snapshot":true}`))
	out = append(out, body...)
	return wire.AppendSnapshotTail(out)
}

// appendConflated re-encodes f's envelope with "conflated":true and the
// range of seqs it replaced.
func appendConflated(out []byte, f *sharedFrame, first, last uint64) []byte {
	env := f.envelope()
	body := env[:len(env)-1]
	tail := wire.AppendConflatedTail(nil, first, last) // rare path: once per recovered slow conn and topic
	out = codec.AppendHeader(out, codec.OpText, true, len(body)+len(tail))
	out = append(out, body...)
	return append(out, tail...)
}
