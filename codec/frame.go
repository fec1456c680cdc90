// Package codec is fanwire's RFC 6455 codec: an incremental frame parser, a
// frame encoder and the HTTP upgrade handshake, all over byte slices. It does
// no I/O, starts no goroutines and reads no clocks, so an event loop can run
// it on whatever bytes it has buffered, split anywhere.
package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// OpCode is a frame opcode.
type OpCode byte

// Opcodes defined by RFC 6455; the values match gobwas/ws.
const (
	OpContinuation OpCode = OpCode(ws.OpContinuation)
	OpText         OpCode = OpCode(ws.OpText)
	OpBinary       OpCode = OpCode(ws.OpBinary)
	OpClose        OpCode = OpCode(ws.OpClose)
	OpPing         OpCode = OpCode(ws.OpPing)
	OpPong         OpCode = OpCode(ws.OpPong)
)

// IsControl reports whether op is a control opcode (close, ping, pong, reserved 0xB-0xF).
func (op OpCode) IsControl() bool { return op&0x8 != 0 }

const (
	bitFin  = 0x80
	bitsRsv = 0x70
	bitRsv1 = 0x40 // permessage-deflate: the message is compressed
	bitMask = 0x80

	// maxControlPayload is the largest payload a control frame may carry.
	maxControlPayload = 125
)

// PingFrame is a precompiled empty ping as a server sends it (unmasked).
// Treat it as read-only: it is shared by every connection.
var PingFrame = []byte{bitFin | byte(OpPing), 0}

// HeaderSize returns the size of a frame header for a payload of payloadLen bytes.
func HeaderSize(payloadLen int, masked bool) int {
	n := 2
	switch {
	case payloadLen > 0xFFFF:
		n += 8
	case payloadLen > maxControlPayload:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}

// AppendHeader appends an unmasked frame header for a payload of payloadLen bytes.
func AppendHeader(dst []byte, op OpCode, fin bool, payloadLen int) []byte {
	return appendHeader(dst, op, fin, payloadLen, 0)
}

func appendHeader(dst []byte, op OpCode, fin bool, payloadLen int, maskBit byte) []byte {
	b0 := byte(op) & 0x0F
	if fin {
		b0 |= bitFin
	}
	switch {
	case payloadLen > 0xFFFF:
		dst = append(dst, b0, maskBit|127)
		return binary.BigEndian.AppendUint64(dst, uint64(payloadLen))
	case payloadLen > maxControlPayload:
		dst = append(dst, b0, maskBit|126)
		return binary.BigEndian.AppendUint16(dst, uint16(payloadLen))
	default:
		return append(dst, b0, maskBit|byte(payloadLen))
	}
}

// AppendFrame appends a complete (FIN) unmasked frame, as a server sends it.
func AppendFrame(dst []byte, op OpCode, payload []byte) []byte {
	dst = appendHeader(dst, op, true, len(payload), 0)
	return append(dst, payload...)
}

// AppendMaskedFrame appends a frame masked with key, as a client sends it.
// payload itself is not modified.
func AppendMaskedFrame(dst []byte, op OpCode, fin bool, payload []byte, key [4]byte) []byte {
	dst = appendHeader(dst, op, fin, len(payload), bitMask)
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	Mask(dst[start:], key, 0)
	return dst
}

// Mask XORs b in place with key, starting at key offset pos, and returns the
// key offset for the byte after b, so masking can resume across chunks.
// Masking and unmasking are the same operation.
func Mask(b []byte, key [4]byte, pos int) int {
	ws.Cipher(b, key, pos&3)
	return (pos + len(b)) & 3
}
