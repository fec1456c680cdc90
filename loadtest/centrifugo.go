package loadtest

import (
	"bytes"
	"strings"

	"github.com/fanwire/fanwire/codec"
)

// The Centrifugo dialect (Plan.Dialect "centrifugo"): the client side of
// Centrifugo's JSON protocol, so `fanwire bench` can drive Centrifugo v6
// with the same loops, oracle and latency histograms as fanwire. After the
// 101 a connection sends {"id":1,"connect":{}} and {"id":2,"subscribe":..}
// in one frame (commands separated by newlines); it counts as open when the
// subscribe reply arrives. Server frames may carry several replies and
// pushes separated by newlines; {} is a ping, answered with {}. A
// publication's pub.offset (history on) is the seq; its data's "t" the
// send time. The channel is the first topic of the path's topics= query.

// DialectCentrifugo names the dialect in Plan.Dialect.
const DialectCentrifugo = "centrifugo"

// conn.proto values of the dialect.
const (
	cfUpgrading   = iota // waiting for the 101
	cfSubscribing        // commands sent, waiting for the subscribe reply
)

var (
	cfPing      = []byte("{}")
	cfPubKey    = []byte(`"pub":`)
	cfOffsetKey = []byte(`"offset":`)
	cfSentKey   = []byte(`"t":`)
)

// Centrifugo frame kinds, as centrifugoKind tells them apart.
const (
	cfOther      = iota
	cfKindPing   // {}
	cfKindPub    // {"push":{..."pub":{...}}}
	cfKindReply  // {"id":N,...} without an error
	cfKindError  // {"id":N,"error":{...}}
	cfKindLeave  // {"push":{..."disconnect":...}} or unsubscribe
	cfKindIgnore // other pushes (join, leave, message)
)

// centrifugoKind classifies one newline-separated message of a frame.
func centrifugoKind(msg []byte) int {
	msg = bytes.TrimSpace(msg)
	switch {
	case len(msg) == 0:
		return cfOther
	case bytes.Equal(msg, cfPing):
		return cfKindPing
	case bytes.HasPrefix(msg, []byte(`{"push":`)):
		switch {
		case bytes.Contains(msg, cfPubKey):
			return cfKindPub
		case bytes.Contains(msg, []byte(`"disconnect":`)), bytes.Contains(msg, []byte(`"unsubscribe":`)):
			return cfKindLeave
		}
		return cfKindIgnore
	case bytes.HasPrefix(msg, []byte(`{"id":`)):
		if bytes.Contains(msg, []byte(`"error":`)) {
			return cfKindError
		}
		return cfKindReply
	}
	return cfOther
}

// centrifugoPub pulls pub.offset and data's "t" out of a publication push
// {"push":{"channel":"c","pub":{"data":{"t":17..,"pad":".."},"offset":7}}}
// without allocating. ok is false without an offset (history off).
func centrifugoPub(msg []byte) (offset uint64, sent int64, ok bool) {
	i := bytes.Index(msg, cfPubKey)
	if i < 0 {
		return 0, 0, false
	}
	pub := msg[i+len(cfPubKey):]
	if j := bytes.Index(pub, cfSentKey); j >= 0 {
		if v, n := parseUint(pub[j+len(cfSentKey):]); n > 0 {
			sent = int64(v)
		}
	}
	j := bytes.LastIndex(pub, cfOffsetKey)
	if j < 0 {
		return 0, sent, false
	}
	offset, n := parseUint(pub[j+len(cfOffsetKey):])
	return offset, sent, n > 0
}

// appendCentrifugoCommands appends the connect and subscribe commands for
// channel (token: the connection JWT, or "" for anonymous).
func appendCentrifugoCommands(dst []byte, channel, token string) []byte {
	dst = append(dst, `{"id":1,"connect":{"name":"fanwire-load"`...)
	if token != "" {
		dst = append(dst, `,"token":"`...)
		dst = append(dst, token...)
		dst = append(dst, '"')
	}
	dst = append(dst, "}}\n"...)
	dst = append(dst, `{"id":2,"subscribe":{"channel":"`...)
	dst = append(dst, channel...)
	return append(dst, `"}}`...)
}

// queryValue is the first comma-separated value of key in path's query.
func queryValue(path, key string) string {
	i := strings.Index(path, "?")
	if i < 0 {
		return ""
	}
	for _, kv := range strings.Split(path[i+1:], "&") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			v, _, _ = strings.Cut(v, ",")
			return v
		}
	}
	return ""
}

// processCentrifugo is process for the dialect: the 101, then the
// commands, then frames until the subscribe reply opens the connection.
func (l *loop) processCentrifugo(slot int32, data []byte, now int64) (rest []byte, alive bool) {
	c := &l.conns[slot]
	if c.state == stHandshake && c.proto == cfUpgrading {
		n, alive := l.accept101(slot, data)
		if n == 0 {
			return data, alive
		}
		data = data[n:]
		c.proto = cfSubscribing
		path := l.pathOf(c)
		cmds := appendCentrifugoCommands(make([]byte, 0, 128), queryValue(path, "topics"), queryValue(path, "token"))
		l.wbuf = codec.AppendMaskedFrame(l.wbuf[:0], codec.OpText, true, cmds, l.maskKey())
		if !l.write(slot, l.wbuf) {
			return nil, false
		}
	}
	return l.frames(slot, data, now)
}

// onCentrifugoData handles one data frame: every message in it. It
// returns false when the connection was closed.
func (l *loop) onCentrifugoData(slot int32, f *codec.Frame, now int64) bool {
	l.stats.bytes.Add(int64(len(f.Payload)))
	data := f.Payload
	for len(data) > 0 {
		msg := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			msg, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		c := &l.conns[slot]
		switch centrifugoKind(msg) {
		case cfKindPing:
			l.wbuf = codec.AppendMaskedFrame(l.wbuf[:0], codec.OpText, true, cfPing, l.maskKey())
			if !l.write(slot, l.wbuf) {
				return false
			}
			l.stats.pings.Add(1)
		case cfKindPub:
			l.stats.messages.Add(1)
			if !l.plan.TrackSeq {
				continue
			}
			if off, sent, ok := centrifugoPub(msg); ok {
				l.seen(c, off, sent, nil, now)
			} else if sent > 0 {
				l.stats.recordLatency((now - sent) / 1000)
			}
		case cfKindReply:
			if c.state == stHandshake && bytes.HasPrefix(msg, []byte(`{"id":2,`)) {
				l.opened(c, now)
			}
		case cfKindError:
			if c.state == stHandshake {
				l.failConn(slot, "centrifugo_error")
				return false
			}
		case cfKindLeave:
			if c.state == stOpen {
				l.stats.closedByServerAs("centrifugo_disconnect")
				l.closeConn(slot)
				return false
			}
		}
	}
	return true
}
