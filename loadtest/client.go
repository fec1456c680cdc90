package loadtest

import (
	"bytes"
	"strconv"

	"github.com/fanwire/fanwire/codec"
	"golang.org/x/sys/unix"
)

// This file is the client side of the wire protocol for one connection:
// connect completion, handshake, frames, pongs and the close handshake.
// Every method runs on the loop goroutine.

func (l *loop) handle(ev unix.EpollEvent, now int64) {
	slot := ev.Fd
	if slot < 0 || int(slot) >= len(l.conns) {
		return
	}
	c := &l.conns[slot]
	if c.state == stFree || c.fd != ev.Pad {
		return // stale event for a slot closed earlier in this batch
	}
	e := ev.Events
	if c.state == stConnecting || c.repoll {
		if e&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if err := socketError(int(c.fd)); err != nil {
			if c.repoll {
				l.pollFailed(slot, causeOf(err))
			} else {
				l.failConn(slot, causeOf(err))
			}
			return
		}
		if !l.sendRequest(slot) {
			return
		}
	}
	if e&unix.EPOLLOUT != 0 && l.conns[slot].out != nil {
		if !l.flush(slot) {
			return
		}
	}
	if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.readConn(slot, now, e&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// readConn reads until the socket is drained (edge-triggered), parsing in
// the loop's shared buffer; only an incomplete tail is kept per connection.
// A short read means drained, unless the peer has hung up (hup: the event
// said EPOLLRDHUP/HUP/ERR): then the FIN came with the last data and no
// further edge will announce it, so it reads on until EOF or an error.
// (Stopping there left connections of a killed server "open" for ever,
// their missing deliveries counted as lost: the `make chaos` failure.)
func (l *loop) readConn(slot int32, now int64, hup bool) {
	for {
		c := &l.conns[slot]
		k := len(c.in)
		if need := k + 16<<10; need > len(l.buf) {
			l.buf = make([]byte, 2*need)
		}
		n, err := unix.Read(int(c.fd), l.buf[k:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.connError(slot, err)
			return
		}
		if n == 0 {
			l.connEOF(slot)
			return
		}
		if k > 0 {
			copy(l.buf, c.in)
			l.pool.put(c.in)
			c.in = nil
		}
		rest, alive := l.process(slot, l.buf[:k+n], now)
		if !alive {
			return
		}
		if len(rest) > 0 {
			c.in = append(l.pool.get(len(rest)), rest...)
		}
		if k+n < len(l.buf) && !hup {
			return // short read: the socket is drained
		}
	}
}

// process consumes a handshake response and/or frames; it returns the
// unconsumed tail, or alive=false when the connection was closed.
func (l *loop) process(slot int32, data []byte, now int64) (rest []byte, alive bool) {
	c := &l.conns[slot]
	switch l.plan.Transport {
	case TransportSSE:
		return l.processSSE(slot, data, now)
	case TransportPoll:
		return l.processPoll(slot, data, now)
	}
	if l.plan.Dialect == DialectCentrifugo {
		return l.processCentrifugo(slot, data, now)
	}
	if c.state == stHandshake {
		n, alive := l.accept101(slot, data)
		if n == 0 {
			return data, alive
		}
		l.opened(c, now)
		if l.chat != nil {
			l.chatOpened(c, slot)
		}
		data = data[n:]
	}
	return l.frames(slot, data, now)
}

// accept101 checks the upgrade response at the start of data: n > 0 is its
// length; n == 0 with alive means it is still incomplete.
func (l *loop) accept101(slot int32, data []byte) (n int, alive bool) {
	c := &l.conns[slot]
	n, status, err := codec.CheckAcceptResponse(data, c.key[:])
	switch {
	case n == 0 && err == nil && status == 0:
		if len(data) >= maxHandshake {
			l.failConn(slot, CauseProtocol)
			return 0, false
		}
		return 0, true
	case status != 0 && status != 101:
		l.failConnAfter(slot, causeStatusPfx+strconv.Itoa(status), retryAfter(data))
		return 0, false
	case err != nil || n == 0:
		l.failConn(slot, CauseProtocol)
		return 0, false
	}
	return n, true
}

// opened counts a connection as open (subscribed) from now on.
func (l *loop) opened(c *conn, now int64) {
	c.state = stOpen
	l.inflight--
	l.openLocal++
	l.stats.open.Add(1)
	l.stats.established.Add(1)
	l.stats.recordConnect((now - c.since) / 1000)
	if c.down != 0 {
		l.stats.recordBack(c.down, now)
		c.down = 0
	}
}

// frames parses whole frames only (frameLen), so a delivery's fields are
// never split between reads and the parser always sees complete input.
func (l *loop) frames(slot int32, data []byte, now int64) (rest []byte, alive bool) {
	c := &l.conns[slot]
	for len(data) > 0 {
		fl := frameLen(data)
		if fl < 0 {
			break
		}
		if fl > len(data) {
			if fl <= maxFrame {
				break // wait for the rest of the frame
			}
			fl = len(data) // oversized: the parser rejects it from the header
		}
		frame := data[:fl]
		for len(frame) > 0 {
			f, n, perr := c.parser.Next(frame, &l.pcfg)
			if perr != nil {
				l.protocolError(slot, perr.Code)
				return nil, false
			}
			if n == 0 && f.Kind == codec.NeedMore {
				l.protocolError(slot, codec.CloseProtocolError)
				return nil, false
			}
			frame = frame[n:]
			switch f.Kind {
			case codec.DataChunk:
				if l.plan.Dialect != "" {
					if !l.onCentrifugoData(slot, &f, now) {
						return nil, false
					}
					continue
				}
				l.onData(c, &f, now)
			case codec.Ping:
				l.wbuf = codec.AppendMaskedFrame(l.wbuf[:0], codec.OpPong, true, f.Payload, l.maskKey())
				if !l.write(slot, l.wbuf) {
					return nil, false
				}
				l.stats.pings.Add(1)
			case codec.Close:
				l.onServerClose(slot, f.CloseCode, f.CloseReason)
				return nil, false
			}
		}
		data = data[fl:]
	}
	return data, true
}

func (l *loop) onData(c *conn, f *codec.Frame, now int64) {
	l.stats.bytes.Add(int64(len(f.Payload)))
	if l.chat != nil {
		l.chatData(c, f, now)
		return
	}
	if f.First && bytes.HasPrefix(f.Payload, resetPrefix) {
		// {"type":"reset","topic":..,"from":N}: the server says seqs before
		// N are not coming; a jump up to N is announced, not lost silently.
		l.stats.resets.Add(1)
		if from, ok := resetFrom(f.Payload); ok && l.plan.TrackSeq {
			l.noteReset(c, from, now)
			if c.hasSeq && from > c.lastSeq+1 {
				l.stats.announced.Add(int64(from - c.lastSeq - 1))
			}
			c.hasSeq, c.lastSeq = true, from-1
		}
		return
	}
	if f.Fin {
		l.stats.messages.Add(1)
		c.msgs++
		l.lastMsg = now
	}
	if !f.First || !l.plan.TrackSeq {
		return
	}
	l.track(c, f.Payload, now)
}

// track checks a delivery's seq against the last one and records its latency.
func (l *loop) track(c *conn, payload []byte, now int64) {
	seq, sent, ok := envelopeFields(payload)
	if !ok {
		return
	}
	l.seen(c, seq, sent, payload, now)
}

// seen is the oracle for one delivery: seq contiguity per connection (a
// jump is a gap unless payload marks it conflated) and latency from sent.
func (l *loop) seen(c *conn, seq uint64, sent int64, payload []byte, now int64) {
	switch {
	case !c.hasSeq:
		c.hasSeq = true
		c.lastSeq = seq
	case seq == c.lastSeq+1:
		c.lastSeq = seq
	case seq > c.lastSeq+1 && bytes.Contains(payload, conflatedMark):
		l.stats.announced.Add(int64(seq - c.lastSeq - 1)) // "skipped":[a,b]
		c.lastSeq = seq
	case seq > c.lastSeq+1:
		l.stats.gaps.Add(int64(seq - c.lastSeq - 1))
		c.lastSeq = seq
	default:
		l.stats.dups.Add(1)
	}
	if sent > 0 {
		l.stats.recordLatency((now - sent) / 1000)
	}
}

// onServerClose finishes our close handshake, or answers the server's.
func (l *loop) onServerClose(slot int32, code codec.CloseCode, reason []byte) {
	c := &l.conns[slot]
	if c.state == stClosing {
		l.stats.closedClean.Add(1)
		l.closeConn(slot)
		return
	}
	reply := code
	if !codec.ValidCloseCode(reply) {
		reply = codec.CloseNormal
	}
	l.wbuf = codec.AppendMaskedCloseFrame(l.wbuf[:0], reply, "", l.maskKey())
	_, _ = unix.Write(int(c.fd), l.wbuf) // best effort, we close right after
	l.stats.closedByServerAs("close_" + strconv.Itoa(int(code)))
	l.reconnect(slot, reconnectHint(reason))
	l.closeConn(slot)
}

// protocolError: the server broke the protocol; tell it and drop the conn.
func (l *loop) protocolError(slot int32, code codec.CloseCode) {
	c := &l.conns[slot]
	l.wbuf = codec.AppendMaskedCloseFrame(l.wbuf[:0], code, "", l.maskKey())
	_, _ = unix.Write(int(c.fd), l.wbuf)
	l.stats.closedByServerAs("protocol_error")
	l.closeConn(slot)
}

// beginClose sends our close frame; the server's reply (or the close
// timeout) ends the connection.
func (l *loop) beginClose(slot int32, now int64) {
	c := &l.conns[slot]
	if l.plan.Transport == TransportSSE || l.plan.Transport == TransportPoll { // no close handshake: hang up
		l.stats.closedClean.Add(1)
		l.closeConn(slot)
		return
	}
	if l.chat != nil {
		l.chatClosed(c, slot) // no more publishes on a closing connection
	}
	c.state = stClosing
	c.since = now
	l.stats.open.Add(-1)
	l.openLocal--
	l.closing++
	l.wbuf = codec.AppendMaskedCloseFrame(l.wbuf[:0], codec.CloseNormal, "", l.maskKey())
	l.write(slot, l.wbuf)
}

// write sends b now, queueing any unsent tail until EPOLLOUT. It returns
// false when the connection was closed because of a write error.
// sendRequest moves a connection to stHandshake and writes its upgrade (or
// SSE) request. On a socket still connecting the write meets EAGAIN and
// the request waits in c.out for EPOLLOUT; it reports false when the
// connection failed (and was handled).
func (l *loop) sendRequest(slot int32) bool {
	c := &l.conns[slot]
	if c.state == stConnecting {
		c.state = stHandshake
	}
	c.repoll = false
	path := l.pathOf(c)
	cursor := l.pollCursor(slot)
	if c.resume && len(cursor) == 0 {
		path = resumePath(path, c.lastSeq)
	}
	switch l.plan.Transport {
	case TransportSSE:
		l.wbuf = appendSSERequest(l.wbuf[:0], l.tgt.host, path)
	case TransportPoll:
		l.wbuf = appendPollRequest(l.wbuf[:0], l.tgt.host, path, cursor)
	default:
		l.wbuf = codec.AppendUpgradeRequest(l.wbuf[:0], l.tgt.host, path, c.key[:])
	}
	return l.write(slot, l.wbuf)
}

func (l *loop) write(slot int32, b []byte) bool {
	c := &l.conns[slot]
	if c.out != nil {
		c.out = append(c.out, b...)
		return true
	}
	n, err := unix.Write(int(c.fd), b)
	for err == unix.EINTR {
		n, err = unix.Write(int(c.fd), b)
	}
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		l.connError(slot, err)
		return false
	}
	if n < len(b) {
		c.out = append(l.pool.get(len(b)-n), b[n:]...)
	}
	return true
}

func (l *loop) flush(slot int32) bool {
	c := &l.conns[slot]
	n, err := unix.Write(int(c.fd), c.out)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil {
		l.connError(slot, err)
		return false
	}
	if n == len(c.out) {
		l.pool.put(c.out)
		c.out = nil
	} else {
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	return true
}

func (l *loop) connError(slot int32, err error) {
	switch l.conns[slot].state {
	case stConnecting, stHandshake:
		l.failConn(slot, causeOf(err))
		return
	case stOpen:
		l.stats.closedByServerAs(causeOf(err))
		l.reconnect(slot, -1)
	case stClosing:
		l.stats.closedNoReply.Add(1)
	}
	l.closeConn(slot)
}

func (l *loop) connEOF(slot int32) {
	switch l.conns[slot].state {
	case stConnecting, stHandshake:
		l.failConn(slot, CauseReset)
		return
	case stOpen:
		l.stats.closedByServerAs("eof")
		l.reconnect(slot, -1)
	case stClosing:
		l.stats.closedNoReply.Add(1)
	}
	l.closeConn(slot)
}
