package server

import (
	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

// Connection phases.
const (
	phaseHandshake uint8 = iota // waiting for the HTTP upgrade request
	phaseOpen                   // WebSocket frames flow both ways
	phaseClosing                // we sent a close frame; input is discarded until EOF or timeout
	phaseClosed                 // gnet closed it; waiting to be forgotten
)

// conn is the whole per-connection state. It stays small: buffers are
// borrowed from pools only while a message is half-received.
type conn struct {
	gc     gnet.Conn
	loop   *loop
	sub    *loopTopic     // the first topic this conn receives; nil = none (more: loop.moreSubs, sublist.go)
	ident  *auth.Identity // the verified token, shared with other conns of the same token; nil = anonymous
	subPos int32          // sub's entry in sub.subs
	idx    int32          // position in loop.conns
	pend   int32          // drain pass: this conn's frame count, then its next slot in loop.iov (writeBatch)
	// lastRead is the loop clock (ms) of the last input; in phaseHandshake:
	// the accept time; in phaseClosing: when closing began.
	lastRead uint32
	// The small fields last, so no alignment padding pushes conn past
	// 64 bytes (the next size class is 80).
	tokens   uint16 // client messages left in this conn's rate bucket (limits.go)
	phase    uint8
	flags    uint8 // conn flag bits, listed in limits.go
	kind     uint8 // transport: kindWS, kindSSE or kindPoll (stream.go)
	closedBy uint8 // why the server closes it, for /metrics (metrics.go)
	state    uint8 // stateSlow, stateMoreSubs, stateParser: where the rest of the state lives
	wsExt    uint8 // the WebSocket parser's extension state while it rests (parser.go)
}

// conn.state bits: the conn has state in one of its loop's side tables.
// These are rare, so their fields would cost every conn bytes for nothing.
const (
	stateSlow     uint8 = 1 << iota // behind: its slowState is loop.slow[c] (slow.go)
	stateMoreSubs                   // subscribed to more than one topic: the others are in loop.moreSubs[c]
	stateParser                     // inside a frame or message: its parser is loop.parsers[c] (parser.go)
)

// subRef points at this conn's entry in a topic's subscriber list.
type subRef struct {
	lt  *loopTopic
	pos int32
}

// write sends b now (gnet buffers what the socket does not take) and enforces
// the pending-bytes cap. Loop goroutine only.
func (c *conn) write(b []byte) {
	if c.kind != kindWS {
		c.loop.streamWrite(c, b, nil) // b is WebSocket frames: re-encoded for the stream
		return
	}
	_, _ = c.gc.Write(b)
	c.checkPending()
}

// writev sends frames in as few syscalls as the kernel allows (IOV_MAX per call).
func (c *conn) writev(frames [][]byte) {
	const iovMax = 1024
	for len(frames) > 0 && c.phase == phaseOpen {
		n := min(len(frames), iovMax)
		if n == 1 {
			_, _ = c.gc.Write(frames[0])
		} else {
			_, _ = c.gc.Writev(frames[:n])
		}
		frames = frames[n:]
	}
	c.checkPending()
}

// checkPending puts a connection whose unsent bytes exceed the cap into slow
// mode: later deliveries are conflated instead of piling up (see slow.go).
func (c *conn) checkPending() {
	if c.phase == phaseOpen && c.state&stateSlow == 0 && c.gc.OutboundBuffered() > c.loop.node.cfg.MaxPending {
		c.loop.enterSlow(c)
	}
}

// fail starts a server-initiated close: send the close frame, stop all
// deliveries, half-close the socket so the client sees EOF after our frame,
// and let the client's EOF (or the sweep's close timeout) finish the job.
func (c *conn) fail(code codec.CloseCode, reason string) {
	if c.phase != phaseOpen {
		return
	}
	if c.kind != kindWS {
		c.loop.failStream(c, code, reason)
		return
	}
	l := c.loop
	c.setReason(reasonForCode(code))
	l.met.countCloseCode(code)
	l.out = codec.AppendCloseFrame(l.out, code, reason) // after any replies already built
	c.phase = phaseClosing
	c.lastRead = l.now
	c.releaseMessage()
	l.leaveSlow(c)
	l.dropSubs(c)
	_, _ = c.gc.Write(l.out)
	l.out = l.out[:0]
	if c.phase == phaseClosing && c.gc.OutboundBuffered() == 0 {
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
	}
}

// partialMessage is c's buffer for the fragments of a message in progress.
// It lives in a per-loop table (loop.partial), not in conn: few connections are ever in
// the middle of a fragmented message, and conn stays in a smaller size class.
func (c *conn) partialMessage() *bytebufferpool.ByteBuffer {
	l := c.loop
	if c.flags&flagAssembling != 0 {
		return l.partial[c]
	}
	if l.partial == nil {
		l.partial = make(map[*conn]*bytebufferpool.ByteBuffer)
	}
	b := bytebufferpool.Get()
	l.partial[c] = b
	c.flags |= flagAssembling
	return b
}

func (c *conn) releaseMessage() {
	if c.flags&flagAssembling != 0 {
		l := c.loop
		bytebufferpool.Put(l.partial[c])
		delete(l.partial, c)
		c.flags &^= flagAssembling
	}
}

func (c *conn) subscribedTo(lt *loopTopic) bool {
	if c.sub == lt {
		return lt != nil
	}
	if c.state&stateMoreSubs != 0 {
		for _, r := range c.loop.moreSubs[c] {
			if r.lt == lt {
				return true
			}
		}
	}
	return false
}
