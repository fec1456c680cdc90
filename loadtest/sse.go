package loadtest

import (
	"bytes"
	"strconv"
	"strings"
)

// Transports the load generator speaks (--transport).
const (
	TransportWebSocket = "websocket"
	TransportSSE       = "sse" // fanwire's GET /sse: the same URL query, /ws becomes /sse
)

// appendSSERequest appends the GET of an SSE stream for a WebSocket
// path+query: the path's trailing /ws becomes /sse.
func appendSSERequest(dst []byte, host, pathQuery string) []byte {
	path, query, hasQuery := strings.Cut(pathQuery, "?")
	if strings.HasSuffix(path, "/ws") {
		path = path[:len(path)-3] + "/sse"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	if hasQuery {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	return append(dst, "\r\nAccept: text/event-stream\r\n\r\n"...)
}

// processSSE consumes the response head and whole events; it returns the
// unconsumed tail, or alive=false when the connection was closed.
func (l *loop) processSSE(slot int32, data []byte, now int64) (rest []byte, alive bool) {
	c := &l.conns[slot]
	if c.state == stHandshake {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if len(data) >= maxHandshake {
				l.failConn(slot, CauseProtocol)
				return nil, false
			}
			return data, true
		}
		switch status := httpStatus(data); status {
		case 200:
		case 0:
			l.failConn(slot, CauseProtocol)
			return nil, false
		default: // e.g. 503 with Retry-After while a node drains, as over WebSocket and poll
			l.failConnAfter(slot, causeStatusPfx+strconv.Itoa(status), retryAfter(data[:end+2]))
			return nil, false
		}
		l.opened(c, now)
		data = data[end+4:]
	}
	for {
		end := bytes.Index(data, []byte("\n\n"))
		if end < 0 {
			if len(data) > maxFrame {
				l.failConn(slot, CauseProtocol)
				return nil, false
			}
			return data, true
		}
		ev := data[:end+1]
		data = data[end+2:]
		if !l.onSSEEvent(slot, ev, now) {
			return nil, false
		}
	}
}

// onSSEEvent handles one event block (lines ending in \n); false: closed.
func (l *loop) onSSEEvent(slot int32, ev []byte, now int64) bool {
	c := &l.conns[slot]
	var name, payload []byte
	for len(ev) > 0 {
		line, rest, _ := bytes.Cut(ev, []byte("\n"))
		ev = rest
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			name = line[len("event: "):]
		case bytes.HasPrefix(line, []byte("data: ")):
			payload = line[len("data: "):] // our loads publish one-line JSON
		}
	}
	switch {
	case payload == nil: // a comment: the server's heartbeat
		l.stats.pings.Add(1)
	case string(name) == "close":
		code := "close"
		if i := bytes.Index(payload, []byte(`"code":`)); i >= 0 {
			v, n := parseUint(payload[i+len(`"code":`):])
			if n > 0 {
				code = "close_" + strconv.FormatUint(v, 10)
			}
		}
		l.stats.closedByServerAs(code)
		l.reconnect(slot, -1)
		l.closeConn(slot)
		return false
	case string(name) == "reset":
		l.stats.resets.Add(1)
		if from, ok := resetFrom(payload); ok && l.plan.TrackSeq {
			if c.hasSeq && from > c.lastSeq+1 {
				l.stats.announced.Add(int64(from - c.lastSeq - 1))
			}
			c.hasSeq, c.lastSeq = true, from-1
		}
	case string(name) == "subscribed":
		// the stream's ack: not a delivery
	default:
		l.stats.bytes.Add(int64(len(payload)))
		l.stats.messages.Add(1)
		if l.plan.TrackSeq {
			l.track(c, payload, now)
		}
	}
	return true
}
