package codec

import (
	"bytes"
	"errors"
	"io"
	"math"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate data (RFC 7692 section 7.2) without context takeover:
// every message is compressed and inflated on its own, so one Compressor and
// one Decompressor serve any number of connections, one message at a time.

// deflateTail ends every sync-flushed message; the sender strips it and the
// receiver appends it again (RFC 7692 7.2.1, 7.2.2).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// ErrBadCompressedData: a compressed message does not inflate.
var ErrBadCompressedData = &Error{CloseInvalidPayload, "invalid permessage-deflate data"}

// Compressor compresses whole messages. It is not safe for concurrent use;
// keep one per event loop (the flate state is a few hundred KiB).
type Compressor struct {
	w   *flate.Writer
	out sliceWriter
}

// Compression levels accepted by NewCompressor (klauspost/compress/flate).
const (
	MinCompressLevel = flate.BestSpeed
	MaxCompressLevel = flate.BestCompression
)

// NewCompressor returns a compressor at level 1 (fastest) to 9 (smallest).
func NewCompressor(level int) (*Compressor, error) {
	if level < MinCompressLevel || level > MaxCompressLevel {
		return nil, errors.New("compression level must be 1 to 9")
	}
	c := &Compressor{}
	w, err := flate.NewWriter(&c.out, level)
	if err != nil {
		return nil, err
	}
	c.w = w
	return c, nil
}

// maxKeptScratch bounds the scratch buffers kept between messages.
const maxKeptScratch = 1 << 20

// AppendFrame appends one complete server frame (FIN, RSV1, unmasked) whose
// payload is payload compressed, sync-flushed, without the 00 00 ff ff tail.
func (c *Compressor) AppendFrame(dst []byte, op OpCode, payload []byte) []byte {
	z := c.compress(payload)
	hdr := len(dst)
	dst = appendHeader(dst, op, true, len(z), 0)
	dst[hdr] |= bitRsv1
	dst = append(dst, z...)
	c.release()
	return dst
}

// compress returns payload's deflate data (in scratch space, valid until the next call).
func (c *Compressor) compress(payload []byte) []byte {
	c.out.b = c.out.b[:0]
	c.w.Reset(&c.out)
	_, _ = c.w.Write(payload) // a sliceWriter never fails
	_ = c.w.Flush()
	z := c.out.b
	if bytes.HasSuffix(z, deflateTail) {
		z = z[:len(z)-len(deflateTail)]
	}
	return z
}

func (c *Compressor) release() {
	if cap(c.out.b) > maxKeptScratch {
		c.out.b = nil
	}
}

// sliceWriter is an io.Writer appending to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Decompressor inflates whole messages with a bounded output. It is not
// safe for concurrent use; keep one per event loop (about 40 KiB of window
// and tables, allocated on first use).
type Decompressor struct {
	r   io.ReadCloser
	in  bytes.Reader
	src []byte // the message's compressed bytes plus the tail
}

// Inflate appends the inflated message to dst. compressed is the message's
// payload (all its frames, unmasked). More than limit bytes of output is
// ErrMessageTooBig, found while inflating: at most limit+1 bytes are ever
// produced, whatever the input claims (a zip bomb costs bounded CPU and
// memory). Data that does not inflate is ErrBadCompressedData. On error dst
// is returned unchanged.
func (d *Decompressor) Inflate(dst, compressed []byte, limit int) ([]byte, *Error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	d.src = append(append(d.src[:0], compressed...), deflateTail...)
	d.in.Reset(d.src)
	if d.r == nil {
		d.r = flate.NewReader(&d.in)
	} else if err := d.r.(flate.Resetter).Reset(&d.in, nil); err != nil {
		return dst, ErrBadCompressedData
	}
	defer d.release()
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			grow := max(cap(dst)-start, 4096)
			grow = min(grow, start+limit+1-len(dst))
			grown := make([]byte, len(dst), cap(dst)+grow) // exact: never past limit+1
			copy(grown, dst)
			dst = grown
		}
		n, err := d.r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], ErrMessageTooBig
		}
		switch {
		case err == nil:
		case err == io.EOF: // the client set BFINAL: anything after it is ignored
			return dst, nil
		case err == io.ErrUnexpectedEOF && d.in.Len() == 0: // the usual end: the tail's empty block
			return dst, nil
		default:
			return dst[:start], ErrBadCompressedData
		}
	}
}

func (d *Decompressor) release() {
	if cap(d.src) > maxKeptScratch {
		d.src = nil
	}
	d.in.Reset(nil)
}
