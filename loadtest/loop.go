package loadtest

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
	"golang.org/x/sys/unix"
)

const (
	loopTickMs    = 10 // epoll wait cap: dial pacing and stop checks
	minSweepEvery = 50 * time.Millisecond
	readBufSize   = 128 << 10 // one per loop
	maxFrame      = 1 << 20   // largest server frame accepted
	maxHandshake  = 16 << 10  // largest 101 response accepted
	pollBatchSize = 512
)

// loop drives a share of the connections on one goroutine with epoll.
// Everything in it is owned by that goroutine except stats (atomics and a
// mutex), stopReq and rampDone.
type loop struct {
	id      int
	plan    *Plan
	tgt     *target
	dst     unix.SockaddrInet4 // own copy: Connect writes into its raw field
	paths   []string
	perConn bool // paths[k] is the k-th connection's own (its token); else rotated by global index
	sources []netip.Addr
	srcNext int
	stats   *loopStats
	p       *poller
	rng     *rand.Rand
	pcfg    codec.ParserConfig

	conns   []conn      // slots, by value: no pointer per connection for the GC
	free    []int32     // free slot indexes
	redials redialQueue // attempts to dial again, a min-heap by due time
	buf     []byte      // read buffer shared by all connections of the loop
	wbuf    []byte      // scratch for outgoing frames
	pool    bufPool
	cursors [][]byte // poll: each slot's since/epochs for its next request (poll.go)
	repolls []int32  // poll: slots whose next request is owed after this batch of events

	chat *chatLoop // chat mode (chat.go); nil otherwise

	planned   int // connections to open (churn: to keep open)
	dialed    int
	inflight  int // connecting or handshaking
	closing   int
	live      int // used slots
	openLocal int
	cursor    int // churn and stop scan position
	tokens    float64
	churnTok  float64
	lastTick  int64
	dialSlot  int64 // the dialPeriod slot of the last paced burst

	resets  []string // dump.go: the first resets seen, for FANWIRE_LOAD_DUMP
	lastMsg int64    // unix nanos of the last data message (dump.go)

	stopReq  atomic.Bool
	stopping bool
	rampDone atomic.Bool
	done     chan struct{}
	err      error
}

func newLoop(id int, plan *Plan, tgt *target, paths []string, sources []netip.Addr, planned int) (*loop, error) {
	p, err := newPoller(pollBatchSize)
	if err != nil {
		return nil, err
	}
	seed := uint64(time.Now().UnixNano())
	l := &loop{
		id: id, plan: plan, tgt: tgt, dst: tgt.addr, paths: paths, sources: sources,
		stats:   newLoopStats(plan.TrackSeq),
		p:       p,
		rng:     rand.New(rand.NewPCG(seed, uint64(id)+1)),
		pcfg:    codec.ParserConfig{Client: true, MaxMessage: maxFrame},
		buf:     make([]byte, readBufSize),
		wbuf:    make([]byte, 0, 1024),
		planned: planned,
		done:    make(chan struct{}),
	}
	if plan.Chat != nil {
		l.chat = newChatLoop(plan, id, planned)
		l.stats.ack = newHist()
	}
	return l, nil
}

func (l *loop) run() {
	// Slots are allocated here, not in newLoop, so the fleet's memory
	// baseline holds only the fixed per-loop costs.
	l.conns = make([]conn, 0, l.planned+l.planned/8+16)
	defer close(l.done)
	defer l.p.close()
	now := time.Now().UnixNano()
	l.lastTick = now
	lastSweep := now
	every := l.plan.sweepEvery()
	for {
		evs, err := l.p.wait(loopTickMs)
		if err != nil {
			l.err = err
			l.abortAll()
			return
		}
		now = time.Now().UnixNano()
		for _, ev := range evs {
			l.handle(ev, now)
		}
		if len(l.repolls) > 0 {
			l.repoll(now)
		}
		if l.stopReq.Load() && !l.stopping {
			l.beginStop(now)
		}
		if l.stopping {
			l.closePaced(now)
		} else {
			l.churn(now) // first, so replacements are dialed in the same pass
			l.dial(now)
			if l.chat != nil {
				l.chatTick(now)
			}
		}
		l.lastTick = now
		if now-lastSweep >= int64(every) {
			l.sweep(now)
			lastSweep = now
		}
		if !l.rampDone.Load() && l.dialed >= l.planned && l.inflight == 0 && len(l.redials) == 0 {
			l.rampDone.Store(true)
		}
		if l.stopping && l.live == 0 {
			return
		}
	}
}

// wantDial says whether another connection should be started now.
func (l *loop) wantDial(now int64) bool {
	if l.inflight >= l.plan.MaxInflight {
		return false
	}
	if len(l.redials) > 0 && l.redials[0].at <= now {
		return true
	}
	if l.plan.ChurnRate > 0 && l.rampDone.Load() {
		return l.openLocal+l.inflight+len(l.redials) < l.planned // a reconnect owed takes its place
	}
	return l.dialed < l.planned
}

// Paced ramps start their connections in bursts at multiples of
// dialPeriod of the wall clock, the same instants in every loop of every
// load process: a node's worker then accepts a batch of connections per
// wakeup instead of one. On a 2-core box with ~50 node and ~50 generator
// processes, a wakeup per connection on each side was most of the ramp's
// CPU. Ramps of alignedMaxRate per loop or more (storms) dial at once.
const (
	dialPeriod     = 100 * time.Millisecond
	alignedMaxRate = 5000
)

// dial starts connections paced by a token bucket at the loop's rate.
// Reconnects of connections the server closed are not paced by it: they
// come back when their hint or backoff says, like a fleet of real clients
// (only MaxInflight bounds them), so a restart storm is not capped by --rate.
func (l *loop) dial(now int64) {
	for len(l.redials) > 0 && l.redials[0].at <= now && l.redials[0].down != 0 && l.inflight < l.plan.MaxInflight {
		l.dialOne(now)
	}
	rate := l.plan.Rate / float64(l.plan.Loops)
	l.tokens += rate * float64(now-l.lastTick) / 1e9
	if burst := max(2, rate/5); l.tokens > burst {
		l.tokens = burst
	}
	if rate < alignedMaxRate && l.plan.ChurnRate <= 0 { // churn replaces closed connections at once
		slot := now / int64(dialPeriod)
		if slot == l.dialSlot {
			return
		}
		l.dialSlot = slot
	}
	for l.tokens >= 1 && l.wantDial(now) {
		l.tokens--
		l.dialOne(now)
	}
}

func (l *loop) dialOne(now int64) {
	var path uint32
	var tries uint8
	var resumed redial
	if len(l.redials) > 0 && l.redials[0].at <= now {
		r := l.redials.pop()
		path, tries, resumed = r.path, r.tries, r
	} else {
		global := l.plan.Offset + l.id + l.dialed*l.plan.Loops
		switch {
		case l.perConn && len(l.paths) > 0:
			path = uint32(l.dialed % len(l.paths)) // churn redials reuse the tokens: the same users reconnect
		case len(l.paths) > 0:
			path = uint32(global % len(l.paths))
		}
		l.dialed++
	}
	l.stats.attempted.Add(1)
	fd, err := dialNonBlocking(l.nextSource(), &l.dst)
	if err != nil {
		l.failAttempt(redial{path: path, tries: tries, resume: resumed.resume, since: resumed.since, down: resumed.down}, causeOf(err), 0)
		return
	}
	slot := l.allocSlot()
	if err := l.p.add(fd, slot); err != nil {
		unix.Close(fd)
		l.free = append(l.free, slot)
		l.failAttempt(redial{path: path, tries: tries, resume: resumed.resume, since: resumed.since, down: resumed.down}, causeOf(err), 0)
		return
	}
	l.live++
	l.inflight++
	c := &l.conns[slot]
	c.fd = int32(fd)
	c.state = stConnecting
	c.since = now
	c.path = path
	c.tries = tries
	c.down = resumed.down
	if resumed.resume {
		c.resume, c.hasSeq, c.lastSeq = true, true, resumed.since
	}
	var raw [16]byte
	for i := 0; i < 16; i += 8 {
		v := l.rng.Uint64()
		for j := 0; j < 8; j++ {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	copy(c.key[:], codec.NewKey(raw[:]))
	// On loopback the TCP handshake is usually over when connect returns:
	// writing the request now saves a wakeup for EPOLLOUT and the
	// SO_ERROR check per connection (a ramp of a million connections is
	// CPU-bound). If it is not over, write buffers the request until it is.
	_ = l.sendRequest(slot)
}

// redial is a connection attempt owed after a failure (see Plan.Retries),
// or a reconnect after the server closed an open one (Plan.Resume).
type redial struct {
	at     int64 // unix nanos: not before
	path   uint32
	tries  uint8
	resume bool   // ask for the topic after since
	since  uint64 // the last seq the closed connection saw
	down   int64  // unix nanos: when the server closed it (0: not a reconnect)
}

// Reconnect pacing, as a browser client would do it (fanwire.js): the
// server's "reconnect in Nms" hint plus up to hintJitter, or, without a
// hint, reconnectMin plus as much again at random.
const (
	hintJitter   = 250 * time.Millisecond
	reconnectMin = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second // a reconnect's retries: 100 ms doubling up to this, jittered
)

// reconnect queues a connection the server closed to be dialed again, so
// it resumes after the last seq it saw (fanout with Plan.Resume): a worker
// crash or a drain then shows up as loss only if the server cannot replay.
//
// hint is the server's reconnect delay from a 1001 close ("reconnect in
// Nms"), -1 without one. A reconnect keeps trying until it is open again or
// the run stops (it is never given up after --retries: a real client whose
// server restarts does not give up either); see failAttempt.
func (l *loop) reconnect(slot int32, hint time.Duration) {
	c := &l.conns[slot]
	if !l.plan.Resume || l.stopping || c.state != stOpen {
		return
	}
	var delay int64
	if hint >= 0 {
		delay = int64(hint) + l.rng.Int64N(int64(hintJitter))
	} else {
		delay = int64(reconnectMin) + l.rng.Int64N(int64(reconnectMin))
	}
	l.stats.reconnects.Add(1)
	now := l.lastTick
	l.redials.push(redial{at: now + delay, path: c.path, resume: c.hasSeq, since: c.lastSeq, down: now})
}

// resumePath is path with "&since=<topic>:<seq>" for the first topic in it.
func resumePath(path string, since uint64) string {
	i := strings.Index(path, "topics=")
	if i < 0 {
		return path
	}
	topic := path[i+len("topics="):]
	if j := strings.IndexAny(topic, ",&"); j >= 0 {
		topic = topic[:j]
	}
	return path + "&since=" + topic + ":" + strconv.FormatUint(since, 10)
}

// failAttempt records a failed connect or handshake. While the connection
// has retries left (and the run is ramping, not stopping or churning) it is
// queued to be dialed again after a jittered exponential backoff, so an
// overloaded server sees fewer, later retries rather than a storm.
// A reconnect (Plan.Resume) keeps its resume point through retries, and
// retries until the run stops (backoff capped at maxBackoff). retryAfter is
// the server's Retry-After (503), 0 without one: the next attempt waits at
// least that long, spread over as much again so the retries do not all
// come back in the same second.
func (l *loop) failAttempt(r redial, cause string, retryAfter time.Duration) {
	reconnecting := r.down != 0
	retry := (int(r.tries) < l.plan.Retries || reconnecting) && !l.stopping && !(l.plan.ChurnRate > 0 && l.rampDone.Load() && !reconnecting)
	// A 4xx (bad token 401, forbidden 403, per-user limit 429) answers the
	// same again: not retried. 503 (overload) is.
	retry = retry && !strings.HasPrefix(cause, causeStatusPfx+"4")
	l.stats.fail(cause, retry, reconnecting)
	if !retry {
		if reconnecting {
			l.stats.givenUp.Add(1)
		}
		return
	}
	backoff := min(int64(reconnectMin)<<min(r.tries, 6), int64(maxBackoff))
	backoff += l.rng.Int64N(backoff)
	if retryAfter > 0 {
		backoff = max(backoff, int64(retryAfter)+l.rng.Int64N(int64(retryAfter)))
	}
	r.at = l.lastTick + backoff
	if r.tries < 255 {
		r.tries++
	}
	l.redials.push(r)
}

// failConn ends a connection whose connect or handshake failed.
func (l *loop) failConn(slot int32, cause string) { l.failConnAfter(slot, cause, 0) }

// failConnAfter is failConn with the server's Retry-After.
func (l *loop) failConnAfter(slot int32, cause string, retryAfter time.Duration) {
	c := &l.conns[slot]
	r := redial{path: c.path, tries: c.tries, resume: c.resume, since: c.lastSeq, down: c.down}
	l.closeConn(slot)
	l.failAttempt(r, cause, retryAfter)
}

// nextSource is the source address of the next socket (rotating; zero: any).
func (l *loop) nextSource() netip.Addr {
	var src netip.Addr
	if len(l.sources) > 0 {
		src = l.sources[l.srcNext]
		l.srcNext = (l.srcNext + 1) % len(l.sources)
	}
	return src
}

func (l *loop) allocSlot() int32 {
	if k := len(l.free); k > 0 {
		s := l.free[k-1]
		l.free = l.free[:k-1]
		return s
	}
	l.conns = append(l.conns, conn{})
	return int32(len(l.conns) - 1)
}

func (l *loop) pathOf(c *conn) string {
	if len(l.paths) == 0 {
		return l.tgt.path
	}
	return l.paths[c.path]
}

func (l *loop) maskKey() [4]byte {
	v := l.rng.Uint32()
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// churn closes open connections at the churn rate once ramped; dial then
// replaces them (wantDial keeps the open count at planned).
func (l *loop) churn(now int64) {
	if l.plan.ChurnRate <= 0 || !l.rampDone.Load() {
		return
	}
	rate := l.plan.ChurnRate / float64(l.plan.Loops)
	l.churnTok += rate * float64(now-l.lastTick) / 1e9
	if burst := max(2, rate/5); l.churnTok > burst {
		l.churnTok = burst
	}
	for l.churnTok >= 1 && l.openLocal > 0 {
		l.churnTok--
		for range len(l.conns) {
			l.cursor = (l.cursor + 1) % len(l.conns)
			if l.conns[l.cursor].state == stOpen {
				l.stats.churned.Add(1)
				l.beginClose(int32(l.cursor), now)
				break
			}
		}
	}
}

// beginStop drops connection attempts; closePaced then closes the open
// connections cleanly at the ramp rate, so the server is not hit by a
// close storm it cannot answer within the close timeout.
func (l *loop) beginStop(now int64) {
	l.dump(now)
	l.stopping = true
	l.tokens = 1
	l.cursor = 0
	l.stats.aborted.Add(int64(len(l.redials)))
	for _, r := range l.redials {
		if r.down != 0 {
			l.stats.givenUp.Add(1) // a reconnect still waiting to be dialed
		}
	}
	l.redials = nil
	for i := range l.conns {
		switch l.conns[i].state {
		case stConnecting, stHandshake:
			l.stats.aborted.Add(1)
			if l.conns[i].down != 0 {
				l.stats.givenUp.Add(1)
			}
			l.closeConn(int32(i))
		}
	}
}

func (l *loop) closePaced(now int64) {
	rate := l.plan.Rate / float64(l.plan.Loops)
	l.tokens += rate * float64(now-l.lastTick) / 1e9
	if burst := max(2, rate/5); l.tokens > burst {
		l.tokens = burst
	}
	for l.tokens >= 1 && l.cursor < len(l.conns) {
		if l.conns[l.cursor].state == stOpen {
			l.tokens--
			l.beginClose(int32(l.cursor), now)
		}
		l.cursor++
	}
}

// sweepEvery is how often a loop scans its slots for connect and close
// deadlines: a twentieth of the shorter timeout, between 50 ms and 1 s. The
// scan visits every slot, so with 20k connections per process and a 60 s
// connect timeout a 50 ms period would be wasted CPU in a ramp.
func (p *Plan) sweepEvery() time.Duration {
	return min(max(min(p.ConnectTimeout, p.CloseTimeout)/20, minSweepEvery), time.Second)
}

// sweep enforces connect and close deadlines.
func (l *loop) sweep(now int64) {
	if l.inflight == 0 && l.closing == 0 {
		return
	}
	connectDeadline := now - int64(l.plan.ConnectTimeout)
	closeDeadline := now - int64(l.plan.CloseTimeout)
	for i := range l.conns {
		c := &l.conns[i]
		switch c.state {
		case stConnecting, stHandshake:
			if c.since < connectDeadline {
				l.failConn(int32(i), CauseTimeout)
			}
		case stClosing:
			if c.since < closeDeadline {
				l.stats.closeTimeout.Add(1)
				l.closeConn(int32(i))
			}
		}
	}
}

// abortAll closes every socket after a fatal poller error.
func (l *loop) abortAll() {
	for i := range l.conns {
		if l.conns[i].state != stFree {
			l.stats.aborted.Add(1)
			l.closeConn(int32(i))
		}
	}
}

// closeConn closes the socket and frees the slot; counters by state.
func (l *loop) closeConn(slot int32) {
	c := &l.conns[slot]
	unix.Close(int(c.fd))
	if l.chat != nil {
		l.chatClosed(c, slot)
	}
	switch c.state {
	case stConnecting, stHandshake:
		l.inflight--
	case stOpen:
		l.stats.open.Add(-1)
		l.openLocal--
	case stClosing:
		l.closing--
	}
	if c.in != nil {
		l.pool.put(c.in)
	}
	if c.out != nil {
		l.pool.put(c.out)
	}
	if int(slot) < len(l.cursors) {
		l.cursors[slot] = l.cursors[slot][:0]
	}
	*c = conn{}
	l.free = append(l.free, slot)
	l.live--
}
