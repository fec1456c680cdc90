package server

import (
	"strconv"

	"github.com/fanwire/fanwire/codec"
)

// slowState is borrowed while a connection is behind (more than MaxPending
// unsent bytes). Deliveries then wait here, one per topic: a newer message of
// a last-value topic replaces the older one (conflation), and the client is
// told which seqs it skipped. A topic without last value cannot be conflated:
// the client is closed with 1008 rather than silently missing messages.
type slowState struct {
	since   uint32 // loop clock when the connection fell behind
	pending []pendingFrame
}

type pendingFrame struct {
	lt          *loopTopic
	f           *sharedFrame // newest message, one ref held
	first, last uint64       // seqs replaced by f (0, 0: none)
}

func (l *loop) enterSlow(c *conn) {
	st, _ := l.slowStates.Get().(*slowState)
	if st == nil {
		st = new(slowState)
	}
	st.since = l.now
	if l.slow == nil {
		l.slow = make(map[*conn]*slowState)
	}
	l.slow[c] = st
	c.state |= stateSlow
	l.slowList = append(l.slowList, c)
	l.stats.slowMode.Add(1)
	l.met.slowNow.Add(1)
}

// conflate keeps f as c's pending message for its topic.
func (l *loop) conflate(c *conn, lt *loopTopic, f *sharedFrame) {
	if f.seq == 0 {
		return // ephemeral: a slow consumer drops it first, it is never replayed
	}
	if f.reset { // a conflated delivery cannot say where the gap was
		l.closeSlow(c, "slow consumer: fell behind on "+lt.topic.name+" across a gap in its stream")
		return
	}
	if !lt.topic.lastValue {
		l.closeSlow(c, "slow consumer: fell behind on "+lt.topic.name+", which cannot be conflated")
		return
	}
	f.refs.Add(1)
	st := l.slow[c]
	for i := range st.pending {
		p := &st.pending[i]
		if p.lt != lt {
			continue
		}
		if p.first == 0 {
			p.first = p.f.seq
		}
		p.last = p.f.seq
		p.f.release()
		p.f = f
		l.stats.conflated.Add(1)
		return
	}
	st.pending = append(st.pending, pendingFrame{lt: lt, f: f})
}

// checkSlow runs before each drain pass and on each tick: a slow connection
// whose backlog has halved gets its pending messages and leaves slow mode;
// one still behind after SlowGrace is closed with 1008.
func (l *loop) checkSlow() {
	if len(l.slowList) == 0 {
		return
	}
	grace := millis(l.node.cfg.SlowGrace)
	low := l.node.cfg.MaxPending / 2
	for i := len(l.slowList) - 1; i >= 0; i-- {
		if i >= len(l.slowList) {
			continue
		}
		c := l.slowList[i]
		switch {
		case c.gc.OutboundBuffered() <= low:
			l.flushSlow(c)
		case l.now-l.slow[c].since >= grace:
			l.closeSlow(c, "slow consumer: behind for more than "+strconv.Itoa(int(grace/1000))+"s")
		}
	}
}

// flushSlow writes c's pending messages, conflated ones marked with the
// seqs they replaced, and ends slow mode.
func (l *loop) flushSlow(c *conn) {
	st := l.slow[c]
	out := l.catchUp[:0]
	for _, p := range st.pending {
		if p.first == 0 {
			out = append(out, p.f.b...)
		} else {
			out = appendConflated(out, p.f, p.first, p.last)
		}
	}
	l.catchUp = out[:0]
	l.leaveSlow(c)
	if len(out) > 0 {
		c.write(out)
	}
}

func (l *loop) closeSlow(c *conn, reason string) {
	l.stats.slowClosed.Add(1)
	c.setReason(reasonSlow)
	c.fail(codec.ClosePolicyViolation, reason) // fail ends slow mode
}

// leaveSlow returns c's slow state, if any, and drops it from slowList.
func (l *loop) leaveSlow(c *conn) {
	if c.state&stateSlow == 0 {
		return
	}
	st := l.slow[c]
	delete(l.slow, c)
	c.state &^= stateSlow
	l.met.slowNow.Add(-1)
	for i := range st.pending {
		st.pending[i].f.release()
		st.pending[i] = pendingFrame{}
	}
	st.pending = st.pending[:0]
	l.slowStates.Put(st)
	for i, x := range l.slowList {
		if x == c {
			last := len(l.slowList) - 1
			l.slowList[i] = l.slowList[last]
			l.slowList[last] = nil
			l.slowList = l.slowList[:last]
			break
		}
	}
}

// dropPending forgets c's waiting message for lt when c unsubscribes from it,
// so a later subscription to the same topic never gets a stale frame after
// its own snapshot or replay.
func (l *loop) dropPending(c *conn, lt *loopTopic) {
	st := l.slow[c]
	for i := range st.pending {
		if st.pending[i].lt != lt {
			continue
		}
		st.pending[i].f.release()
		last := len(st.pending) - 1
		st.pending[i] = st.pending[last]
		st.pending[last] = pendingFrame{}
		st.pending = st.pending[:last]
		return
	}
}
