package server

import (
	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/js"
	"github.com/panjf2000/gnet/v2"
)

// serveClientScript answers GET /fanwire.js on the WebSocket listener, so an
// app served from anywhere can load the client from the node it connects to.
// The answer is one prebuilt response (no allocation), Connection: close.
func (l *loop) serveClientScript(c *conn, req *codec.Request) gnet.Action {
	c.setReason(reasonHTTP)
	switch string(req.Method) {
	case "GET":
		_, _ = c.gc.Write(js.Response)
	case "HEAD":
		_, _ = c.gc.Write(js.Response[:js.HeaderLen])
	default:
		_, _ = c.gc.Write(codec.AppendHTTPError(l.out[:0], codec.ErrMethod))
	}
	if c.gc.OutboundBuffered() == 0 {
		return gnet.Close
	}
	// gnet's close flushes only what the socket takes at once: let the client
	// read the rest (it hangs up after Content-Length bytes); the sweep
	// closes the connection otherwise, as for any closing one.
	c.phase = phaseClosing
	c.lastRead = l.now
	return gnet.None
}
