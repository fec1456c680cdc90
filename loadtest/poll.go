package loadtest

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Long-polling (--transport poll): fanwire's GET /poll answers once per
// request, with the messages after the request's since/epochs (or none, at
// its poll timeout) and the positions to ask from next, then hangs up. A
// poll connection is one logical subscriber: it stays open in the counters
// while each answer is followed at once by a new request on a new socket,
// carrying the positions of the answer; its deliveries are checked for
// contiguity exactly as over WebSocket.

// TransportPoll: the same URL query, /ws becomes /poll.
const TransportPoll = "poll"

// maxPollBody bounds one answer (the server caps it at --max-pending).
const maxPollBody = 8 << 20

// appendPollRequest appends the GET of a long-poll for a WebSocket
// path+query (/ws becomes /poll) with cursor ("since=..&epochs=..") appended.
func appendPollRequest(dst []byte, host, pathQuery string, cursor []byte) []byte {
	path, query, hasQuery := strings.Cut(pathQuery, "?")
	if strings.HasSuffix(path, "/ws") {
		path = path[:len(path)-3] + "/poll"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	sep := byte('?')
	if hasQuery {
		dst = append(dst, '?')
		dst = append(dst, query...)
		sep = '&'
	}
	if len(cursor) > 0 {
		dst = append(dst, sep)
		dst = append(dst, cursor...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	return append(dst, "\r\nAccept: application/json\r\n\r\n"...)
}

// pollCursor returns slot's cursor for its next request (nil before the first answer).
func (l *loop) pollCursor(slot int32) []byte {
	if int(slot) < len(l.cursors) {
		return l.cursors[slot]
	}
	return nil
}

func (l *loop) setPollCursor(slot int32, cur []byte) {
	for int(slot) >= len(l.cursors) {
		l.cursors = append(l.cursors, nil)
	}
	l.cursors[slot] = append(l.cursors[slot][:0], cur...)
}

// httpStatus is the status code of an HTTP/1.1 response head, 0 if it has
// none.
func httpStatus(head []byte) int {
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	return status
}

// processPoll consumes one whole answer; the socket is done with after it.
func (l *loop) processPoll(slot int32, data []byte, now int64) (rest []byte, alive bool) {
	c := &l.conns[slot]
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		if len(data) >= maxHandshake {
			l.pollFailed(slot, CauseProtocol)
			return nil, false
		}
		return data, true
	}
	head := data[:end+2]
	status := httpStatus(head)
	switch {
	case status == 0:
		l.pollFailed(slot, CauseProtocol)
		return nil, false
	case status != 200:
		l.pollFailedAfter(slot, causeStatusPfx+strconv.Itoa(status), retryAfter(head))
		return nil, false
	}
	clen := contentLength(head)
	if clen < 0 || clen > maxPollBody {
		l.pollFailed(slot, CauseProtocol)
		return nil, false
	}
	if len(data) < end+4+clen {
		return data, true // wait for the rest of the body
	}
	if c.state == stHandshake {
		l.opened(c, now)
	}
	return nil, l.onPollAnswer(slot, data[end+4:end+4+clen], now)
}

// pollFailed ends a poll whose request failed: a first request as a failed
// handshake, a re-poll as the server closing an open connection.
func (l *loop) pollFailed(slot int32, cause string) { l.pollFailedAfter(slot, cause, 0) }

// pollFailedAfter is pollFailed with the server's Retry-After (a draining
// node's 503): the reconnect waits that long.
func (l *loop) pollFailedAfter(slot int32, cause string, after time.Duration) {
	if l.conns[slot].state != stOpen {
		l.failConnAfter(slot, cause, after)
		return
	}
	hint := time.Duration(-1)
	if after > 0 {
		hint = after
	}
	l.stats.closedByServerAs(cause)
	l.reconnect(slot, hint)
	l.closeConn(slot)
}

// contentLength reads the Content-Length of a response head (-1: none or bad).
func contentLength(head []byte) int {
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\r\n"))
		head = rest
		name, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
	}
	return -1
}

// onPollAnswer counts the deliveries of {"messages":[...],"since":{..},
// "epochs":{..}[,"close":{..}]}, keeps the positions for the next request
// and queues it (the socket is closed now; false: the conn is gone).
func (l *loop) onPollAnswer(slot int32, body []byte, now int64) bool {
	c := &l.conns[slot]
	rest, ok := bytes.CutPrefix(body, []byte(`{"messages":`))
	if !ok {
		l.pollFailed(slot, CauseProtocol)
		return false
	}
	n := jsonValueLen(rest)
	if n < 2 || rest[0] != '[' {
		l.pollFailed(slot, CauseProtocol)
		return false
	}
	for arr := rest[1 : n-1]; len(arr) > 0; {
		if arr[0] == ',' {
			arr = arr[1:]
			continue
		}
		k := jsonValueLen(arr)
		if k <= 0 {
			l.pollFailed(slot, CauseProtocol)
			return false
		}
		l.onPollMessage(c, arr[:k], now)
		arr = arr[k:]
	}
	rest = rest[n:]
	cur := l.wbuf[:0]
	var closeObj []byte
	for len(rest) > 1 && rest[0] == ',' {
		name, after, ok := bytes.Cut(rest[1:], []byte(`":`))
		k := jsonValueLen(after)
		if !ok || k <= 0 || len(name) < 1 {
			l.pollFailed(slot, CauseProtocol)
			return false
		}
		switch string(name[1:]) {
		case "since":
			cur = appendPollPositions(cur, "since=", after[:k])
		case "epochs":
			cur = appendPollPositions(cur, "&epochs=", after[:k])
		case "close":
			closeObj = after[:k]
		}
		rest = after[k:]
	}
	l.wbuf = cur[:0]
	l.setPollCursor(slot, cur)
	if closeObj != nil {
		code := "close"
		if i := bytes.Index(closeObj, []byte(`"code":`)); i >= 0 {
			if v, k := parseUint(closeObj[i+len(`"code":`):]); k > 0 {
				code = "close_" + strconv.FormatUint(v, 10)
			}
		}
		l.stats.closedByServerAs(code)
		l.reconnect(slot, reconnectHint(closeObj)) // "reason":"... reconnect in Nms"
		l.closeConn(slot)
		return false
	}
	// Done with this socket; the next request goes out after this batch
	// of events (a new socket may reuse the number, see repoll).
	unix.Close(int(c.fd))
	c.fd = -1
	if c.in != nil {
		l.pool.put(c.in)
		c.in = nil
	}
	if c.out != nil {
		l.pool.put(c.out)
		c.out = nil
	}
	l.repolls = append(l.repolls, slot)
	return false
}

// onPollMessage handles one message of an answer as onData does a frame.
func (l *loop) onPollMessage(c *conn, msg []byte, now int64) {
	l.stats.bytes.Add(int64(len(msg)))
	if bytes.HasPrefix(msg, resetPrefix) {
		l.stats.resets.Add(1)
		if from, ok := resetFrom(msg); ok && l.plan.TrackSeq {
			if c.hasSeq && from > c.lastSeq+1 {
				l.stats.announced.Add(int64(from - c.lastSeq - 1))
			}
			c.hasSeq, c.lastSeq = true, from-1
		}
		return
	}
	if bytes.HasPrefix(msg, []byte(`{"type":`)) {
		return // an ack or notice: not a delivery
	}
	l.stats.messages.Add(1)
	if l.plan.TrackSeq {
		l.track(c, msg, now)
	}
}

// appendPollPositions turns {"a":1,"b":"E"} into key a:1,b:E (no key for {}).
func appendPollPositions(dst []byte, key string, obj []byte) []byte {
	if len(obj) < 2 || obj[0] != '{' {
		return dst
	}
	inner := obj[1 : len(obj)-1]
	first := true
	for len(inner) > 0 {
		if inner[0] == ',' {
			inner = inner[1:]
			continue
		}
		k := jsonValueLen(inner)
		if k < 2 || k+1 >= len(inner) || inner[k] != ':' {
			return dst
		}
		name := inner[1 : k-1]
		inner = inner[k+1:]
		v := jsonValueLen(inner)
		if v <= 0 {
			return dst
		}
		val := bytes.Trim(inner[:v], `"`)
		inner = inner[v:]
		if first {
			dst = append(dst, key...)
			first = false
		} else {
			dst = append(dst, ',')
		}
		dst = appendQueryEscaped(dst, name)
		dst = append(dst, ':')
		dst = appendQueryEscaped(dst, val)
	}
	return dst
}

// appendQueryEscaped percent-encodes what may not stand in a query value.
func appendQueryEscaped(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range s {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '-', b == '_', b == '~', b == ':':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

// jsonValueLen is the length of the JSON value at the start of b (object,
// array, string or scalar), or -1 if it does not end in b.
func jsonValueLen(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	switch b[0] {
	case '"':
		for i := 1; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case '{', '[':
		depth, inStr := 0, false
		for i := 0; i < len(b); i++ {
			ch := b[i]
			if inStr {
				switch ch {
				case '\\':
					i++
				case '"':
					inStr = false
				}
				continue
			}
			switch ch {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	i := 0
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// repoll sends each queued poll conn's next request on a new socket.
func (l *loop) repoll(now int64) {
	q := l.repolls
	l.repolls = l.repolls[:0]
	for _, slot := range q {
		c := &l.conns[slot]
		if c.state != stOpen || c.fd != -1 {
			continue
		}
		var src = l.nextSource()
		fd, err := dialNonBlocking(src, &l.dst)
		if err == nil {
			if err = l.p.add(fd, slot); err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			l.pollFailed(slot, causeOf(err))
			continue
		}
		c.fd = int32(fd)
		c.repoll = true
	}
}
