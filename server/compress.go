package server

import (
	"sync"
	"sync/atomic"

	"github.com/fanwire/fanwire/codec"
)

// permessage-deflate on the server (see compress_config.go for the wire
// contract). Compression state lives per loop, never per connection: one
// compressor and one decompressor per loop, used one message at a time.

// variant is an extra encoding of one publish (the compressed frame; a
// delta frame could be another), built at most once, by the first loop
// that needs it, and then shared read-only by every loop. An empty result
// means "not worth it": the plain frame is sent instead.
type variant struct {
	mu   sync.Mutex // serializes the build; readers after done never lock
	done atomic.Bool
	b    []byte
}

// load returns the variant if it was built.
func (v *variant) load() (b []byte, built bool) {
	if v.done.Load() {
		return v.b, true
	}
	return nil, false
}

// build makes the variant with encode(dst) unless another loop did first.
func (v *variant) build(encode func(dst []byte) []byte) []byte {
	v.mu.Lock()
	if !v.done.Load() {
		v.b = encode(v.b[:0])
		v.done.Store(true)
	}
	v.mu.Unlock()
	return v.b
}

// reset readies a pooled frame's variant for the next publish.
func (v *variant) reset() {
	v.done.Store(false)
	if cap(v.b) > maxPooledFrame {
		v.b = nil
	}
	v.b = v.b[:0]
}

// frameFor is what subscriber c receives of f: the shared compressed frame
// if c negotiated permessage-deflate, f is large enough to be worth it and
// fits c's window (a message of at most 2^bits bytes never refers further
// back), otherwise the plain frame.
func (l *loop) frameFor(c *conn, f *sharedFrame) []byte {
	window := c.deflateWindow()
	if window == 0 || f.reset { // a reset frame has no envelope (hdr 0): small, sent plain
		return f.b
	}
	env := len(f.b) - int(f.hdr)
	if env < l.compressMin || env > 1<<window {
		return f.b
	}
	z, built := f.deflated.load()
	if !built {
		z = f.deflated.build(func(dst []byte) []byte { return l.compressFrame(dst, f) })
	}
	if len(z) == 0 {
		return f.b
	}
	return z
}

// compressFrame encodes f's envelope as a compressed frame into dst, or
// returns dst empty if that would not be smaller.
func (l *loop) compressFrame(dst []byte, f *sharedFrame) []byte {
	dst = l.compressor().AppendFrame(dst, codec.OpText, f.envelope())
	if len(dst) >= len(f.b) {
		return dst[:0]
	}
	return dst
}

// compressor is the loop's compressor, made on first use.
func (l *loop) compressor() *codec.Compressor {
	if l.deflater == nil {
		c, err := codec.NewCompressor(l.node.cfg.Compression.Level)
		if err != nil {
			panic(err) // the level was validated by Config.normalize
		}
		l.deflater = c
	}
	return l.deflater
}

// appendReply appends a message to c (echo mode) compressed when c
// negotiated it and the message is worth it.
func (l *loop) appendReply(dst []byte, c *conn, op codec.OpCode, payload []byte) []byte {
	if w := c.deflateWindow(); w != 0 && len(payload) >= l.compressMin && len(payload) <= 1<<w {
		return l.compressor().AppendFrame(dst, op, payload)
	}
	return codec.AppendFrame(dst, op, payload)
}

// inflate turns a compressed message into its payload (in l.inflated, valid
// until the next message), or fails c: 1009 as soon as the output passes
// MaxMessage, 1007 for data that does not inflate or invalid UTF-8.
func (l *loop) inflate(c *conn, op codec.OpCode, compressed []byte) ([]byte, bool) {
	out, err := l.inflater.Inflate(l.inflated[:0], compressed, l.node.cfg.MaxMessage)
	if cap(out) <= maxKeptInflated {
		l.inflated = out[:0]
	} else {
		l.inflated = nil // one huge message must not pin its buffer
	}
	if err != nil {
		c.fail(err.Code, err.Reason)
		return nil, false
	}
	if op == codec.OpText && codec.ValidateUTF8(codec.UTF8Accept, out) != codec.UTF8Accept {
		c.fail(codec.ErrInvalidUTF8.Code, codec.ErrInvalidUTF8.Reason)
		return nil, false
	}
	return out, true
}

// maxKeptInflated bounds the inflate buffer a loop keeps between messages.
const maxKeptInflated = 1 << 20

// acceptDeflate applies a permessage-deflate offer of the upgrade request
// to c, if compression is enabled and the client made an acceptable offer.
func (l *loop) acceptDeflate(c *conn, req *codec.Request) bool {
	if !l.node.cfg.Compression.Enabled || !req.Deflate.Accept {
		return false
	}
	bits := req.Deflate.ServerMaxWindowBits
	if bits == 0 {
		bits = 15
	}
	c.setDeflate(bits) // the window rides in conn.wsExt (parser.go)
	return true
}
