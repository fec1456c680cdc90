package server

import (
	"context"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
)

// closeTimeout bounds how long a closing connection may take to hang up.
const closeTimeout = 2 * time.Second

// execute runs task on the loop goroutine. Any goroutine.
func (l *loop) execute(task gnet.Runnable) {
	_ = l.el.Execute(context.Background(), task)
}

// sweep enforces handshake, idle and close deadlines and sends pings. It runs
// on the loop goroutine every tick instead of a timer per connection.
// It walks backwards: closing conns[i] swaps an already-visited conn into i.
func (l *loop) sweep() {
	l.now = l.node.clock()
	l.checkSlow()
	cfg := &l.node.cfg
	handshake := millis(cfg.HandshakeTimeout)
	ping := millis(cfg.PingInterval)
	closing := millis(closeTimeout)
	backlog := 4 * millis(cfg.SlowGrace)
	unixNow := time.Now().Unix() // token expiry: one clock read per sweep
	message := millis(cfg.Limits.MessageTimeout)
	refill := l.refillClients()
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		age := l.now - c.lastRead
		switch c.phase {
		case phaseHandshake:
			if l.handshakeExpired(c, handshake) {
				l.lim.stats.handshakeTimeouts.Add(1)
				c.setReason(reasonHandshakeTimeout)
				_, _ = c.gc.Write(http408) // gnet sends it before closing
				_ = l.el.Close(c.gc)
			}
		case phaseOpen:
			l.refillClient(c, refill)
			switch {
			case c.ident.ExpiredAt(unixNow):
				c.fail(codec.CloseCode(wire.CloseTokenExpired), "token expired")
			case c.kind != kindWS:
				l.sweepStream(c, age) // SSE heartbeats, long-poll timeouts (stream.go)
			case l.partialExpired(c, message):
				l.lim.stats.messageTimeouts.Add(1)
				c.fail(codec.ClosePolicyViolation, "message timeout: incomplete for "+cfg.Limits.MessageTimeout.String())
			case age >= 2*ping:
				c.setReason(reasonIdle)
				c.fail(codec.CloseGoingAway, "idle timeout: no data from client")
			case age >= ping && c.flags&flagPinged == 0:
				c.flags |= flagPinged
				c.write(codec.PingFrame)
			}
		case phaseClosing:
			// A client still reading its backlog gets longer to reach our close
			// frame and learn why it was closed; memory stays capped by MaxPending.
			if age >= closing && (c.gc.OutboundBuffered() == 0 || age >= backlog) {
				_ = l.el.Close(c.gc)
			}
		}
	}
}

func millis(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
