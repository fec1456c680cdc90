package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// loop is fanwire's state for one gnet event loop. Everything below mu's
// fields is owned by the loop goroutine and touched nowhere else.
type loop struct {
	node *Node
	el   gnet.EventLoop // nil in benchmarks with fake connections

	mu        sync.Mutex
	queue     []delivery // frames waiting for this loop; guarded by mu
	scheduled bool       // a drain is queued on the loop, or frames wait for the flush tick; guarded by mu
	batched   bool       // --flush-interval > 0: the flusher, not enqueue, wakes the loop

	spare        []delivery // the other half of the double-buffered queue
	conns        []*conn    // every connection of this loop, for sweeps
	topics       map[string]*loopTopic
	draining     bool    // inside drain: subscriber lists must not change
	deferred     []*conn // conns closed while draining; unsubscribed after it
	dirty        []*conn // conns with frames in the current drain pass
	iov          [][]byte
	dv           []delivery // deliveries of stream conns in a drain pass, in step with iov
	stream       streamScratch
	out          []byte                               // replies built during one OnTraffic, written once
	catchUp      []byte                               // snapshot/replay frames of new subscriptions, written after the ack
	query        []queryParam                         // scratch: the upgrade URL's parameters (traffic.go)
	topicNames   []string                             // scratch: the upgrade URL's topics
	partial      map[*conn]*bytebufferpool.ByteBuffer // fragmented messages in progress (conn.partialMessage)
	slowList     []*conn                              // conns in slow (conflating) mode
	slow         map[*conn]*slowState                 // the state of the conns in slowList (conn.state&stateSlow)
	moreSubs     map[*conn][]subRef                   // subscriptions after a conn's first (conn.state&stateMoreSubs, sublist.go)
	parsers      map[*conn]codec.Parser               // parsers inside a frame or message (conn.state&stateParser, parser.go)
	partialSince map[*conn]uint16                     // when a conn's input became incomplete (flagPartial, limits.go)
	slowStates   sync.Pool                            // *slowState: borrowed only while a conn is behind
	parser       codec.ParserConfig
	now          uint32        // loop clock in ms since node start; set on each traffic/tick
	proxied      []proxiedAddr // --proxy-protocol: client addresses, parallel to conns (proxy.go); nil without it

	userLoopState // verified connections by user (users.go)

	// permessage-deflate (compress.go): per loop, one message at a time.
	deflater    *codec.Compressor  // made on first use
	inflater    codec.Decompressor // allocates its window on first use
	inflated    []byte             // the last inflated client message
	compressMin int                // Compression.MinSize
	deltaBuf    []byte             // the delta being encoded (delta.go)

	stats    loopStats
	lim      loopLimits   // abuse limits (limits.go)
	pub      loopPublish  // client publish scratch (publish.go)
	openLeft atomic.Int64 // shutdown: open connections left to close; -1 = not counted yet

	drainTask gnet.Runnable
	sweepTask gnet.Runnable

	met loopMetrics // metrics.go; last, away from the fields the drain reads
}

// loopStats are one loop's counters, summed by Node.Stats.
type loopStats struct {
	delivered  atomic.Uint64 // frames written to subscribers
	slowClosed atomic.Uint64 // connections closed for falling behind
	slowMode   atomic.Uint64 // times a connection entered slow (conflating) mode
	conflated  atomic.Uint64 // messages replaced by a newer one for a slow connection
	snapshots  atomic.Uint64 // last values sent to new subscribers
	replays    atomic.Uint64 // resumes served from history
	resets     atomic.Uint64 // resumes that could not be served (reset sent)
}

type delivery struct {
	lt *loopTopic
	f  *sharedFrame
}

type runnable func()

func (r runnable) Run(context.Context) error { r(); return nil }

func newLoop(n *Node, el gnet.EventLoop) *loop {
	l := &loop{
		node:    n,
		el:      el,
		topics:  make(map[string]*loopTopic),
		parser:  codec.ParserConfig{MaxMessage: n.cfg.MaxMessage},
		batched: n.cfg.FlushInterval > 0,

		compressMin: n.cfg.Compression.MinSize,
	}
	l.lim.init(n)
	l.drainTask = runnable(l.drain)
	l.sweepTask = runnable(l.sweep)
	return l
}

// enqueue hands a frame to the loop. Any goroutine; the caller holds hub.mu so
// frames of one topic are queued in seq order. Only the first frame of a batch
// wakes the loop: frames published meanwhile ride along in the same drain.
func (l *loop) enqueue(lt *loopTopic, f *sharedFrame) {
	l.mu.Lock()
	l.queue = append(l.queue, delivery{lt, f})
	wake := !l.scheduled && !l.batched
	l.scheduled = true
	l.mu.Unlock()
	if wake && l.el != nil {
		if err := l.el.Execute(context.Background(), l.drainTask); err != nil {
			l.mu.Lock()
			l.scheduled = false // engine stopping; the queue dies with it
			l.mu.Unlock()
		}
	}
}

// flush wakes the loop if frames are waiting; the flusher calls it every
// --flush-interval, so frames published meanwhile share one writev per conn.
func (l *loop) flush() {
	l.mu.Lock()
	pending := len(l.queue) > 0
	l.mu.Unlock()
	if pending {
		l.execute(l.drainTask)
	}
}

// drain writes every queued frame to its subscribers with one write (or
// writev) per connection per pass. Runs on the loop goroutine.
func (l *loop) drain() {
	l.mu.Lock()
	batch := l.queue
	l.queue = l.spare
	l.spare = nil
	l.scheduled = false
	l.mu.Unlock()

	l.draining = true
	if len(l.slowList) > 0 {
		l.now = l.node.clock()
		l.checkSlow()
	}
	if len(batch) == 1 {
		l.writeOne(batch[0])
	} else {
		l.writeBatch(batch)
	}
	l.draining = false

	for i := range batch {
		batch[i].f.drained()
		batch[i].f.release()
		batch[i] = delivery{}
	}
	l.spare = batch[:0]
	for i, c := range l.deferred {
		l.unsubscribeAll(c)
		l.deferred[i] = nil
	}
	l.deferred = l.deferred[:0]
}

// writeOne is the common low-rate case: one frame, one write per subscriber.
func (l *loop) writeOne(d delivery) {
	var n, sse, poll uint64
	for i := range d.lt.subs {
		s := &d.lt.subs[i]
		if s.c.phase != phaseOpen || d.f.skip(d.lt.afterOf(s)) {
			continue
		}
		if s.c.state&stateSlow != 0 {
			s.chained = false
			l.conflate(s.c, d.lt, d.f)
			continue
		}
		if s.c.kind != kindWS {
			l.dv = append(l.dv[:0], d)
			l.streamDeliver(s.c, l.dv)
			l.dv[0] = delivery{}
			n++
			if s.c.kind == kindSSE {
				sse++
			} else {
				poll++
			}
			continue
		}
		s.c.write(l.deliver(s, d.lt, d.f))
		n++
	}
	l.stats.delivered.Add(n)
	l.met.countDeliveries(n, sse, poll)
	l.met.bytes.Add(n * uint64(len(d.f.b)))
}

// writeBatch coalesces several frames per connection into one writev: a first
// pass counts each connection's frames, a second lays them out in l.iov.
// Slow connections conflate instead (first pass). One conn field, pend, does
// for both passes: the count, then the next free slot of the conn's run in
// l.iov; the runs lie in l.dirty order, so each ends where the next begins.
func (l *loop) writeBatch(batch []delivery) {
	var bytes uint64
	for _, d := range batch {
		k := uint64(0)
		for i := range d.lt.subs {
			s := &d.lt.subs[i]
			if s.c.phase != phaseOpen || d.f.skip(d.lt.afterOf(s)) {
				continue
			}
			if s.c.state&stateSlow != 0 {
				s.chained = false
				l.conflate(s.c, d.lt, d.f)
				continue
			}
			if s.c.pend == 0 {
				l.dirty = append(l.dirty, s.c)
			}
			s.c.pend++
			k++
		}
		bytes += k * uint64(len(d.f.b))
	}
	total := int32(0)
	for _, c := range l.dirty {
		c.pend, total = total, total+c.pend // count → start of its run
	}
	if int(total) > cap(l.iov) {
		l.iov = make([][]byte, total)
	}
	l.iov = l.iov[:total]
	if int(total) > cap(l.dv) {
		l.dv = make([]delivery, total)
	}
	l.dv = l.dv[:total]
	streams := false
	for _, d := range batch {
		for i := range d.lt.subs {
			s := &d.lt.subs[i]
			if s.c.phase != phaseOpen || d.f.skip(d.lt.afterOf(s)) || s.c.state&stateSlow != 0 {
				continue // exactly what the first pass skipped
			}
			l.iov[s.c.pend] = l.deliver(s, d.lt, d.f)
			if s.c.kind != kindWS {
				l.dv[s.c.pend] = d // streams re-read the frame (stream.go)
				streams = true
			}
			s.c.pend++
		}
	}
	var n, sse, poll uint64
	start := int32(0)
	for i, c := range l.dirty {
		end := c.pend // its run is l.iov[start:end]
		k := uint64(end - start)
		if c.phase == phaseOpen && c.kind != kindWS {
			l.streamDeliver(c, l.dv[start:end])
			n += k
			if c.kind == kindSSE {
				sse += k
			} else {
				poll += k
			}
		} else if c.phase == phaseOpen {
			c.writev(l.iov[start:end])
			n += k
		}
		start = end
		c.pend = 0
		l.dirty[i] = nil
	}
	l.dirty = l.dirty[:0]
	clear(l.iov)
	if streams {
		clear(l.dv)
	}
	l.stats.delivered.Add(n)
	l.met.countDeliveries(n, sse, poll)
	l.met.bytes.Add(bytes)
}

// subscribe adds c to topic name on this loop and appends the catch-up
// frames (snapshot, replay or reset) to l.catchUp; it returns the topic's
// epoch, the seq after which live deliveries follow the catch-up (the ack's
// "seqs"), and ready=false when the subscription waits for the topic to be
// primed (AwaitPrime): resolveParked serves it, with its ack if ack is set.
// Subscribing twice is a no-op. The caller checks the topic limit.
func (l *loop) subscribe(c *conn, name string, r resume, ack bool) (epoch string, after uint64, ready bool) {
	lt := l.topics[name]
	if lt != nil && c.subscribedTo(lt) {
		for _, ref := range c.allSubs() {
			if ref.lt == lt {
				s := &lt.subs[ref.pos]
				after = lt.afterOf(s)
				l.setDelta(lt, s, r.delta && c.kind == kindWS && l.deltaAllowed(lt.topic)) // a repeated subscribe may switch deltas on or off
			}
		}
		return lt.topic.epoch, after, true
	}
	if lt != nil && lt.parkedIndex(c) >= 0 {
		return lt.topic.epoch, 0, false
	}
	h := l.node.hub
	h.mu.Lock()
	if lt == nil {
		lt = h.attachLocked(name, l)
		l.topics[name] = lt
	}
	if !lt.topic.primed {
		h.mu.Unlock()
		lt.parked = append(lt.parked, parkedSub{c: c, r: r, ack: ack})
		return lt.topic.epoch, 0, false
	}
	budget := l.node.cfg.MaxPending - len(l.catchUp) // shared by the topics of one request
	l.catchUp, after = h.catchUp(l, lt.topic, r, budget, l.catchUp)
	if c.kind == kindSSE {
		lt.topic.sseSubs.Add(1) // under mu: every later publish has its SSE form
	}
	h.mu.Unlock()
	c.addSub(subRef{lt: lt, pos: int32(len(lt.subs))})
	lt.subs = append(lt.subs, subscriber{c: c, slot: uint16(c.subLen() - 1)})
	lt.setAfter(&lt.subs[len(lt.subs)-1], after)
	lt.count.Add(1)
	l.met.subs.Add(1)
	l.setDelta(lt, &lt.subs[len(lt.subs)-1], r.delta && c.kind == kindWS && l.deltaAllowed(lt.topic)) // streams (SSE, poll) get full messages
	if lt.topic.ns.Presence {
		l.node.presence.joined(lt.topic, c.ident)
	}
	return lt.topic.epoch, after, true
}

// resolveParked serves the subscriptions that waited for lt's topic to be
// primed: each subscribes now, like any other, and gets its ack (op
// subscriptions) and catch-up frames. Loop goroutine.
func (l *loop) resolveParked(lt *loopTopic) {
	if l.topics[lt.topic.name] != lt {
		return
	}
	parked := lt.parked
	lt.parked = nil
	name := lt.topic.name
	for _, p := range parked {
		if p.c.phase != phaseOpen {
			continue // gone (or closing) while it waited
		}
		epoch, after, ready := l.subscribe(p.c, name, p.r, p.ack)
		if !ready {
			continue // unprimed again: waits for the next prime
		}
		out := l.out[:0]
		if p.ack {
			out = appendTextFrame(out, func(b []byte) []byte {
				b = wire.AppendSubscribed(b, []string{name}, []string{epoch}, []uint64{after})
				if p.r.delta {
					b = wire.AppendDeltaTopics(b, l.deltaTopics(p.c, []string{name}))
				}
				return b
			})
		}
		out = append(out, l.catchUp...)
		l.catchUp = l.catchUp[:0]
		if len(out) > 0 && p.c.kind != kindWS {
			l.streamWrite(p.c, out, &catchUpStart{name: name, r: p.r})
		} else if len(out) > 0 {
			p.c.write(out)
		}
		l.out = out[:0]
	}
	l.dropIfUnused(lt)
}

// parkedIndex is the position of c's waiting subscription, or -1.
func (lt *loopTopic) parkedIndex(c *conn) int {
	for i, p := range lt.parked {
		if p.c == c {
			return i
		}
	}
	return -1
}

// unsubscribe removes c from topic name; it reports whether c was subscribed
// (or waiting to be).
func (l *loop) unsubscribe(c *conn, name string) bool {
	for i, ref := range c.allSubs() {
		if ref.lt.topic.name == name {
			l.removeSub(c, i)
			return true
		}
	}
	if lt := l.topics[name]; lt != nil {
		if i := lt.parkedIndex(c); i >= 0 {
			lt.parked = slices.Delete(lt.parked, i, i+1) // resolveParked detaches lt if it ends up unused
			return true
		}
	}
	return false
}

func (l *loop) unsubscribeAll(c *conn) {
	for n := c.subLen(); n > 0; n = c.subLen() {
		l.removeSub(c, n-1)
	}
}

// removeSub swap-removes c's i-th subscription and the matching entry of the topic's
// subscriber list, fixing the back-references of the entries that moved.
func (l *loop) removeSub(c *conn, i int) {
	ref := c.subAt(i)
	lt := ref.lt
	if c.state&stateSlow != 0 {
		l.dropPending(c, lt)
	}
	l.setDelta(lt, &lt.subs[ref.pos], false)

	last := len(lt.subs) - 1
	moved := lt.subs[last]
	lt.subs[ref.pos] = moved
	moved.c.setSubPos(int(moved.slot), ref.pos)
	lt.subs[last] = subscriber{}
	lt.subs = lt.subs[:last]
	lt.count.Add(-1)
	if c.kind == kindSSE {
		lt.topic.sseSubs.Add(-1)
	}
	l.met.subs.Add(-1)

	lastRef := c.subLen() - 1
	if i != lastRef {
		moved := c.subAt(lastRef)
		moved.lt.subs[moved.pos].slot = uint16(i)
	}
	c.removeSubAt(i)
	if lt.topic.ns.Presence {
		l.node.presence.left(lt.topic.name, c.ident)
	}

	l.dropIfUnused(lt)
}

// dropIfUnused detaches lt from its topic once no subscriber has or waits for it.
func (l *loop) dropIfUnused(lt *loopTopic) {
	if len(lt.subs) == 0 && len(lt.parked) == 0 {
		delete(l.topics, lt.topic.name)
		l.node.hub.detach(lt)
		lt.subs = nil
	}
}

// addConn and removeConn keep l.conns, the list the sweep walks.
func (l *loop) addConn(c *conn) {
	c.idx = int32(len(l.conns))
	l.conns = append(l.conns, c)
	l.addProxied(c)
}

func (l *loop) removeConn(c *conn) {
	last := len(l.conns) - 1
	moved := l.conns[last]
	l.conns[c.idx] = moved
	moved.idx = c.idx
	l.moveProxied(last, c.idx)
	l.conns[last] = nil
	l.conns = l.conns[:last]
}

// closed runs from OnClose: the connection is gone, drop all its state.
func (l *loop) closed(c *conn) {
	c.phase = phaseClosed
	l.releaseIP(c) // before removeConn: it needs c's client address (proxy.go)
	l.removeConn(c)
	l.forgetUser(c)
	c.releaseMessage()
	l.forgetPublisher(c) // publish.go
	l.leaveSlow(c)
	l.forgetParser(c)
	l.forgetPartial(c)
	l.dropSubs(c)
}

// dropSubs unsubscribes c from everything, after the drain pass if one is
// running (its subscriber lists are being walked).
func (l *loop) dropSubs(c *conn) {
	if l.draining {
		l.deferred = append(l.deferred, c)
	} else {
		l.unsubscribeAll(c)
	}
}
