package server

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/js"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
)

// wsPath is the only path that upgrades.
const wsPath = "/ws"

// onTraffic consumes every complete unit (handshake, frame, frame chunk) of
// the bytes gnet has buffered, so gnet keeps no ring buffer for idle conns.
// Replies are gathered in l.out and written once at the end.
func (l *loop) onTraffic(c *conn) gnet.Action {
	l.now = l.node.clock()
	buf, _ := c.gc.Peek(-1)
	switch c.phase {
	case phaseClosing, phaseClosed:
		_, _ = c.gc.Discard(len(buf)) // also drops everything when len(buf) == 0
		return gnet.None
	case phaseHandshake:
		if c.kind == kindPost { // a POST waiting for its answer (post.go) reads nothing more
			_, _ = c.gc.Discard(len(buf))
			return gnet.None
		}
	case phaseOpen:
		if c.kind != kindWS {
			_, _ = c.gc.Discard(len(buf)) // a stream's client has nothing more to say
			return gnet.None
		}
	}
	off := 0
	if c.phase == phaseHandshake {
		// Until the upgrade is done lastRead stays the accept time: the
		// handshake deadline is absolute, a trickled request cannot extend it.
		if c.flags&flagProxyAwait != 0 {
			n, action := l.proxyHeader(c, buf)
			if n == 0 || action != gnet.None {
				return action
			}
			off = n
		}
		n, action := l.handshake(c, buf[off:])
		if action != gnet.None {
			return action
		}
		if n == 0 {
			if off > 0 { // the PROXY header is done; the request is still on its way
				_, _ = c.gc.Discard(off)
			}
			return gnet.None
		}
		off += n
		if c.kind != kindWS {
			off = len(buf) // nothing after a stream's request is read
		}
	}
	c.lastRead = l.now
	c.flags &^= flagPinged
	off, action := l.frames(c, buf, off)
	if c.phase != phaseOpen && c.phase != phaseHandshake {
		off = len(buf) // closing: the rest is ignored
	}
	if c.phase == phaseOpen {
		l.trackPartial(c, off < len(buf))
	}
	if off > 0 { // gnet's Discard(0) would drop everything
		_, _ = c.gc.Discard(off)
	}
	if len(l.out) > 0 {
		out := l.out
		l.out = l.out[:0]
		if c.phase == phaseOpen || action == gnet.Close {
			c.write(out)
		}
	}
	if cap(l.out) > 1<<20 {
		l.out = nil // an echo of a huge message: don't keep its buffer
	}
	if cap(l.catchUp) > 1<<20 {
		l.catchUp = nil // a large replay: don't keep its buffer either
	}
	return action
}

// handshake answers the upgrade request at the start of buf. It returns the
// bytes consumed, 0 while the request is incomplete.
func (l *loop) handshake(c *conn, buf []byte) (int, gnet.Action) {
	req, n, herr := codec.ParseRequest(buf, l.node.cfg.MaxHandshake)
	if herr == nil && n == 0 {
		return 0, gnet.None
	}
	if herr == nil && string(req.Path) == js.Path {
		return n, l.serveClientScript(c, &req)
	}
	if herr == nil && isPostPath(req.Path) {
		return l.servePost(c, &req, buf, n) // POST /publish, /presence (post.go)
	}
	kind, known := streamKind(req.Path) // /ws, or /sse and /poll (stream.go)
	if herr == nil && !known {
		herr = &codec.HTTPError{Status: 404, Message: "not found: WebSocket endpoint is " + wsPath + " (SSE: " + ssePath + ", long-polling: " + pollPath + ")"}
	}
	if herr == nil && kind == kindWS {
		herr = req.Check()
	} else if herr == nil {
		herr = checkStreamRequest(&req)
	}
	if herr == nil {
		herr = l.checkOrigin(req.Origin)
	}
	var op wire.Op
	if herr == nil && req.Deflate.Malformed && l.node.cfg.Compression.Enabled {
		herr = codec.ErrMalformedExtensions
	}
	if herr == nil {
		op, herr = l.urlTopics(req.Query)
	}
	if herr == nil && kind != kindWS {
		herr = applyLastEventID(&op, req.LastEventID)
	}
	var ident *auth.Identity
	if herr == nil {
		var wait bool
		if ident, herr, wait = l.handshakeAuth(c, &op, &req); wait {
			return 0, gnet.None // parked until the token's key is fetched
		}
	}
	if herr == nil && ident != nil {
		herr = l.admitUser(c, ident.User) // users.go: the per-user limit
	}
	if herr != nil {
		l.met.countHandshakeFailure(herr.Status)
		c.setReason(reasonHandshakeFailed)
		_, _ = c.gc.Write(appendTransportError(l.out[:0], kind, herr))
		return n, gnet.Close
	}
	c.ident = ident
	c.kind = kind
	for _, t := range op.Topics {
		l.subscribe(c, t, resumeFor(&op, t), kind != kindWS) // streams get an ack event for topics served later
	}
	c.phase = phaseOpen
	l.upgraded(c)
	l.logUpgrade(c)
	if kind != kindWS {
		sop := op // openStream keeps a pointer: only streams pay for a heap copy
		sop.Topics = slices.Clone(op.Topics)
		return n, l.openStream(c, &sop)
	}
	// The subscriptions are in effect before the 101 goes out (in worker
	// mode, a topic the worker does not follow yet once it is primed); their
	// snapshots or replays follow it.
	var out []byte
	if l.acceptDeflate(c, &req) {
		out = codec.AppendAcceptDeflateResponse(l.out[:0], req.Key, req.Deflate)
	} else {
		out = codec.AppendAcceptResponse(l.out[:0], req.Key)
	}
	out = append(out, l.catchUp...)
	l.catchUp = l.catchUp[:0]
	c.write(out)
	l.out = out[:0] // keep the buffer for the next 101
	return n, gnet.None
}

// resumeFor is the resume point op asks for topic t.
func resumeFor(op *wire.Op, t string) resume {
	since, ok := op.Since[t]
	return resume{since: since, has: ok, epoch: op.Epochs[t], delta: op.Delta != ""}
}

// urlTopics reads ?topics=a,b (repeatable) and the resume points
// ?since=a:41&epochs=a:E from the upgrade URL. It reads the query like
// url.ParseQuery (the same errors) without building its map: the upgrade
// path costs one string for the whole query and reuses the loop's scratch
// slices, instead of a map, its value slices and a split per connection.
func (l *loop) urlTopics(rawQuery []byte) (wire.Op, *codec.HTTPError) {
	var op wire.Op
	if len(rawQuery) == 0 {
		return op, nil
	}
	params, err := parseQueryInto(l.query[:0], string(rawQuery))
	l.query = params[:0]
	if err != nil {
		return op, &codec.HTTPError{Status: 400, Message: "bad query string: " + err.Error()}
	}
	op.Topics = l.topicNames[:0] // valid until the next upgrade on this loop
	for _, p := range params {
		if p.key != "topics" {
			continue
		}
		for v := p.value; ; {
			t, rest, more := strings.Cut(v, ",")
			if t == "" {
				return op, &codec.HTTPError{Status: 400, Message: "invalid topics: empty topic name (want topics=a,b with 1-128 characters of [A-Za-z0-9_.:-] each)"}
			}
			if !wire.ValidTopic(t) {
				return op, &codec.HTTPError{Status: 400, Message: "invalid topic " + t + ": want 1-128 characters of [A-Za-z0-9_.:-]"}
			}
			op.Topics = append(op.Topics, t)
			if !more {
				break
			}
			v = rest
		}
	}
	l.topicNames = op.Topics[:0]
	if len(op.Topics) > l.node.cfg.MaxTopicsPerConn {
		return op, &codec.HTTPError{Status: 400, Message: "too many topics"}
	}
	var since, epochs, delta []string // rare: only resuming or delta clients allocate
	token := false
	for _, p := range params {
		switch p.key {
		case "token":
			if !token { // the first ?token= wins
				op.Token, token = p.value, true
			}
		case "since":
			since = append(since, p.value)
		case "epochs":
			epochs = append(epochs, p.value)
		case "delta":
			delta = append(delta, p.value)
		}
	}
	if op.Since, op.Epochs, err = wire.ParseResume(since, epochs); err != nil {
		return op, &codec.HTTPError{Status: 400, Message: err.Error()}
	}
	if op.Delta, err = wire.ParseDelta(delta); err != nil {
		return op, &codec.HTTPError{Status: 400, Message: err.Error()}
	}
	return op, nil
}

// queryParam is one key=value of a query string, unescaped.
type queryParam struct{ key, value string }

// parseQueryInto appends the parameters of query to dst in order, with
// url.ParseQuery's rules and first error (semicolons are rejected, empty
// parts skipped, a part with a bad escape dropped). Unescaping allocates only
// for a part that has a '%' or '+'.
func parseQueryInto(dst []queryParam, query string) ([]queryParam, error) {
	var err error
	for query != "" {
		var part string
		part, query, _ = strings.Cut(query, "&")
		if strings.Contains(part, ";") {
			if err == nil {
				err = errQuerySemicolon
			}
			continue
		}
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		if err1 == nil {
			v, err1 = url.QueryUnescape(v)
		}
		if err1 != nil {
			if err == nil {
				err = err1
			}
			continue
		}
		dst = append(dst, queryParam{k, v})
	}
	return dst, err
}

var errQuerySemicolon = errors.New("invalid semicolon separator in query")

// frames parses WebSocket frames from buf[off:] and returns how far it got.
func (l *loop) frames(c *conn, buf []byte, off int) (int, gnet.Action) {
	if off >= len(buf) || c.phase != phaseOpen {
		return off, gnet.None
	}
	p := l.loadParser(c)
	off, action := l.parse(c, &p, buf, off)
	l.keepParser(c, &p)
	return off, action
}

func (l *loop) parse(c *conn, p *codec.Parser, buf []byte, off int) (int, gnet.Action) {
	for off < len(buf) && c.phase == phaseOpen {
		f, n, perr := p.Next(buf[off:], &l.parser)
		if perr != nil {
			c.fail(perr.Code, perr.Reason)
			return len(buf), gnet.None
		}
		off += n
		switch f.Kind {
		case codec.NeedMore:
			return off, gnet.None
		case codec.DataChunk:
			l.dataChunk(c, &f)
		case codec.Ping:
			if l.allowMessage(c) {
				l.out = codec.AppendFrame(l.out, codec.OpPong, f.Payload)
			}
		case codec.Pong:
			// lastRead is already refreshed: that is all a pong is for.
		case codec.Close:
			// Echo the code (RFC 6455 5.5.1) and close first, as a server should.
			if f.CloseCode == codec.CloseNoStatus {
				l.out = codec.AppendFrame(l.out, codec.OpClose, nil)
			} else {
				l.out = codec.AppendCloseFrame(l.out, f.CloseCode, "")
				l.met.countCloseCode(f.CloseCode)
			}
			c.setReason(reasonNormal)
			c.phase = phaseClosing
			l.dropSubs(c)
			c.releaseMessage()
			c.write(l.out) // replies so far, then our close frame
			l.out = l.out[:0]
			if c.gc.OutboundBuffered() == 0 {
				return len(buf), gnet.Close
			}
			// Output still waits (gnet would drop it on close): the sweep
			// closes once it is written. The handshake is done on the
			// client's side, so no close timeout is owed: lastRead is set
			// back by it (sweep.go).
			c.lastRead = l.now - millis(closeTimeout)
			return len(buf), gnet.None
		}
	}
	return off, gnet.None
}

// dataChunk assembles messages; a message that arrives whole in one read is
// handled in place without copying.
func (l *loop) dataChunk(c *conn, f *codec.Frame) {
	if f.First && f.Op == codec.OpBinary && !l.node.cfg.Echo {
		c.fail(codec.CloseUnsupportedData, "binary messages are not supported")
		return
	}
	if f.First && f.Fin {
		if l.allowMessage(c) {
			l.complete(c, f.Op, f.Compressed, f.Payload)
		}
		return
	}
	msg := c.partialMessage()
	msg.B = append(msg.B, f.Payload...)
	if f.Fin {
		if l.allowMessage(c) {
			l.complete(c, f.Op, f.Compressed, msg.B)
		}
		c.releaseMessage()
	}
}

// complete hands a whole message on, inflated first if it was compressed.
func (l *loop) complete(c *conn, op codec.OpCode, compressed bool, payload []byte) {
	if compressed {
		var ok bool
		if payload, ok = l.inflate(c, op, payload); !ok {
			return
		}
	}
	l.message(c, op, payload)
}

// message handles one complete client message.
func (l *loop) message(c *conn, op codec.OpCode, payload []byte) {
	if l.node.cfg.Echo {
		l.out = l.appendReply(l.out, c, op, payload)
		return
	}
	req, fast := wire.ScanPublish(payload, l.pub.intern) // publish.go: no allocation
	var oerr *wire.OpError
	if !fast {
		req, oerr = wire.ParseOp(payload)
	}
	if oerr != nil {
		if req.ID != 0 {
			l.replyErrorID(oerr, req.ID) // a publish or presence op: answer its id
		} else {
			l.replyError(oerr)
		}
		return
	}
	switch req.Op {
	case wire.OpSubscribe:
		if c.subLen()+l.newTopics(c, req.Topics) > l.node.cfg.MaxTopicsPerConn {
			l.replyError(&wire.OpError{Code: wire.CodeTooManyTopics,
				Message: "subscription limit reached: at most " + strconv.Itoa(l.node.cfg.MaxTopicsPerConn) + " topics per connection"})
			return
		}
		if t, ok := l.forbidden(c, req.Topics); !ok {
			l.replyError(&wire.OpError{Code: wire.CodeForbidden, Message: forbiddenText(c.ident, t)})
			return
		}
		// Topics waiting to be primed (worker mode) are acknowledged on
		// their own once served; the rest now.
		topics, epochs, seqs := make([]string, 0, len(req.Topics)), make([]string, 0, len(req.Topics)), make([]uint64, 0, len(req.Topics))
		for _, t := range req.Topics {
			if epoch, after, ready := l.subscribe(c, t, resumeFor(&req, t), true); ready {
				topics, epochs, seqs = append(topics, t), append(epochs, epoch), append(seqs, after)
			}
		}
		if len(topics) > 0 || len(req.Topics) == 0 {
			l.out = appendTextFrame(l.out, func(b []byte) []byte {
				b = wire.AppendSubscribed(b, topics, epochs, seqs)
				if req.Delta != "" {
					b = wire.AppendDeltaTopics(b, l.deltaTopics(c, topics))
				}
				return b
			})
		}
		l.out = append(l.out, l.catchUp...) // snapshots and replays follow the ack
		l.catchUp = l.catchUp[:0]
	case wire.OpUnsubscribe:
		for _, t := range req.Topics {
			l.unsubscribe(c, t)
		}
		l.out = appendTextFrame(l.out, func(b []byte) []byte { return wire.AppendAck(b, "unsubscribed", req.Topics, nil) })
	case wire.OpRefresh:
		l.refresh(c, req.Token)
	case wire.OpPublish:
		l.clientPublish(c, &req)
	case wire.OpPresence, wire.OpPresenceStats:
		l.presenceOp(c, &req)
	}
}

// newTopics counts the topics c is not yet subscribed to.
func (l *loop) newTopics(c *conn, topics []string) int {
	n := 0
	for _, t := range topics {
		if lt := l.topics[t]; lt == nil || !c.subscribedTo(lt) {
			n++
		}
	}
	return n
}

func (l *loop) replyError(e *wire.OpError) {
	l.out = appendTextFrame(l.out, func(b []byte) []byte { return wire.AppendError(b, e) })
}

// appendTextFrame appends a text frame whose payload is produced by body.
// The payload is built after a maximal header and moved down if the header is shorter.
func appendTextFrame(dst []byte, body func([]byte) []byte) []byte {
	const maxHdr = 10
	start := len(dst)
	dst = append(dst, make([]byte, maxHdr)...)
	dst = body(dst)
	n := len(dst) - start - maxHdr
	hdr := codec.AppendHeader(make([]byte, 0, maxHdr), codec.OpText, true, n)
	copy(dst[start:], hdr)
	copy(dst[start+len(hdr):], dst[start+maxHdr:])
	return dst[:start+len(hdr)+n]
}
