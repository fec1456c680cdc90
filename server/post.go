package server

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
)

// Client publish and presence for fallback transports (issue 13). A client
// on SSE or long-polling has no channel back, so it sends the op it would
// send over WebSocket as one request on the public listener:
//
//	POST /publish   {"topic":T,"data":D,"ephemeral":false,"id":N}
//	POST /presence  {"topic":T} or {"op":"presence_stats","topic":T}
//
// with the same token (?token= or Authorization: Bearer) and the same
// permissions, limits and code path as the in-band op, served by the loops
// (no goroutine). The answer is the in-band answer's JSON with a fitting
// status; the connection stays open for the next request (keep-alive,
// within --handshake-timeout each), so the per-connection publish rate
// bucket applies to it. Not the control API's POST /publish/{topic}, which
// takes API keys on the other listener.

const (
	publishPath  = "/publish"
	presencePath = "/presence"
)

// kindPost marks a conn carrying one POST whose answer is pending (worker
// mode: the bus answers later). Not a transport: such a conn is never
// upgraded, so it stays outside numKinds and the per-transport metrics.
const kindPost = kindPoll + 1

func isPostPath(p []byte) bool { return string(p) == publishPath || string(p) == presencePath }

// servePost answers the request whose header block (n bytes) starts buf.
// It returns the bytes consumed, 0 while the body is incomplete (the
// handshake deadline bounds the wait).
func (l *loop) servePost(c *conn, req *codec.Request, buf []byte, n int) (int, gnet.Action) {
	c.setReason(reasonHTTP)
	switch string(req.Method) {
	case "OPTIONS": // CORS preflight: Authorization and Content-Type are not simple headers
		return n, l.postNext(c, postPreflight)
	case "POST":
	default:
		return n, l.postFail(c, 405, "method_not_allowed", "use POST "+string(req.Path)+" with a JSON body")
	}
	if req.TransferEncoding || req.ContentLength == nil {
		return n, l.postFail(c, 411, "length_required", "send the body with a Content-Length (no chunked encoding)")
	}
	size, err := strconv.Atoi(string(req.ContentLength))
	if err != nil || size < 0 {
		return n, l.postFail(c, 400, wire.CodeBadJSON, "bad Content-Length")
	}
	if max := l.node.cfg.MaxMessage; size > max {
		return n, l.postFail(c, 413, wire.CodeTooLarge, "body is "+strconv.Itoa(size)+" bytes: at most "+strconv.Itoa(max))
	}
	if len(buf) < n+size {
		return 0, gnet.None
	}
	body := buf[n : n+size]
	if herr := l.checkOrigin(req.Origin); herr != nil {
		return n + size, l.postFail(c, 403, "origin_not_allowed", herr.Message)
	}
	op, herr := l.urlTopics(req.Query) // the token, as for an upgrade
	if herr != nil {
		return n + size, l.postFail(c, herr.Status, wire.CodeBadJSON, herr.Message)
	}
	// From here on the request is read whole: the answers keep the connection.
	op.Topics = nil
	ident, herr, wait := l.handshakeAuth(c, &op, req)
	if wait {
		return 0, gnet.None // parked until the token's key is fetched; the request is read again
	}
	if herr != nil {
		return n + size, l.postNext(c, appendPostResponse(nil, herr.Status, wire.AppendError(nil, &wire.OpError{Code: herr.Code, Message: herr.Message}), true))
	}
	def, allowed := wire.OpPublish, []string{wire.OpPublish}
	if string(req.Path) == presencePath {
		def, allowed = wire.OpPresence, []string{wire.OpPresence, wire.OpPresenceStats}
	}
	p, oerr := wire.ParseOpAs(body, def, allowed...)
	if oerr != nil {
		answer := wire.AppendError(nil, oerr)
		if p.ID != 0 {
			answer = wire.AppendErrorID(nil, oerr, p.ID)
		}
		return n + size, l.postNext(c, appendPostResponse(nil, postStatus(oerr.Code), answer, true))
	}
	// The token is the op's only, not the conn's: a POST is not one of the
	// user's connections (--max-conns-per-user), so a user at that limit
	// with its streams open can still publish.
	c.kind = kindPost
	c.ident = ident
	start := len(l.out)
	if p.Op == wire.OpPublish {
		l.clientPublish(c, &p)
	} else {
		l.presenceOp(c, &p)
	}
	c.ident = nil
	if len(l.out) == start {
		return n + size, gnet.None // worker mode: published() answers
	}
	_, payload, _ := nextFrame(l.out[start:]) // the in-band answer, as one text frame
	action := l.postAnswer(c, payload)
	l.out = l.out[:start]
	return n + size, action
}

// postPublished answers a POST /publish the bus has acknowledged (worker mode).
func (l *loop) postPublished(c *conn, id uint64, topic string, seq uint64, err error) {
	if c.phase != phaseHandshake || c.kind != kindPost {
		return // gone, or timed out (408) while the bus answered
	}
	var payload []byte
	if err != nil {
		payload = wire.AppendErrorID(nil, publishError(err), id)
	} else {
		payload = wire.AppendPublished(nil, id, topic, seq)
	}
	l.postAnswer(c, payload)
}

// postAnswer sends payload, an in-band answer, with the status its code
// maps to, and waits for the next request.
func (l *loop) postAnswer(c *conn, payload []byte) gnet.Action {
	status := 200
	if code, ok := errorCode(payload); ok {
		status = postStatus(code)
	}
	return l.postNext(c, appendPostResponse(nil, status, payload, true))
}

// postFail refuses a request whose body may still be on its way, and closes.
func (l *loop) postFail(c *conn, status int, code, msg string) gnet.Action {
	return l.postWrite(c, appendPostResponse(nil, status, wire.AppendError(nil, &wire.OpError{Code: code, Message: msg}), false))
}

// postNext sends a response and makes c a fresh connection awaiting its
// next request (keep-alive): the handshake deadline starts again, the
// publish rate bucket stays.
func (l *loop) postNext(c *conn, resp []byte) gnet.Action {
	_, _ = c.gc.Write(resp)
	c.kind = kindWS
	c.phase = phaseHandshake
	c.lastRead = l.now
	c.flags &^= flagKeyWait
	return gnet.None
}

// postWrite sends a whole response and leaves the hang-up to the client
// (Connection: close): closing at once, with a refused body still
// arriving, would reset the connection before the client read the answer.
// Meanwhile its input is discarded; the sweep closes it after closeTimeout.
func (l *loop) postWrite(c *conn, resp []byte) gnet.Action {
	_, _ = c.gc.Write(resp)
	c.phase = phaseClosing
	c.lastRead = l.now
	return gnet.None
}

var postPreflight = []byte("HTTP/1.1 204 No Content\r\n" +
	"Access-Control-Allow-Origin: *\r\n" +
	"Access-Control-Allow-Methods: POST, OPTIONS\r\n" +
	"Access-Control-Allow-Headers: Authorization, Content-Type\r\n" +
	"Access-Control-Max-Age: 600\r\n\r\n")

func appendPostResponse(dst []byte, status int, body []byte, keepAlive bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"+
		"Access-Control-Allow-Origin: *\r\n"...)
	if !keepAlive {
		dst = append(dst, "Connection: close\r\n"...)
	}
	switch status {
	case 401:
		dst = append(dst, "WWW-Authenticate: Bearer\r\n"...)
	case 503:
		dst = append(dst, "Retry-After: 1\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// errorCode reads the code of an in-band error answer.
func errorCode(payload []byte) (string, bool) {
	const prefix = `{"type":"error","code":"`
	if !bytes.HasPrefix(payload, []byte(prefix)) {
		return "", false
	}
	rest := payload[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", false
	}
	return string(rest[:end]), true
}

// postStatus is the HTTP status of an in-band error code.
func postStatus(code string) int {
	switch code {
	case wire.CodeForbidden, wire.CodeNotEnabled:
		return 403
	case wire.CodeTooLarge:
		return 413
	case wire.CodeRateLimited, CodeTooManyConnections:
		return 429
	case wire.CodeBusUnavailable:
		return 503
	case wire.CodeInvalidToken:
		return 401
	}
	return 400
}
