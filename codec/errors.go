package codec

import "strconv"

// Error is a protocol violation found while parsing: the close code to send
// to the peer and a short reason (at most 123 bytes, so it fits a close frame).
// The parser only returns the package-level values below, so reporting an
// error never allocates.
type Error struct {
	Code   CloseCode
	Reason string
}

func (e *Error) Error() string {
	return "websocket: " + e.Reason + " (close " + strconv.Itoa(int(e.Code)) + ")"
}

// Frame-level protocol violations.
var (
	ErrUnmaskedFrame          = &Error{CloseProtocolError, "client frame is not masked"}
	ErrMaskedFrame            = &Error{CloseProtocolError, "server frame is masked"}
	ErrReservedBits           = &Error{CloseProtocolError, "reserved bits set without a negotiated extension"}
	ErrCompressedControl      = &Error{CloseProtocolError, "RSV1 (compressed) set on a control frame"}
	ErrCompressedContinuation = &Error{CloseProtocolError, "RSV1 (compressed) set on a continuation frame"}
	ErrReservedOpcode         = &Error{CloseProtocolError, "reserved opcode"}
	ErrFragmentedControl      = &Error{CloseProtocolError, "fragmented control frame"}
	ErrControlTooLong         = &Error{CloseProtocolError, "control frame payload longer than 125 bytes"}
	ErrUnexpectedContinuation = &Error{CloseProtocolError, "continuation frame without a message in progress"}
	ErrExpectedContinuation   = &Error{CloseProtocolError, "new data frame inside a fragmented message"}
	ErrLengthMSB              = &Error{CloseProtocolError, "64-bit payload length has its most significant bit set"}
	ErrMessageTooBig          = &Error{CloseMessageTooBig, "message too big"}
	ErrInvalidUTF8            = &Error{CloseInvalidPayload, "invalid UTF-8 in text message"}
	ErrCloseLength            = &Error{CloseProtocolError, "close frame payload of 1 byte"}
	ErrInvalidCloseCode       = &Error{CloseProtocolError, "invalid close code"}
	ErrInvalidCloseReason     = &Error{CloseInvalidPayload, "invalid UTF-8 in close reason"}
)
