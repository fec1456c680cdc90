package server

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Server-Sent Events (GET /sse) and long-polling (GET /poll) on the
// WebSocket listener. A stream is a conn like any other: subscribed in the
// handshake, fed by the same drain passes, held to the same pending-bytes
// cap, slow-consumer rules, sweep and shutdown pacing. Only the encoding
// differs: conn.kind picks it, and this file holds it.
//
// The shared part of an SSE event ("data: <envelope>\n\n") is built once
// per publish by the hub, only for topics with SSE subscribers
// (sharedFrame.sse). The per-connection part is the event id, a cursor of
// every topic of the stream ("a=42@E1,b=7@E2"), so that a native EventSource
// resumes exactly through Last-Event-ID. Rare paths (catch-up, conflation,
// acks) build WebSocket frames as usual and streamWrite re-encodes them.

// Transports (conn.kind).
const (
	kindWS   uint8 = iota // WebSocket (GET /ws)
	kindSSE               // Server-Sent Events (GET /sse)
	kindPoll              // long-polling (GET /poll)
)

const (
	ssePath  = "/sse"
	pollPath = "/poll"
	// maxEventID bounds an SSE event id. Topics whose position does not
	// fit are left out of it: after a drop they resume from the stream
	// URL's since/epochs (duplicates are possible, never a gap).
	maxEventID = 1024
)

// streamKind maps a request path to a transport; known is false for other paths.
func streamKind(path []byte) (kind uint8, known bool) {
	switch string(path) {
	case wsPath:
		return kindWS, true
	case ssePath:
		return kindSSE, true
	case pollPath:
		return kindPoll, true
	}
	return kindWS, false
}

var errStreamMethod = &codec.HTTPError{Status: 405, Message: "method not allowed: " + ssePath + " and " + pollPath + " take GET"}

// checkStreamRequest validates an SSE or long-poll request: GET with a Host.
func checkStreamRequest(r *codec.Request) *codec.HTTPError {
	switch {
	case string(r.Method) != "GET":
		return errStreamMethod
	case len(r.Host) == 0:
		return codec.ErrNoHost
	}
	return nil
}

// appendTransportError is appendHandshakeError for a transport: streams'
// answers carry CORS, so that a page on another origin can read the status.
func appendTransportError(dst []byte, kind uint8, herr *codec.HTTPError) []byte {
	start := len(dst)
	dst = appendHandshakeError(dst, herr)
	if kind == kindWS {
		return dst
	}
	eol := start + bytes.Index(dst[start:], []byte("\r\n")) + 2
	const acao = "Access-Control-Allow-Origin: *\r\n"
	dst = append(dst, acao...)
	copy(dst[eol+len(acao):], dst[eol:len(dst)-len(acao)])
	copy(dst[eol:], acao)
	return dst
}

// applyLastEventID lets an EventSource's Last-Event-ID (one of our cursors)
// override the URL's resume points of the topics it names.
func applyLastEventID(op *wire.Op, id []byte) *codec.HTTPError {
	if len(id) == 0 {
		return nil
	}
	for len(id) > 0 {
		item := id
		if i := bytes.IndexByte(id, ','); i >= 0 {
			item, id = id[:i], id[i+1:]
		} else {
			id = nil
		}
		name, rest, ok := bytes.Cut(item, []byte("="))
		num, epoch, _ := bytes.Cut(rest, []byte("@"))
		seq, err := strconv.ParseUint(string(num), 10, 64)
		if !ok || err != nil || !wire.ValidTopicBytes(name) {
			return &codec.HTTPError{Status: 400, Message: "bad Last-Event-ID: want topic=seq@epoch,... as sent in this node's event ids"}
		}
		t := string(name)
		if !containsString(op.Topics, t) {
			continue // not asked for in this stream's URL
		}
		if op.Since == nil {
			op.Since = make(map[string]uint64)
		}
		op.Since[t] = seq
		if len(epoch) == 0 {
			delete(op.Epochs, t)
			continue
		}
		if op.Epochs == nil {
			op.Epochs = make(map[string]string)
		}
		op.Epochs[t] = string(epoch)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	sseHead = []byte("HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/event-stream\r\n" +
		"Cache-Control: no-cache\r\n" +
		"X-Accel-Buffering: no\r\n" +
		"Access-Control-Allow-Origin: *\r\n" +
		"Connection: close\r\n\r\n")
	pollHead = "HTTP/1.1 200 OK\r\n" +
		"Content-Type: application/json\r\n" +
		"Cache-Control: no-store\r\n" +
		"Access-Control-Allow-Origin: *\r\n" +
		"Connection: close\r\n" +
		"Content-Length: "
	sseHeartbeat = []byte(":\n\n")
)

// openStream answers a subscribed stream request. SSE: the head, an
// "event: subscribed" naming each topic's epoch and starting seq (so a
// client behind a buffering proxy can tell within a deadline that nothing
// arrives), then the catch-up. Long-poll: the catch-up at once if there is
// one, or the starting positions at once if a topic had no since; otherwise
// the request is held for the first delivery or the timeout.
func (l *loop) openStream(c *conn, op *wire.Op) gnet.Action {
	catchUp := l.catchUp
	l.catchUp = l.catchUp[:0]
	if c.kind == kindSSE {
		out := append(l.out[:0], sseHead...)
		out = l.appendSubscribedEvent(out, c, l.startPositions(c, catchUp, &catchUpStart{op: op}))
		clear(l.stream.pos)
		l.out = out[:0]
		_, _ = c.gc.Write(out)
	}
	if len(catchUp) > 0 {
		l.streamWrite(c, catchUp, &catchUpStart{op: op})
	}
	l.catchUp = catchUp[:0]
	if c.kind == kindPoll && c.phase == phaseOpen && l.freshTopic(op) {
		l.answerPollEmpty(c) // its starting positions are news to the client
	}
	return gnet.None
}

// freshTopic reports whether a request names a topic without a resume point.
func (l *loop) freshTopic(op *wire.Op) bool {
	for _, t := range op.Topics {
		if _, ok := op.Since[t]; !ok {
			return true
		}
	}
	return false
}

// appendSubscribedEvent is the ack of a stream's URL subscriptions, as an
// SSE event. Its id is the stream's starting cursor, so a native
// EventSource cut before any delivery still resumes from there.
func (l *loop) appendSubscribedEvent(out []byte, c *conn, pos []streamPos) []byte {
	n := c.subLen()
	topics, epochs, seqs := make([]string, n), make([]string, n), make([]uint64, n)
	for i, ref := range c.allSubs() {
		topics[i], epochs[i], seqs[i] = ref.lt.topic.name, ref.lt.topic.epoch, ref.lt.afterOf(&ref.lt.subs[ref.pos])
	}
	out = append(out, "event: subscribed\n"...)
	if mark := len(out); len(pos) > 0 {
		out = append(out, "id: "...)
		out = appendCursor(out, pos, -1)
		if len(out) == mark+len("id: ") {
			out = out[:mark] // nothing known yet: keep the id the client has
		} else {
			out = append(out, '\n')
		}
	}
	out = append(out, "data: "...)
	out = wire.AppendSubscribed(out, topics, epochs, seqs)
	return append(out, "\n\n"...)
}

// catchUpStart names where the topics of a catch-up started: their resume
// points, until their first catch-up event.
type catchUpStart struct {
	op   *wire.Op // the handshake's: every topic
	name string   // resolveParked's: one topic
	r    resume
}

func (s *catchUpStart) of(name string) resume {
	if s.op != nil {
		return resumeFor(s.op, name)
	}
	if name == s.name {
		return s.r
	}
	return resume{}
}

// streamPos is one topic's position in a stream: the last seq the client
// has (known), in epoch.
type streamPos struct {
	lt      *loopTopic
	seq     uint64
	epoch   string
	known   bool
	started bool // catch-up: set to its resume point already
}

// streamScratch is a loop's buffers for stream encodings, reused across conns.
type streamScratch struct {
	pos  []streamPos
	buf  []byte
	hdr  []byte
	iov  [][]byte
	span []int32 // start/end pairs of the per-event parts in buf
}

// loadPositions fills l.stream.pos with c's topics at their subscribers' seqs.
func (l *loop) loadPositions(c *conn) []streamPos {
	pos := l.stream.pos[:0]
	for _, ref := range c.allSubs() {
		pos = append(pos, streamPos{lt: ref.lt, seq: ref.lt.afterOf(&ref.lt.subs[ref.pos]), epoch: ref.lt.topic.epoch, known: true})
	}
	l.stream.pos = pos
	return pos
}

// storePositions writes delivered seqs back to c's subscribers (their
// "after": nothing up to it is sent again) and forgets the loop's pointers.
func (l *loop) storePositions(c *conn, pos []streamPos) {
	for i, ref := range c.allSubs() {
		if s := &ref.lt.subs[ref.pos]; i < len(pos) && pos[i].lt == ref.lt && pos[i].known && pos[i].seq > ref.lt.afterOf(s) {
			ref.lt.setAfter(s, pos[i].seq)
		}
	}
	clear(pos)
}

func findPos(pos []streamPos, lt *loopTopic) int {
	for i := range pos {
		if pos[i].lt == lt {
			return i
		}
	}
	return -1
}

func findPosName(pos []streamPos, name []byte) int {
	for i := range pos {
		if pos[i].lt.topic.name == string(name) {
			return i
		}
	}
	return -1
}

// appendCursor appends the event id: every known position, pos[first]'s
// first, as long as they fit in maxEventID bytes.
func appendCursor(dst []byte, pos []streamPos, first int) []byte {
	start := len(dst)
	if first >= 0 && pos[first].known {
		dst = appendCursorItem(dst, pos[first].lt.topic.name, pos[first].seq, pos[first].epoch, start)
	}
	for i := range pos {
		if i != first && pos[i].known {
			dst = appendCursorItem(dst, pos[i].lt.topic.name, pos[i].seq, pos[i].epoch, start)
		}
	}
	return dst
}

// appendCursorItem appends ",topic=seq@epoch" (no comma first; no @ without
// an epoch) unless the cursor started at start would outgrow maxEventID.
func appendCursorItem(dst []byte, name string, seq uint64, epoch string, start int) []byte {
	mark := len(dst)
	if mark > start {
		dst = append(dst, ',')
	}
	dst = append(dst, name...)
	dst = append(dst, '=')
	dst = strconv.AppendUint(dst, seq, 10)
	if epoch != "" {
		dst = append(dst, '@')
		dst = append(dst, epoch...)
	}
	if len(dst)-start > maxEventID {
		return dst[:mark]
	}
	return dst
}

// appendPositionsJSON appends ,"since":{...},"epochs":{...} of the known positions.
func appendPositionsJSON(dst []byte, pos []streamPos) []byte {
	dst = append(dst, `,"since":{`...)
	n := 0
	for i := range pos {
		if pos[i].known {
			if n++; n > 1 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, pos[i].lt.topic.name...)
			dst = append(dst, `":`...)
			dst = strconv.AppendUint(dst, pos[i].seq, 10)
		}
	}
	dst = append(dst, `},"epochs":{`...)
	n = 0
	for i := range pos {
		if pos[i].known && pos[i].epoch != "" {
			if n++; n > 1 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, pos[i].lt.topic.name...)
			dst = append(dst, `":"`...)
			dst = append(dst, pos[i].epoch...)
			dst = append(dst, '"')
		}
	}
	return append(dst, '}')
}

// appendSSEData appends "data: <env>\n\n". A line break in env (JSON
// whitespace of the published value) starts a new data line, which
// EventSource joins back with "\n".
func appendSSEData(dst, env []byte) []byte {
	dst = append(dst, "data: "...)
	for len(env) > 0 {
		i := bytes.IndexAny(env, "\r\n")
		if i < 0 {
			dst = append(dst, env...)
			break
		}
		dst = append(dst, env[:i]...)
		dst = append(dst, "\ndata: "...)
		if env[i] == '\r' && i+1 < len(env) && env[i+1] == '\n' {
			i++
		}
		env = env[i+1:]
	}
	return append(dst, "\n\n"...)
}

// streamDeliver writes live deliveries to a stream conn: for SSE one event
// each (its cursor id, then the shared data), in one writev; for a held
// long-poll the answer, which ends the request. Live positions are the
// subscribers' "after", moved past each delivery.
func (l *loop) streamDeliver(c *conn, ds []delivery) {
	st := &l.stream
	if c.kind == kindPoll {
		body := append(st.buf[:0], `{"messages":[`...)
		for i, d := range ds {
			if i > 0 {
				body = append(body, ',')
			}
			env, at := liveMessage(d.f)
			body = append(body, env...)
			if k := subIndex(c, d.lt); k >= 0 {
				s := c.subEntry(k)
				d.lt.setAfter(s, max(d.lt.afterOf(s), at))
			}
		}
		body = append(body, ']')
		body = appendPositionsJSON(body, l.loadPositions(c))
		body = append(body, '}')
		clear(l.stream.pos)
		st.buf = body[:0]
		l.answerPoll(c, body)
		return
	}
	buf, span := st.buf[:0], st.span[:0]
	for _, d := range ds {
		k := subIndex(c, d.lt)
		if k < 0 {
			continue // cannot happen: a delivery is for a subscribed topic
		}
		env, at := liveMessage(d.f)
		s := c.subEntry(k)
		d.lt.setAfter(s, max(d.lt.afterOf(s), at))
		a := len(buf)
		if d.f.reset {
			buf = append(buf, "event: reset\n"...)
		}
		buf = append(buf, "id: "...)
		buf = appendLiveCursor(buf, c, k)
		buf = append(buf, '\n')
		if len(d.f.sse) == 0 { // a reset, or published before the first SSE subscriber came: encode here
			buf = appendSSEData(buf, env)
		}
		span = append(span, int32(a), int32(len(buf)))
	}
	iov := st.iov[:0]
	j := 0
	for _, d := range ds {
		if j >= len(span) {
			break
		}
		iov = append(iov, buf[span[j]:span[j+1]])
		if len(d.f.sse) > 0 {
			iov = append(iov, d.f.sse)
		}
		j += 2
	}
	st.buf, st.span = buf[:0], span[:0]
	if len(iov) == 1 {
		_, _ = c.gc.Write(iov[0])
	} else if len(iov) > 0 {
		c.writevRaw(iov)
	}
	clear(iov)
	st.iov = iov[:0]
	c.checkPending()
}

// liveMessage is the JSON a live frame carries and the position it leaves
// its topic at: a delivery's seq, or for a bus gap's reset ("continues at
// seq") the seq before.
func liveMessage(f *sharedFrame) (env []byte, at uint64) {
	if f.reset {
		_, env, _ = nextFrame(f.b)
		return env, f.seq - 1
	}
	return f.envelope(), f.seq
}

// subIndex is the index of lt in c's subscriptions, or -1.
func subIndex(c *conn, lt *loopTopic) int {
	if c.sub == lt {
		return 0 // the common case, a stream on one topic: no side table
	}
	if c.state&stateMoreSubs != 0 {
		for i, ref := range c.loop.moreSubs[c] {
			if ref.lt == lt {
				return i + 1
			}
		}
	}
	return -1
}

// appendLiveCursor is appendCursor over c's live positions, subscription first's first.
func appendLiveCursor(dst []byte, c *conn, first int) []byte {
	start := len(dst)
	ref := c.subAt(first)
	dst = appendCursorItem(dst, ref.lt.topic.name, ref.lt.afterOf(&ref.lt.subs[ref.pos]), ref.lt.topic.epoch, start)
	for i, ref := range c.allSubs() {
		if i != first {
			dst = appendCursorItem(dst, ref.lt.topic.name, ref.lt.afterOf(&ref.lt.subs[ref.pos]), ref.lt.topic.epoch, start)
		}
	}
	return dst
}

// writevRaw writes iov in as few syscalls as the kernel allows.
func (c *conn) writevRaw(iov [][]byte) {
	const iovMax = 1024
	for len(iov) > 0 && c.phase == phaseOpen {
		n := min(len(iov), iovMax)
		_, _ = c.gc.Writev(iov[:n])
		iov = iov[n:]
	}
}

// streamWrite re-encodes WebSocket frames built for c (catch-up,
// conflated messages, acks, pings) into c's transport and writes them.
// start, if set, gives the resume points of the topics the frames catch up.
func (l *loop) streamWrite(c *conn, frames []byte, start *catchUpStart) {
	if c.phase != phaseOpen {
		return
	}
	pos := l.startPositions(c, frames, start)
	st := &l.stream
	out := st.buf[:0]
	if c.kind == kindPoll {
		out = append(out, `{"messages":[`...)
	}
	n := 0
	for b := frames; len(b) > 0; {
		op, payload, rest := nextFrame(b)
		b = rest
		if op == codec.OpPing && c.kind == kindSSE {
			out = append(out, sseHeartbeat...)
			continue
		}
		if op != codec.OpText {
			continue
		}
		event, k := l.advance(pos, payload)
		if c.kind == kindPoll {
			if event == "subscribed" || event == "unsubscribed" {
				continue // a poll answer names positions itself
			}
			if n++; n > 1 {
				out = append(out, ',')
			}
			out = append(out, payload...)
			continue
		}
		if event != "" {
			out = append(out, "event: "...)
			out = append(out, event...)
			out = append(out, '\n')
		}
		if k >= 0 {
			out = append(out, "id: "...)
			out = appendCursor(out, pos, k)
			out = append(out, '\n')
		}
		out = appendSSEData(out, payload)
	}
	if c.kind == kindPoll {
		if n == 0 { // nothing to answer with yet: keep holding
			st.buf = out[:0]
			clear(pos)
			return
		}
		out = append(out, ']')
		out = appendPositionsJSON(out, pos)
		out = append(out, '}')
	}
	st.buf = out[:0]
	l.storePositions(c, pos)
	if c.kind == kindPoll {
		l.answerPoll(c, out)
		return
	}
	_, _ = c.gc.Write(out)
	c.checkPending()
}

// startPositions loads c's positions; with start, the topics that frames
// catch up are set back to their resume points, where the stream has them
// until their first catch-up event.
func (l *loop) startPositions(c *conn, frames []byte, start *catchUpStart) []streamPos {
	pos := l.loadPositions(c)
	if start == nil {
		return pos
	}
	for b := frames; len(b) > 0; {
		op, payload, rest := nextFrame(b)
		b = rest
		if op != codec.OpText {
			continue
		}
		name, _, _ := deliveryTopicSeq(payload)
		if name == nil {
			name, _, _ = resetFields(payload)
		}
		if k := findPosName(pos, name); name != nil && k >= 0 && !pos[k].started {
			r := start.of(pos[k].lt.topic.name)
			pos[k] = streamPos{lt: pos[k].lt, seq: r.since, epoch: r.epoch, known: r.has, started: true}
		}
	}
	return pos
}

// advance moves pos past one server message and returns its SSE event name
// ("" for a plain delivery) and the index of its topic in pos (-1: none).
func (l *loop) advance(pos []streamPos, payload []byte) (event string, k int) {
	if name, seq, ok := deliveryTopicSeq(payload); ok {
		k = findPosName(pos, name)
		if k >= 0 {
			pos[k].seq, pos[k].epoch, pos[k].known = seq, pos[k].lt.topic.epoch, true
		}
		switch {
		case bytes.HasSuffix(payload, []byte(`,"snapshot":true}`)):
			event = "snapshot"
		case isConflated(payload):
			event = "conflated"
		}
		return event, k
	}
	if name, from, epoch := resetFields(payload); name != nil {
		k = findPosName(pos, name)
		if k >= 0 && from > 0 {
			pos[k].seq, pos[k].epoch, pos[k].known = from-1, string(epoch), true
		}
		return "reset", k
	}
	if t := messageType(payload); t != "" {
		return t, -1
	}
	return "", -1
}

// answerPoll sends a long-poll answer (body: the JSON object) and ends the request.
func (l *loop) answerPoll(c *conn, body []byte) {
	st := &l.stream
	hdr := append(st.hdr[:0], pollHead...)
	hdr = strconv.AppendInt(hdr, int64(len(body)), 10)
	hdr = append(hdr, "\r\n\r\n"...)
	st.hdr = hdr[:0]
	iov := append(st.iov[:0], hdr, body)
	_, _ = c.gc.Writev(iov)
	clear(iov)
	st.iov = iov[:0]
	l.endStream(c)
}

// endStream stops deliveries to c and lets the client hang up once it has
// read everything (the sweep closes it otherwise, as any closing conn).
func (l *loop) endStream(c *conn) {
	c.phase = phaseClosing
	c.lastRead = l.now
	l.leaveSlow(c)
	l.dropSubs(c)
	if c.gc.OutboundBuffered() == 0 {
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
	}
}

// failStream is conn.fail for streams: SSE gets a final "event: close"
// with the code and reason (and, for a shutdown's "reconnect in Nms", the
// SSE retry field, so even a native EventSource spreads its reconnects); a
// held long-poll gets its answer with no messages and the same "close".
func (l *loop) failStream(c *conn, code codec.CloseCode, reason string) {
	closeJSON := append(l.out[:0], `{"type":"close","code":`...)
	closeJSON = strconv.AppendUint(closeJSON, uint64(code), 10)
	closeJSON = append(closeJSON, `,"reason":`...)
	q, _ := json.Marshal(reason)
	closeJSON = append(closeJSON, q...)
	closeJSON = append(closeJSON, '}')
	if c.kind == kindPoll {
		pos := l.loadPositions(c)
		body := append(l.stream.buf[:0], `{"messages":[]`...)
		body = appendPositionsJSON(body, pos)
		body = append(body, `,"close":`...)
		body = append(body, closeJSON...)
		body = append(body, '}')
		clear(pos)
		l.stream.buf = body[:0]
		l.out = closeJSON[:0]
		l.answerPoll(c, body)
		return
	}
	out := append(l.stream.buf[:0], "event: close\n"...)
	if ms, ok := reconnectHint(reason); ok {
		out = append(out, "retry: "...)
		out = strconv.AppendUint(out, ms, 10)
		out = append(out, '\n')
	}
	out = appendSSEData(out, closeJSON)
	l.stream.buf = out[:0]
	l.out = closeJSON[:0]
	_, _ = c.gc.Write(out)
	l.endStream(c)
}

// sweepStream is the sweep for an open stream: SSE conns get a comment line
// every ping interval (they send nothing, so they are never idle-closed;
// a dead peer shows as a write error); a long-poll held for PollTimeout is
// answered with no messages.
func (l *loop) sweepStream(c *conn, age uint32) {
	cfg := &l.node.cfg
	switch c.kind {
	case kindSSE:
		if age >= millis(cfg.PingInterval) {
			c.lastRead = l.now
			_, _ = c.gc.Write(sseHeartbeat)
			c.checkPending()
		}
	case kindPoll:
		if age >= millis(cfg.Streams.PollTimeout) {
			l.answerPollEmpty(c)
		}
	}
}

// answerPollEmpty answers a long-poll with no messages and c's positions.
func (l *loop) answerPollEmpty(c *conn) {
	pos := l.loadPositions(c)
	body := append(l.stream.buf[:0], `{"messages":[]`...)
	body = appendPositionsJSON(body, pos)
	body = append(body, '}')
	clear(pos)
	l.stream.buf = body[:0]
	l.answerPoll(c, body)
}

// reconnectHint reads the delay of a "... reconnect in 4211ms" close reason.
func reconnectHint(reason string) (uint64, bool) {
	const marker = "reconnect in "
	i := bytes.LastIndex([]byte(reason), []byte(marker))
	if i < 0 {
		return 0, false
	}
	rest := reason[i+len(marker):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || rest[j:] != "ms" {
		return 0, false
	}
	ms, err := strconv.ParseUint(rest[:j], 10, 64)
	return ms, err == nil
}

// nextFrame splits the first of our own (unmasked, complete) frames off b.
func nextFrame(b []byte) (op codec.OpCode, payload, rest []byte) {
	if len(b) < 2 {
		return 0, nil, nil
	}
	op = codec.OpCode(b[0] & 0x0f)
	n, h := int(b[1]&0x7f), 2
	switch n {
	case 126:
		n, h = int(b[2])<<8|int(b[3]), 4
	case 127:
		n, h = 0, 10
		for _, x := range b[2:10] {
			n = n<<8 | int(x)
		}
	}
	if h+n > len(b) {
		return 0, nil, nil
	}
	return op, b[h : h+n], b[h+n:]
}

// deliveryTopicSeq reads {"topic":"T","seq":N,... as wire.AppendEnvelope writes it.
func deliveryTopicSeq(p []byte) (name []byte, seq uint64, ok bool) {
	const pre, mid = `{"topic":"`, `","seq":`
	if !bytes.HasPrefix(p, []byte(pre)) {
		return nil, 0, false
	}
	p = p[len(pre):]
	i := bytes.IndexByte(p, '"')
	if i < 0 || !bytes.HasPrefix(p[i:], []byte(mid)) {
		return nil, 0, false
	}
	name, p = p[:i], p[i+len(mid):]
	j := 0
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		seq = seq*10 + uint64(p[j]-'0')
		j++
	}
	return name, seq, j > 0
}

// resetFields reads {"type":"reset","topic":"T","from":N,"epoch":"E"} as wire.AppendReset writes it.
func resetFields(p []byte) (name []byte, from uint64, epoch []byte) {
	const pre = `{"type":"reset","topic":"`
	if !bytes.HasPrefix(p, []byte(pre)) {
		return nil, 0, nil
	}
	p = p[len(pre):]
	i := bytes.IndexByte(p, '"')
	if i < 0 {
		return nil, 0, nil
	}
	name, p = p[:i], p[i:]
	p, ok := bytes.CutPrefix(p, []byte(`","from":`))
	if !ok {
		return nil, 0, nil
	}
	j := 0
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		from = from*10 + uint64(p[j]-'0')
		j++
	}
	if e, ok := bytes.CutPrefix(p[j:], []byte(`,"epoch":"`)); ok {
		if k := bytes.IndexByte(e, '"'); k >= 0 {
			epoch = e[:k]
		}
	}
	return name, from, epoch
}

// messageType is the "type" of a {"type":"..."} server message.
func messageType(p []byte) string {
	const pre = `{"type":"`
	if !bytes.HasPrefix(p, []byte(pre)) {
		return ""
	}
	p = p[len(pre):]
	if i := bytes.IndexByte(p, '"'); i > 0 {
		return string(p[:i])
	}
	return ""
}

// isConflated reports whether an envelope ends with ,"conflated":true,"skipped":[a,b]}.
func isConflated(p []byte) bool {
	i := bytes.LastIndex(p, []byte(`,"conflated":true,"skipped":[`))
	return i >= 0 && bytes.IndexByte(p[i+len(`,"conflated":true,"skipped":[`):], '"') < 0
}
