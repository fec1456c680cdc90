package server

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/fanwire/fanwire/server/wire"
)

// hub assigns each publish its per-topic seq, encodes it into one frame and
// hands that frame to every loop that has subscribers for the topic.
// Loops register and unregister their interest in a topic through attach/detach.
type hub struct {
	mu     sync.Mutex
	topics map[string]*topic // guarded by mu
	frames sync.Pool         // *sharedFrame
	// interest, if set, hears when the node gains its first or loses its last
	// subscriber of a topic. Called with mu held: it must not block.
	interest func(topic string, interested bool)
	// awaitPrime: topics start unprimed when the node starts to follow them
	// (see Config.AwaitPrime and prime).
	awaitPrime bool
	namespaces *namespace.Set // what topics keep for late and returning subscribers
	epochs     epochMaker
	aging      agingList // topics holding history, visited a few at a time to drop expired entries

	published atomic.Uint64
	gaps      atomic.Uint64 // bus deliveries that jumped past a gap: subscribers got a reset
}

// topic is the node-wide state of one topic; all fields guarded by hub.mu
// except name, epoch and lastValue, which never change.
type topic struct {
	name      string
	epoch     string               // names this run of seqs: a client never resumes across epochs
	lastValue bool                 // keeps its newest message for new subscribers; may be conflated
	ns        *namespace.Namespace // history size and age, max message
	seq       uint64               // last seq assigned
	primed    bool                 // followed on the bus and caught up: subscriptions are served (always true without AwaitPrime)
	loops     []*loopTopic
	last      *sharedFrame // newest message (last-value topics), one ref held
	history   history      // recent messages for resume
	agingPos  int          // 1 + index in hub.aging; 0 = not listed
	sseSubs   atomic.Int32 // subscribers on SSE: publishes also get their SSE form (stream.go)
	// Deltas (delta.go): while deltaSubs > 0, prev is the newest message
	// (one ref held), the base of the next publish's delta.
	prev      *sharedFrame
	deltaSubs atomic.Int32 // delta subscribers on all loops
}

// loopTopic is one loop's subscriber list for one topic. subs is owned by the
// loop goroutine; count mirrors len(subs) for readers on other goroutines.
type loopTopic struct {
	topic *topic
	loop  *loop
	subs  []subscriber
	// afterBase is what the subscribers' "after" seqs are stored relative
	// to (afterOf, setAfter), so an entry of subs is 16 bytes, not 24.
	afterBase uint64
	count     atomic.Int32
	// parked are subscriptions waiting for the topic to be primed; owned by
	// the loop goroutine. The loopTopic stays attached while any wait.
	parked []parkedSub
}

// parkedSub is a subscription made before its topic was primed.
type parkedSub struct {
	c   *conn
	r   resume
	ack bool // answer with a "subscribed" ack once served (op, not URL, subscriptions)
}

// subscriber is one entry of loopTopic.subs; slot is the index of the matching
// subscription of the conn (sublist.go) so either side can be removed in
// O(1). It is 16 bytes: every idle subscribed connection pays for one.
type subscriber struct {
	c *conn
	// after, relative to the loopTopic's afterBase (afterOf): skip queued
	// frames up to this seq, sent already as snapshot or replay; for a
	// stream, its live position.
	after uint32
	slot  uint16 // < 65536: Config.MaxTopicsPerConn is at most 65535
	delta bool   // receives Fossil deltas (delta.go)
	// chained: the last live delivery of this topic to c was the topic's
	// previous message, so a delta against it can be applied. False after
	// subscribe (catch-up frames) and conflation.
	chained bool
}

// afterOf is s's "after" seq.
func (lt *loopTopic) afterOf(s *subscriber) uint64 { return lt.afterBase + uint64(s.after) }

// setAfter sets s's "after" seq to v (s is an entry of lt.subs or about to
// be). A v outside [afterBase, afterBase+2^32) rebases every entry: rare,
// as a topic's seq moves forward and its subscribers' seqs stay close to it.
func (lt *loopTopic) setAfter(s *subscriber, v uint64) {
	if v < lt.afterBase || v-lt.afterBase > math.MaxUint32 {
		lt.rebase(v)
	}
	s.after = uint32(max(v, lt.afterBase) - lt.afterBase)
}

// rebase moves afterBase to the lowest "after" of lt.subs and v. Should
// they span more than 2^32 seqs, the lowest are raised to 2^32 below the
// highest: no frame that old is ever queued again, so none is skipped
// differently.
func (lt *loopTopic) rebase(v uint64) {
	lo, hi := v, v
	for i := range lt.subs {
		a := lt.afterOf(&lt.subs[i])
		lo, hi = min(lo, a), max(hi, a)
	}
	lo = max(lo, hi-min(hi, math.MaxUint32))
	for i := range lt.subs {
		lt.subs[i].after = uint32(max(lt.afterOf(&lt.subs[i]), lo) - lo)
	}
	lt.afterBase = lo
}

// sharedFrame is one encoded publish, written as-is to every subscriber.
// refs counts its holders: loops that still have to write it, the topic's
// history and last value, slow connections' conflation slots.
type sharedFrame struct {
	b []byte
	// deflated is the permessage-deflate frame of the same envelope, built
	// by the first loop with a subscriber that negotiated it (compress.go).
	deflated variant
	// prev is the previous message (seq-1, one ref held) when the topic had
	// delta subscribers at publish time, until every loop has drained this
	// frame; delta and deltaZ are the delta frame against it and its
	// compressed form, built lazily like deflated (delta.go).
	prev          *sharedFrame
	live          atomic.Int32 // loops that have yet to drain this frame
	dataLen       int32        // the data's length: the envelope ends with data + '}'
	delta, deltaZ variant
	seq           uint64
	at            int64 // publish time, unix ns (history age)
	hdr           uint8 // header length: b[hdr:] is the envelope
	// reset: not a message but a {"type":"reset"} announcing a gap before seq
	// (hub.gapReset); never kept in history or conflated.
	reset bool
	sse   []byte // the SSE event of the envelope, built only when the topic has SSE subscribers (stream.go)
	refs  atomic.Int32
	pool  *sync.Pool
}

// envelope is the frame's payload, {"topic":..,"seq":..,"data":..}.
func (f *sharedFrame) envelope() []byte { return f.b[f.hdr:] }

// maxPooledFrame keeps occasional huge publishes from pinning memory in the pool.
const maxPooledFrame = 64 << 10

func (f *sharedFrame) release() {
	if f.refs.Add(-1) != 0 {
		return
	}
	if cap(f.b) > maxPooledFrame {
		f.b = nil
	}
	f.b = f.b[:0]
	f.reset = false
	if cap(f.sse) > maxPooledFrame {
		f.sse = nil
	}
	f.sse = f.sse[:0]
	f.deflated.reset()
	f.resetDelta()
	f.pool.Put(f)
}

func newHub(namespaces *namespace.Set) *hub {
	h := &hub{topics: make(map[string]*topic), namespaces: namespaces, epochs: newEpochMaker()}
	h.frames.New = func() any { return &sharedFrame{pool: &h.frames} }
	return h
}

// publish assigns the next seq of the topic and queues one shared frame on
// every loop with subscribers. Sequencing and queueing happen under one lock,
// so every loop sees a topic's frames in seq order.
func (h *hub) publish(name string, data []byte) (seq uint64, subscribers int, err error) {
	return h.publishFrom(name, data, nil)
}

// publishFrom is publish with the sender stamp from (nil: none), see wire.AppendFrom.
func (h *hub) publishFrom(name string, data, from []byte) (seq uint64, subscribers int, err error) {
	if !wire.ValidTopic(name) {
		return 0, 0, wire.ErrInvalidTopic
	}
	h.mu.Lock()
	t := h.topic(name)
	if t.ns.MaxMessage > 0 && len(data) > t.ns.MaxMessage {
		h.mu.Unlock()
		return 0, 0, wire.ErrMessageTooLarge
	}
	seq = t.seq + 1
	subscribers = h.fanout(t, seq, data, from, 0)
	h.mu.Unlock()
	return seq, subscribers, nil
}

// deliver fans out a message whose seq was assigned elsewhere (by the bus).
// A seq at or below the topic's last one is a duplicate and is dropped. A
// jump forward means messages were lost that the bus could not fill in (it
// tries first, see bus.Subscriber): subscribers are told with a reset and
// history restarts at seq, so nobody sees a silent gap.
func (h *hub) deliver(name string, seq uint64, data []byte) (subscribers int, err error) {
	return h.deliverFrom(name, seq, data, nil)
}

// deliverFrom is deliver with a client publication's sender stamp.
func (h *hub) deliverFrom(name string, seq uint64, data, from []byte) (subscribers int, err error) {
	if !wire.ValidTopic(name) {
		return 0, wire.ErrInvalidTopic
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topic(name)
	if seq <= t.seq {
		return 0, nil
	}
	if t.primed && t.seq > 0 && seq > t.seq+1 {
		h.gapReset(t, seq)
	}
	return h.fanout(t, seq, data, from, 0), nil
}

// gapReset announces that t continues at seq after a gap: history before it
// is dropped (a resume from inside the gap must get a reset, not a replay
// with a hole) and every loop writes a reset frame to the topic's
// subscribers, ahead of seq itself. Caller holds mu.
func (h *hub) gapReset(t *topic, seq uint64) {
	h.gaps.Add(1)
	t.history.trim(math.MaxInt64)
	if t.agingPos != 0 {
		h.aging.remove(t)
	}
	if len(t.loops) == 0 {
		return
	}
	f := h.frames.Get().(*sharedFrame)
	f.b = appendTextFrame(f.b[:0], func(b []byte) []byte { return wire.AppendReset(b, t.name, seq, t.epoch) })
	f.hdr, f.seq, f.reset = 0, seq, true // seq: skipped, like seq itself, by later subscribers
	f.refs.Store(int32(len(t.loops)) + 1)
	f.live.Store(int32(len(t.loops)))
	for _, lt := range t.loops {
		lt.loop.enqueue(lt, f)
	}
	f.release()
}

// topic finds or creates a topic. Caller holds mu.
func (h *hub) topic(name string) *topic {
	t := h.topics[name]
	if t == nil {
		ns := h.namespaces.Match(name)
		t = &topic{name: name, epoch: h.epochs.next(), lastValue: ns.KeepsLastValue(name), ns: ns, primed: !h.awaitPrime}
		h.topics[name] = t
	}
	return t
}

// fanout records seq as the topic's latest and queues the encoded frame on
// every loop with subscribers. at is the publish time for history ages (unix
// ns; 0: now). Caller holds mu.
func (h *hub) fanout(t *topic, seq uint64, data, from []byte, at int64) (subscribers int) {
	t.seq = seq
	h.published.Add(1)
	keep := t.ns.History > 0 || t.lastValue
	if t.prev != nil && t.deltaSubs.Load() == 0 {
		t.prev.release()
		t.prev = nil
	}
	if len(t.loops) == 0 && !keep {
		return 0
	}
	f := h.frames.Get().(*sharedFrame)
	size := wire.EnvelopeFromSize(t.name, seq, data, from)
	f.b = codec.AppendHeader(f.b[:0], codec.OpText, true, size)
	f.hdr = uint8(len(f.b))
	f.b = wire.AppendEnvelopeFrom(f.b, t.name, seq, data, from)
	if t.sseSubs.Load() > 0 {
		f.sse = appendSSEData(f.sse[:0], f.envelope())
	}
	f.seq = seq
	f.dataLen = int32(len(data))
	f.refs.Store(int32(len(t.loops)) + 1) // +1: ours until it is kept or dropped below
	f.live.Store(int32(len(t.loops)))
	if t.deltaSubs.Load() > 0 {
		h.chainDelta(t, f)
	}
	if keep {
		if at == 0 {
			at = time.Now().UnixNano()
		}
		f.at = at
		h.keep(t, f)
	}
	for _, lt := range t.loops {
		subscribers += int(lt.count.Load())
		lt.loop.enqueue(lt, f)
	}
	f.release()
	return subscribers
}

// attachLocked registers loop l as interested in topic name. Called on l's
// goroutine with mu held.
func (h *hub) attachLocked(name string, l *loop) *loopTopic {
	t := h.topic(name)
	lt := &loopTopic{topic: t, loop: l}
	t.loops = append(t.loops, lt)
	if len(t.loops) == 1 {
		if h.awaitPrime {
			h.unprime(t)
		}
		if h.interest != nil {
			h.interest(name, true)
		}
	}
	return lt
}

// unprime readies t to be followed again: what it kept while nobody here
// watched it is stale (the bus subscription was off), so it is dropped and
// subscriptions wait for prime. Caller holds mu.
func (h *hub) unprime(t *topic) {
	t.primed = false
	t.seq = 0 // stale too: the next live message or prime sets it
	if t.last != nil {
		t.last.release()
		t.last = nil
	}
	if t.prev != nil {
		t.prev.release()
		t.prev = nil
	}
	t.history.trim(math.MaxInt64)
	if t.agingPos != 0 {
		h.aging.remove(t)
	}
}

// StoredMessage is a message of a topic as the bus stored it.
type StoredMessage struct {
	Seq  uint64
	Data []byte
	From []byte // the sender stamp of a client publish (nil: none)
	At   time.Time
}

// prime is told by the bus that it now follows topic name, with the recent
// messages the bus stored before (oldest first; none when it has none or
// could not say). They become the topic's history and last value, ahead of
// anything that already arrived live, and every loop then serves the
// subscriptions that waited (resolveParked).
func (h *hub) prime(name string, stored []StoredMessage) {
	h.mu.Lock()
	t := h.topics[name]
	if t == nil || t.primed { // already followed: the live stream is authoritative
		h.mu.Unlock()
		return
	}
	// Nobody here is served yet, so what came live can be put back after
	// the stored messages that precede it.
	live, liveSeq, liveLast := t.history.take(), t.seq, t.last
	t.last = nil
	first := uint64(math.MaxUint64) // the first seq the live stream delivered
	switch {
	case len(live) > 0:
		first = live[0].seq
	case liveLast != nil:
		first = liveLast.seq
	case liveSeq > 0:
		first = liveSeq
	}
	for _, m := range stored {
		if m.Seq >= first {
			break
		}
		h.fanout(t, m.Seq, m.Data, m.From, m.At.UnixNano())
	}
	for _, f := range live {
		t.history.push(f, t.ns.History)
	}
	if liveLast != nil {
		if t.last != nil {
			t.last.release()
		}
		t.last = liveLast
	}
	t.seq = max(t.seq, liveSeq)
	t.primed = true
	waiting := slices.Clone(t.loops)
	h.mu.Unlock()
	for _, lt := range waiting {
		lt.loop.execute(runnable(func() { lt.loop.resolveParked(lt) }))
	}
}

// detach removes a loop's empty subscriber list from its topic.
func (h *hub) detach(lt *loopTopic) {
	h.mu.Lock()
	loops := lt.topic.loops
	for i, x := range loops {
		if x == lt {
			last := len(loops) - 1
			loops[i] = loops[last]
			loops[last] = nil
			lt.topic.loops = loops[:last]
			break
		}
	}
	if len(lt.topic.loops) == 0 && h.interest != nil {
		h.interest(lt.topic.name, false)
	}
	h.mu.Unlock()
}

// topicCount is the number of topics ever published or subscribed to.
func (h *hub) topicCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}
