package server

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fanwire/fanwire/codec"
)

// drainStep is how often the shutdown pacer lets each loop close a few more
// connections.
const drainStep = 10 * time.Millisecond

// http503Draining answers a connection that arrives while the node drains:
// accepted, it would only be closed again with another hint. Retry-After
// sends the client back once the node (or its replacement) is up.
var http503Draining = httpJSONError(503, "shutting_down", "this node is shutting down, retry in a second", true)

// goAway closes every connection with 1001 at DrainRate closes per second,
// each with a reconnect-delay hint drawn from [0, DrainWindow), so a million
// clients do not all come back in the same second. It returns when no open
// connection is left or ctx is done.
func (n *Node) goAway(ctx context.Context) {
	loops := n.eng.allLoops()
	if len(loops) == 0 {
		return
	}
	// Closes earned per step, across loops; the fraction carries over, so
	// rates below one close per loop and step are kept too.
	perStep := float64(n.cfg.DrainRate) * drainStep.Seconds()
	credit := 0.0
	for _, l := range loops {
		l.openLeft.Store(-1) // unknown until the loop has looked
	}
	tick := time.NewTicker(drainStep)
	defer tick.Stop()
	for {
		credit += perStep
		k := int(credit) / len(loops)
		credit -= float64(k * len(loops))
		done := true
		for _, l := range loops {
			if l.openLeft.Load() != 0 {
				done = false
				l.execute(runnable(func() { l.closeSome(k) }))
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// closeSome closes up to k open connections with 1001 and a reconnect hint,
// drops connections still in their handshake, and records how many open
// ones are left. Loop goroutine.
func (l *loop) closeSome(k int) {
	l.now = l.node.clock()
	window := int64(l.node.cfg.DrainWindow / time.Millisecond)
	open := 0
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		switch {
		case c.phase == phaseHandshake:
			c.setReason(reasonShutdown)
			_ = l.el.Close(c.gc)
		case c.phase == phaseOpen && k > 0:
			k--
			delay := rand.Int64N(max(window, 1))
			c.fail(codec.CloseGoingAway, "going away; reconnect in "+strconv.FormatInt(delay, 10)+"ms")
		case c.phase == phaseOpen:
			open++
		}
	}
	l.openLeft.Store(int64(open))
}
