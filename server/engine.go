package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// engine routes gnet's callbacks to the loop that owns each connection.
// gnet does not list its loops, so they are discovered in OnOpen.
type engine struct {
	gnet.BuiltinEventEngine
	node  *Node
	eng   gnet.Engine
	boot  chan struct{}
	mu    sync.Mutex
	loops map[gnet.EventLoop]*loop // guarded by mu
	tick  time.Duration
	// tuner sets listener options (listener.go); tunedAll: the first
	// tick has seen every loop's listener (ticker goroutine only).
	tuner    listenerTuner
	tunedAll bool
	// lowatInherited: every listener carries TCP_NOTSENT_LOWAT, so an
	// accepted socket has it and OnOpen saves a setsockopt per connection.
	// With one loop OnBoot sets it before any accept. Listeners of further
	// loops exist only after OnBoot: the first tick tunes them and the next
	// tick sets this (lowatNext), so a socket accepted before its listener
	// was tuned has long been through OnOpen's setsockopt.
	lowatInherited atomic.Bool
	lowatNext      bool // ticker goroutine only
}

func newEngine(n *Node) *engine {
	return &engine{
		node:  n,
		boot:  make(chan struct{}),
		loops: make(map[gnet.EventLoop]*loop),
		tick:  n.cfg.tickInterval(),
	}
}

func (e *engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	cfg := &e.node.cfg
	if e.tuner.tune(e.node.wsPort(), &cfg.Accept, cfg.NotSentLowat) >= cfg.Loops && cfg.NotSentLowat > 0 {
		e.lowatInherited.Store(true) // the loops do not run yet
	}
	close(e.boot)
	return gnet.None
}

// loopFor returns fanwire's state for a gnet loop, creating it on first use.
func (e *engine) loopFor(el gnet.EventLoop) *loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.loops[el]
	if l == nil {
		l = newLoop(e.node, el)
		e.loops[el] = l
	}
	return l
}

// allLoops is a snapshot of the loops seen so far.
func (e *engine) allLoops() []*loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	ls := make([]*loop, 0, len(e.loops))
	for _, l := range e.loops {
		ls = append(ls, l)
	}
	return ls
}

var http503 = codec.AppendHTTPError(nil, &codec.HTTPError{Status: 503, Message: "connection limit reached, try later"})

func (e *engine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	n := e.node
	now := n.clock()
	n.trim.accepted(now)
	gcBursts.accepted(n.cfg.Memory.Trim)
	if count := n.conns.Add(1); n.cfg.MaxConns > 0 && count > int64(n.cfg.MaxConns) {
		n.rejected.Add(1)
		return http503, gnet.Close
	}
	if n.cfg.NotSentLowat > 0 && !e.lowatInherited.Load() {
		// Without it the kernel's autotuned send buffer (up to tcp_wmem's
		// 4 MiB) takes a stalled client's backlog before MaxPending sees
		// any: the client is never closed and the memory is the kernel's.
		_ = unix.SetsockoptInt(gc.Fd(), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n.cfg.NotSentLowat)
	}
	l := e.loopFor(gc.EventLoop())
	l.met.accepted.Add(1)
	if n.stopping.Load() { // draining (drain.go): it would only be closed again
		return http503Draining, gnet.Close
	}
	if reply := l.admitRate(); reply != nil {
		return reply, gnet.Close
	}
	c := &conn{gc: gc, loop: l, lastRead: now, tokens: l.clientRateTokens()}
	if n.cfg.Proxy.Protocol {
		c.flags |= flagProxyAwait // per-IP admission waits for the header's address (proxy.go)
	} else if reply := l.admitIP(c); reply != nil {
		return reply, gnet.Close
	}
	gc.SetContext(c)
	l.addConn(c)
	return nil, gnet.None
}

func (e *engine) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.Close
	}
	return c.loop.onTraffic(c)
}

func (e *engine) OnClose(gc gnet.Conn, _ error) gnet.Action {
	e.node.conns.Add(-1)
	if c, _ := gc.Context().(*conn); c != nil && c.phase != phaseClosed {
		c.loop.countClosed(c)
		c.loop.closed(c)
	}
	return gnet.None
}

// expirePerTick bounds how many topics' history one tick checks for age,
// and so how long that tick holds the hub lock.
const expirePerTick = 4096

// OnTick runs on gnet's ticker goroutine; each loop sweeps its own conns.
func (e *engine) OnTick() (time.Duration, gnet.Action) {
	if e.lowatNext {
		e.lowatNext = false
		e.lowatInherited.Store(true)
	}
	if !e.tunedAll {
		e.tunedAll = true
		cfg := &e.node.cfg
		e.lowatNext = cfg.NotSentLowat > 0 && !e.lowatInherited.Load() &&
			e.tuner.tune(e.node.wsPort(), &cfg.Accept, cfg.NotSentLowat) >= cfg.Loops
	}
	for _, l := range e.allLoops() {
		l.execute(l.sweepTask)
	}
	e.node.hub.expireSome(expirePerTick)
	if gcBursts.tick() {
		e.node.trim.returnBurst(time.Now())
	}
	e.node.trim.tick(&e.node.cfg.Memory, time.Now(), e.node.clock(), e.node.log)
	e.node.presence.sweep(time.Now())
	return e.tick, gnet.None
}
