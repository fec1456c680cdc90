package codec

import (
	"encoding/binary"
	"math"
)

// ParserConfig is shared by all parsers of one kind (e.g. per event loop).
type ParserConfig struct {
	// MaxMessage is the largest message (all fragments together) accepted,
	// checked from frame headers before any payload is delivered (=> 1009).
	// 0 means no limit. Limits of 4 GiB or more are not enforced exactly
	// (the running length is kept in 32 bits to keep Parser small).
	MaxMessage int
	// Client is true when we are the client: frames from the server must be
	// unmasked. When false (server), frames must be masked.
	Client bool
}

// FrameKind tells what Parser.Next found.
type FrameKind uint8

const (
	NeedMore  FrameKind = iota // consumed n bytes (maybe 0); call again when more input arrives
	DataChunk                  // a piece of a text/binary message, Payload already unmasked
	Ping                       // complete ping frame
	Pong                       // complete pong frame
	Close                      // complete close frame; CloseCode/CloseReason validated
)

// Frame is one result of Parser.Next.
type Frame struct {
	Kind FrameKind
	// Op is the frame opcode; for DataChunk it is the MESSAGE opcode (OpText
	// or OpBinary), also on chunks of continuation frames.
	Op OpCode
	// Payload is unmasked in place inside the input; it is valid until the
	// input bytes are reused.
	Payload []byte
	First   bool // DataChunk: first chunk of the message
	Fin     bool // DataChunk: last chunk of the message (text: UTF-8 fully validated)
	// Compressed (DataChunk): the message has RSV1 set (permessage-deflate):
	// Payload is deflate data and text is NOT UTF-8-checked here; the caller
	// inflates the whole message and validates it.
	Compressed bool
	// CloseCode is CloseNoStatus if the close payload was empty.
	CloseCode   CloseCode
	CloseReason []byte
}

// Parser is the per-connection incremental parser state. The zero value is
// ready to use. It keeps only what is needed to resume inside a data frame
// and a message; bytes are never copied.
type Parser struct {
	remaining uint64    // payload bytes of the current data frame not yet delivered
	msgLen    uint32    // bytes of the current message announced so far, saturating (for MaxMessage < 4 GiB)
	mask      [4]byte   // mask key of the current data frame (zero when unmasked)
	utf8      UTF8State // validator state of the current text message
	maskPos   uint8     // key offset of the next payload byte
	msgOp     OpCode    // opcode of the message in progress; 0 = none
	flags     uint8     // flag* bits below (one byte keeps Parser at 24 bytes)
}

const (
	flagFrameFin   = 1 << iota // the current data frame has FIN set
	flagFirst                  // the next chunk is the first of its message
	flagDeflate                // permessage-deflate negotiated: RSV1 allowed on a message's first frame
	flagCompressed             // the message in progress is compressed

	// Bits 4-6: the negotiated window bits minus 8 (see SetDeflate).
	windowShift = 4
	flagsExt    = flagDeflate | 7<<windowShift // what outlives a message
)

// Reset forgets any frame or message in progress (not the negotiated extension).
func (p *Parser) Reset() { *p = Parser{flags: p.flags & flagsExt} }

// SetDeflate records that permessage-deflate was negotiated, with the window
// bits (8-15) the peer allows for what we send it; 0 turns it off. Without
// it any RSV bit is a protocol error (1002). The window rides in the
// parser's spare flag bits, so a connection keeps it for free.
func (p *Parser) SetDeflate(windowBits uint8) {
	p.flags &^= flagsExt
	if windowBits != 0 {
		p.flags |= flagDeflate | (min(max(windowBits, 8), 15)-8)<<windowShift
	}
}

// DeflateWindow is the window bits given to SetDeflate, 0 when off.
func (p *Parser) DeflateWindow() uint8 {
	if p.flags&flagDeflate == 0 {
		return 0
	}
	return 8 + p.flags>>windowShift&7
}

// Deflate reports whether SetDeflate(true) was called.
func (p *Parser) Deflate() bool { return p.flags&flagDeflate != 0 }

// CompressedSlack is how much a compressed message may exceed MaxMessage on
// the wire: deflate adds 5 bytes per 64 KiB stored block to data it cannot
// shrink, so a message at the limit still fits. The inflated size is the
// caller's to check.
func CompressedSlack(maxMessage int) int { return maxMessage>>12 + 64 }

// Resting reports whether no frame or message is in progress: what p holds
// is then only its Ext, and RestingParser(p.Ext()) continues exactly as p
// would. A connection can keep that one byte instead of a whole Parser and
// borrow the full state only while a frame or message is incomplete.
func (p *Parser) Resting() bool { return p.remaining == 0 && p.msgOp == 0 }

// Ext is the part of p that outlives messages: the negotiated
// permessage-deflate and its window bits (SetDeflate).
func (p *Parser) Ext() uint8 { return p.flags & flagsExt }

// RestingParser is a parser with no frame or message in progress and the
// extension state ext (from Ext).
func RestingParser(ext uint8) Parser { return Parser{flags: ext & flagsExt} }

// InMessage reports whether a data message is in progress: a data frame
// header was read and its message is not complete yet.
func (p *Parser) InMessage() bool { return p.msgOp != 0 }

// Next parses from in. It never blocks and copes with ANY split of the input:
//   - an incomplete frame header => NeedMore, n = 0 (nothing consumed; the
//     caller keeps the bytes and presents them again with more appended)
//   - an incomplete control frame => NeedMore, n = 0 (control frames are
//     returned whole, and nothing of them is unmasked before that)
//   - a data frame whose payload is only partly present => DataChunk with the
//     bytes present (consumed, unmasked, UTF-8-checked incrementally so that
//     invalid text fails fast, mid-frame); a complete header with no payload
//     byte yet => NeedMore with the header consumed
//   - a zero-length data frame still yields a DataChunk (Fin as per frame)
//
// err != nil is a protocol violation: the caller sends a close frame with
// err.Code and closes. The parser state is then undefined (Reset to reuse).
// A nil cfg means the zero ParserConfig (server side, no size limit).
func (p *Parser) Next(in []byte, cfg *ParserConfig) (f Frame, n int, err *Error) {
	if cfg == nil {
		cfg = &ParserConfig{}
	}
	if p.remaining > 0 {
		return p.chunk(in, 0)
	}
	if len(in) < 2 {
		return Frame{}, 0, nil
	}
	b0, b1 := in[0], in[1]
	// Everything decidable from the first two bytes is checked before waiting
	// for the rest, so garbage fails at once.
	op := OpCode(b0 & 0x0F)
	rsv1 := b0&bitRsv1 != 0
	if b0&(bitsRsv&^bitRsv1) != 0 || rsv1 && p.flags&flagDeflate == 0 {
		return Frame{}, 0, ErrReservedBits
	}
	if rsv1 {
		switch {
		case op.IsControl():
			return Frame{}, 0, ErrCompressedControl
		case op == OpContinuation:
			return Frame{}, 0, ErrCompressedContinuation
		}
	}
	fin := b0&bitFin != 0
	masked := b1&bitMask != 0
	if masked == cfg.Client {
		if masked {
			return Frame{}, 0, ErrMaskedFrame
		}
		return Frame{}, 0, ErrUnmaskedFrame
	}
	length := uint64(b1 & 0x7F)
	switch op {
	case OpText, OpBinary:
		if p.msgOp != 0 {
			return Frame{}, 0, ErrExpectedContinuation
		}
	case OpContinuation:
		if p.msgOp == 0 {
			return Frame{}, 0, ErrUnexpectedContinuation
		}
	case OpClose, OpPing, OpPong:
		if !fin {
			return Frame{}, 0, ErrFragmentedControl
		}
		if length > maxControlPayload {
			return Frame{}, 0, ErrControlTooLong
		}
	default:
		return Frame{}, 0, ErrReservedOpcode
	}

	hdr := 2
	switch length {
	case 126:
		if len(in) < 4 {
			return Frame{}, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(in[2:]))
		hdr = 4
	case 127:
		if len(in) < 10 {
			return Frame{}, 0, nil
		}
		length = binary.BigEndian.Uint64(in[2:])
		if length>>63 != 0 {
			return Frame{}, 0, ErrLengthMSB
		}
		hdr = 10
	}
	if op.IsControl() {
		return p.control(in, op, hdr, masked, int(length))
	}

	// A data frame: enforce the message limit before delivering anything.
	msgLen := uint64(p.msgLen)
	if op != OpContinuation {
		msgLen = 0
	}
	if msgLen+length < msgLen {
		msgLen = ^uint64(0) // saturate (only reachable without a limit)
	} else {
		msgLen += length
	}
	compressed := rsv1 || op == OpContinuation && p.flags&flagCompressed != 0
	if limit := uint64(cfg.MaxMessage); limit > 0 {
		if compressed {
			limit += uint64(CompressedSlack(cfg.MaxMessage))
		}
		if msgLen > limit {
			return Frame{}, 0, ErrMessageTooBig
		}
	}
	var key [4]byte
	if masked {
		if len(in) < hdr+4 {
			return Frame{}, 0, nil
		}
		key = [4]byte(in[hdr : hdr+4])
		hdr += 4
	}
	// The header is complete: commit it to the state.
	if op != OpContinuation {
		p.msgOp = op
		p.flags = p.flags&flagsExt | flagFirst
		if rsv1 {
			p.flags |= flagCompressed
		}
		p.utf8 = UTF8Accept
	}
	p.msgLen = uint32(min(msgLen, math.MaxUint32))
	p.remaining = length
	p.mask = key
	p.maskPos = 0
	if fin {
		p.flags |= flagFrameFin
	} else {
		p.flags &^= flagFrameFin
	}
	return p.chunk(in, hdr)
}

// chunk delivers the payload bytes of the current data frame found in in[off:].
func (p *Parser) chunk(in []byte, off int) (Frame, int, *Error) {
	avail := len(in) - off
	if uint64(avail) > p.remaining {
		avail = int(p.remaining)
	}
	if avail == 0 && p.remaining > 0 {
		return Frame{}, off, nil // header consumed, no payload byte yet
	}
	payload := in[off : off+avail]
	if p.mask != [4]byte{} {
		p.maskPos = uint8(Mask(payload, p.mask, int(p.maskPos)))
	}
	p.remaining -= uint64(avail)
	op := p.msgOp
	fin := p.remaining == 0 && p.flags&flagFrameFin != 0
	compressed := p.flags&flagCompressed != 0
	if op == OpText && !compressed {
		p.utf8 = ValidateUTF8(p.utf8, payload)
		if p.utf8 == UTF8Reject || fin && p.utf8 != UTF8Accept {
			return Frame{}, 0, ErrInvalidUTF8
		}
	}
	f := Frame{Kind: DataChunk, Op: op, Payload: payload, First: p.flags&flagFirst != 0, Fin: fin, Compressed: compressed}
	p.flags &^= flagFirst
	if fin {
		p.msgOp = 0
		p.msgLen = 0
		p.flags &^= flagCompressed
	}
	return f, off + avail, nil
}

// control returns a whole control frame, or NeedMore without consuming or
// unmasking anything if it is not all there yet.
func (p *Parser) control(in []byte, op OpCode, hdr int, masked bool, length int) (Frame, int, *Error) {
	keyAt := hdr
	if masked {
		hdr += 4
	}
	end := hdr + length
	if len(in) < end {
		return Frame{}, 0, nil
	}
	payload := in[hdr:end]
	if masked {
		Mask(payload, [4]byte(in[keyAt:keyAt+4]), 0)
	}
	switch op {
	case OpPing:
		return Frame{Kind: Ping, Op: op, Payload: payload}, end, nil
	case OpPong:
		return Frame{Kind: Pong, Op: op, Payload: payload}, end, nil
	}
	code, reason, err := parseClosePayload(payload)
	if err != nil {
		return Frame{}, 0, err
	}
	return Frame{Kind: Close, Op: op, Payload: payload, CloseCode: code, CloseReason: reason}, end, nil
}
