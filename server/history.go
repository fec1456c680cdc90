package server

import (
	"strconv"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
)

// retention is what topics keep for late and returning subscribers.
type retention struct {
	lastValuePatterns string        // comma-separated path.Match patterns
	history           int           // messages per topic (0: none)
	ttl               time.Duration // age limit of history entries
}

func (r retention) lastValue(topic string) bool { return matchesAny(r.lastValuePatterns, topic) }

// epochMaker names topic epochs: node start time plus a counter, so a topic
// recreated here, or on a restarted node, never reuses an epoch.
type epochMaker struct {
	base string
	n    uint64 // guarded by hub.mu
}

func newEpochMaker() epochMaker {
	return epochMaker{base: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

func (e *epochMaker) next() string {
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
	if h.retain.history > 0 {
		f.refs.Add(1)
		t.history.push(f, h.retain.history)
		t.history.trim(f.at - int64(h.retain.ttl))
	}
}

// resume is where a subscriber asks to continue: after seq since of epoch.
type resume struct {
	since uint64
	has   bool
	epoch string // "" = trust since without an epoch check
}

// catchUp appends to out what a new subscriber of t receives before live
// frames, and returns the seq after which live frames are delivered. It runs
// under hub.mu together with the subscriber's registration, so nothing is
// missed or sent twice between the catch-up and the live stream.
//   - no resume point: the last value as a snapshot (last-value topics);
//   - resume point still held: the missed messages since+1..seq;
//   - otherwise: {"type":"reset"}, then the current value as a snapshot
//     (from = its seq) or, without a last value, whatever history holds
//     (from = the oldest held seq), or nothing (from = next seq).
func (h *hub) catchUp(l *loop, t *topic, r resume, out []byte) ([]byte, uint64) {
	now := t.seq
	if !r.has {
		if t.last != nil {
			out = appendSnapshot(out, t.last)
			l.stats.snapshots.Add(1)
		}
		return out, now
	}
	t.history.trim(time.Now().UnixNano() - int64(h.retain.ttl))
	sameEpoch := r.epoch == "" || r.epoch == t.epoch
	if sameEpoch && r.since == now {
		return out, now
	}
	if sameEpoch && r.since < now && t.history.n > 0 && r.since+1 >= t.history.at(0).seq {
		for i := 0; i < t.history.n; i++ {
			if f := t.history.at(i); f.seq > r.since {
				out = append(out, f.b...)
			}
		}
		l.stats.replays.Add(1)
		return out, now
	}
	l.stats.resets.Add(1)
	switch {
	case t.last != nil:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, t.last.seq, t.epoch) })
		out = appendSnapshot(out, t.last)
	case t.history.n > 0:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, t.history.at(0).seq, t.epoch) })
		for i := 0; i < t.history.n; i++ {
			out = append(out, t.history.at(i).b...)
		}
	default:
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendReset(b, t.name, now+1, t.epoch) })
	}
	return out, now
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
