package server

import "github.com/fanwire/fanwire/codec"

// A conn's WebSocket parser. Between frames, which is always for an idle
// connection, all it holds is one byte (conn.wsExt: the negotiated
// permessage-deflate); the whole codec.Parser (24 B) is kept in
// loop.parsers only while a frame or a fragmented message is incomplete
// (conn.state&stateParser), like the buffer of a message in progress.

// loadParser is c's parser state for this read.
func (l *loop) loadParser(c *conn) codec.Parser {
	if c.state&stateParser != 0 {
		return l.parsers[c]
	}
	return codec.RestingParser(c.wsExt)
}

// keepParser stores p as c's parser state after a read.
func (l *loop) keepParser(c *conn, p *codec.Parser) {
	c.wsExt = p.Ext()
	switch {
	case c.phase == phaseClosed: // gnet closed it during the read: keep nothing
		l.forgetParser(c)
	case !p.Resting():
		if l.parsers == nil {
			l.parsers = make(map[*conn]codec.Parser)
		}
		l.parsers[c] = *p
		c.state |= stateParser
	case c.state&stateParser != 0:
		l.forgetParser(c)
	}
}

func (l *loop) forgetParser(c *conn) {
	if c.state&stateParser != 0 {
		delete(l.parsers, c)
		c.state &^= stateParser
	}
}

// inMessage reports whether c is in the middle of a data message.
func (l *loop) inMessage(c *conn) bool {
	if c.state&stateParser == 0 {
		return false // a resting parser is in no message
	}
	p := l.parsers[c]
	return p.InMessage()
}

// deflateWindow is the permessage-deflate window c negotiated, 0 if none.
func (c *conn) deflateWindow() uint8 {
	p := codec.RestingParser(c.wsExt)
	return p.DeflateWindow()
}

// setDeflate records the negotiated permessage-deflate window (0: off).
func (c *conn) setDeflate(windowBits uint8) {
	p := codec.RestingParser(c.wsExt)
	p.SetDeflate(windowBits)
	c.wsExt = p.Ext()
}
