package codec

import (
	"bytes"
	"encoding/binary"
)

// Small HTTP/1.1 header-block primitives shared by the server and client
// sides of the handshake. They work on byte slices and never copy.

// headerEnd returns the length of the header block (through the blank line)
// at the start of in, or 0 if it is not complete yet. bad reports a line
// ending in a bare LF, which is rejected rather than waited on.
func headerEnd(in []byte) (end int, bad bool) {
	start := 0
	for {
		i := bytes.IndexByte(in[start:], '\n')
		if i < 0 {
			return 0, false
		}
		lf := start + i
		if lf == 0 || in[lf-1] != '\r' {
			return 0, true
		}
		if lf-1 == start {
			return lf + 1, false
		}
		start = lf + 1
	}
}

// cutLine splits b (a complete header block) after the first CRLF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	return b[:i-1], b[i+1:]
}

// splitHeader splits "Name: value", trimming optional whitespace around the
// value. Obsolete line folding, whitespace before the colon, an invalid name
// or control characters in the value are malformed.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, false
	}
	value = line[colon+1:]
	if !validValue(value) {
		return nil, nil, false
	}
	return line[:colon], trimOWS(value), true
}

// validValue reports whether b is free of control characters other than
// HTAB. It tests 8 bytes at a time (SWAR) and looks closer only at words
// that hold a byte < 0x20 or a DEL.
func validValue(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		del := x ^ 0x7F*lo // DEL bytes become zero
		if (x-0x20*lo)&^x&hi != 0 || (del-lo)&^del&hi != 0 {
			if !validValueBytes(b[:8]) {
				return false
			}
		}
		b = b[8:]
	}
	return validValueBytes(b)
}

func validValueBytes(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7F {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isToken reports whether b is a non-empty RFC 7230 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}

// hasToken reports whether the comma-separated list value contains token
// (ASCII case-insensitive), e.g. "keep-alive, Upgrade" has "upgrade".
func hasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var item []byte
		if i := bytes.IndexByte(value, ','); i >= 0 {
			item, value = value[:i], value[i+1:]
		} else {
			item, value = value, nil
		}
		item = trimOWS(item)
		if equalFold(item, token) {
			return true
		}
	}
	return false
}

// equalFold compares b with the lower-case ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
