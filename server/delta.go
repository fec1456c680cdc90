package server

import (
	"github.com/centrifugal/fdelta"
	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
)

// Fossil delta deliveries. A subscriber that asked for deltas (and whose
// topic allows them, DeltaConfig) receives each message as a Fossil delta
// against the topic's previous message, once it holds that message: the
// first delivery after subscribing, and after any break in its live stream
// (conflation), is the full message. The delta is computed once per
// publish, by the first loop that needs it, and shared like every frame;
// the node keeps one previous message per topic, never per connection.

// chainDelta records f as the topic's newest message and links it to the
// previous one, its delta base, if that was seq-1 (after a gap in the seqs
// a client could not tell which base a delta is against, so the message
// goes out full). f holds the base only until every loop has drained f
// (drained): since each loop drains a topic's frames in order, the chain
// never grows beyond the frames still in flight. Caller holds hub.mu.
func (h *hub) chainDelta(t *topic, f *sharedFrame) {
	if p := t.prev; p != nil {
		if p.seq+1 == f.seq && f.live.Load() > 0 && p.dataLen <= maxDeltaMessage && f.dataLen <= maxDeltaMessage {
			f.prev = p // takes over the topic's ref
		} else {
			p.release()
		}
	}
	f.refs.Add(1)
	t.prev = f
}

// maxDeltaMessage bounds the messages deltas are computed for: Fossil's
// encoder costs more the larger (and less structured) the base, and a
// publish may be up to --max-body.
const maxDeltaMessage = 64 << 10

// drained is called by each loop once it has written f; the last one
// drops f's delta base.
func (f *sharedFrame) drained() {
	if f.live.Add(-1) == 0 && f.prev != nil {
		p := f.prev
		f.prev = nil
		p.release()
	}
}

// data is the message as published: the envelope minus its wrapping.
func (f *sharedFrame) data() []byte {
	end := len(f.b) - 1
	return f.b[end-int(f.dataLen) : end]
}

func (f *sharedFrame) resetDelta() {
	if f.prev != nil { // never drained (the engine stopped)
		f.prev.release()
		f.prev = nil
	}
	f.delta.reset()
	f.deltaZ.reset()
}

// deliver is what subscriber s of lt receives of f: the delta frame when s
// asked for deltas, holds f's base and the delta is smaller, else the full
// frame; compressed either way when the connection negotiated it and the
// message is worth it. It advances s's chain: s now holds f.
func (l *loop) deliver(s *subscriber, lt *loopTopic, f *sharedFrame) []byte {
	if !s.delta || f.seq == 0 {
		// An ephemeral message (no seq) is sent whole and leaves the chain
		// as it was: the next delta is still against seq-1.
		return l.frameFor(s.c, f)
	}
	chained := s.chained
	s.chained = true
	if !chained || f.prev == nil {
		return l.frameFor(s.c, f)
	}
	d, built := f.delta.load()
	if !built {
		d = f.delta.build(func(dst []byte) []byte { return l.encodeDelta(dst, lt.topic.name, f) })
	}
	if len(d) == 0 {
		return l.frameFor(s.c, f)
	}
	window := s.c.deflateWindow()
	if window == 0 {
		return d
	}
	env := len(d) - headerLen(d)
	if env < l.compressMin || env > 1<<window {
		return d
	}
	z, built := f.deltaZ.load()
	if !built {
		z = f.deltaZ.build(func(dst []byte) []byte { return l.compressEncoded(dst, d) })
	}
	if len(z) == 0 {
		return d
	}
	return z
}

// encodeDelta builds f's delta frame into dst, or returns dst empty when the
// delta frame would not be smaller than the full one.
func (l *loop) encodeDelta(dst []byte, topic string, f *sharedFrame) []byte {
	l.deltaBuf = fdelta.AppendCreate(l.deltaBuf[:0], f.prev.data(), f.data())
	size := wire.DeltaEnvelopeSize(topic, f.seq, l.deltaBuf)
	if size >= len(f.b)-int(f.hdr) {
		return dst[:0]
	}
	dst = codec.AppendHeader(dst, codec.OpText, true, size)
	dst = wire.AppendDeltaEnvelope(dst, topic, f.seq, l.deltaBuf)
	if cap(l.deltaBuf) > maxPooledFrame {
		l.deltaBuf = nil
	}
	return dst
}

// compressEncoded is compressFrame for an encoded unmasked frame other than
// a sharedFrame's plain one (the delta frame).
func (l *loop) compressEncoded(dst, frame []byte) []byte {
	dst = l.compressor().AppendFrame(dst, codec.OpText, frame[headerLen(frame):])
	if len(dst) >= len(frame) {
		return dst[:0]
	}
	return dst
}

// headerLen is the header length of an unmasked frame we encoded.
func headerLen(frame []byte) int {
	switch frame[1] & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// deltaAllowed reports whether subscribers of t may receive deltas: its
// namespace says delta = true, or --delta matches it.
func (l *loop) deltaAllowed(t *topic) bool {
	return (t.ns != nil && t.ns.Delta) || l.node.cfg.Delta.allowed(t.name)
}

// setDelta switches s's deltas on or off; the next delivery is full either way.
func (l *loop) setDelta(lt *loopTopic, s *subscriber, on bool) {
	if s.delta == on {
		return
	}
	s.delta, s.chained = on, false
	if on {
		lt.topic.deltaSubs.Add(1)
	} else {
		lt.topic.deltaSubs.Add(-1)
	}
}

// deltaTopics are the topics of a subscribe op that receive deltas.
func (l *loop) deltaTopics(c *conn, topics []string) []string {
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		if lt := l.topics[t]; lt != nil {
			for _, ref := range c.allSubs() {
				if ref.lt == lt && lt.subs[ref.pos].delta {
					out = append(out, t)
				}
			}
		}
	}
	return out
}
