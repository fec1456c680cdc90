package codec

import (
	"encoding/binary"
	"unicode/utf8"
)

// CloseCode is a close status code (RFC 6455 section 7.4).
type CloseCode uint16

const (
	CloseNormal             CloseCode = 1000
	CloseGoingAway          CloseCode = 1001
	CloseProtocolError      CloseCode = 1002
	CloseUnsupportedData    CloseCode = 1003
	CloseNoStatus           CloseCode = 1005 // never on the wire: the close frame had no payload
	CloseAbnormal           CloseCode = 1006 // never on the wire: the connection dropped without a close
	CloseInvalidPayload     CloseCode = 1007
	ClosePolicyViolation    CloseCode = 1008
	CloseMessageTooBig      CloseCode = 1009
	CloseMandatoryExtension CloseCode = 1010
	CloseInternalError      CloseCode = 1011
	CloseServiceRestart     CloseCode = 1012
	CloseTryAgainLater      CloseCode = 1013
)

// maxCloseReason is what is left of a control frame payload after the code.
const maxCloseReason = maxControlPayload - 2

// ValidCloseCode reports whether code may appear in a close frame on the wire:
// 1000-1003, 1007-1014 (IANA registered) and 3000-4999 (libraries, applications).
func ValidCloseCode(code CloseCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// parseClosePayload validates an (unmasked) close payload.
func parseClosePayload(p []byte) (CloseCode, []byte, *Error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, nil, nil
	case 1:
		return 0, nil, ErrCloseLength
	}
	code := CloseCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return 0, nil, ErrInvalidCloseCode
	}
	reason := p[2:]
	if ValidateUTF8(UTF8Accept, reason) != UTF8Accept {
		return 0, nil, ErrInvalidCloseReason
	}
	return code, reason, nil
}

// AppendCloseFrame appends an unmasked close frame, as a server sends it.
// reason is cut to 123 bytes at a rune boundary. A code that may not be sent
// (CloseNoStatus, 0, ...) yields a close frame with an empty payload.
func AppendCloseFrame(dst []byte, code CloseCode, reason string) []byte {
	return appendCloseFrame(dst, code, reason, false, [4]byte{})
}

// AppendMaskedCloseFrame is AppendCloseFrame masked with key, as a client sends it.
func AppendMaskedCloseFrame(dst []byte, code CloseCode, reason string, key [4]byte) []byte {
	return appendCloseFrame(dst, code, reason, true, key)
}

func appendCloseFrame(dst []byte, code CloseCode, reason string, masked bool, key [4]byte) []byte {
	n := 0
	if ValidCloseCode(code) {
		reason = cutReason(reason)
		n = 2 + len(reason)
	}
	var maskBit byte
	if masked {
		maskBit = bitMask
	}
	dst = appendHeader(dst, OpClose, true, n, maskBit)
	if masked {
		dst = append(dst, key[:]...)
	}
	if n == 0 {
		return dst
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, reason...)
	if masked {
		Mask(dst[start:], key, 0)
	}
	return dst
}

// cutReason shortens s to at most maxCloseReason bytes without splitting a rune.
func cutReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	i := maxCloseReason
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
