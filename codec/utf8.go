package codec

import "unicode/utf8"

// UTF8State is the state of the streaming UTF-8 validator. Validation can
// stop anywhere, even inside a code point, and resume with the next bytes.
type UTF8State uint32

const (
	UTF8Accept UTF8State = 0  // at a code point boundary, everything valid so far
	UTF8Reject UTF8State = 12 // invalid; sticky
)

// ValidateUTF8 feeds b to the validator in state s and returns the new state.
// UTF8Reject is returned as soon as b holds a sequence that no continuation
// can make valid; a complete text is valid iff the final state is UTF8Accept.
//
// The state machine is Bjoern Hoehrmann's DFA (states premultiplied by 12).
// It only runs on the edges of b: to finish a code point begun in an earlier
// call, and on a code point cut off at the end of b. Everything between is
// whole code points, checked by unicode/utf8.Valid, which skips ASCII 8
// bytes at a time and decodes other runes much faster than a DFA.
func ValidateUTF8(s UTF8State, b []byte) UTF8State {
	for s != UTF8Accept && len(b) > 0 {
		if s == UTF8Reject {
			return s
		}
		s = step(s, b[0])
		b = b[1:]
	}
	if len(b) == 0 {
		return s
	}
	// Split off a trailing code point that is not complete yet.
	body, tail := b, b[len(b):]
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if b[i]&0xC0 != 0x80 { // first byte of the last code point
			if !utf8.FullRune(b[i:]) {
				body, tail = b[:i], b[i:]
			}
			break
		}
	}
	if !utf8.Valid(body) {
		return UTF8Reject
	}
	for _, c := range tail {
		if s = step(s, c); s == UTF8Reject {
			break
		}
	}
	return s
}

func step(s UTF8State, c byte) UTF8State {
	return UTF8State(utf8Trans[uint32(s)+uint32(utf8Class[c])])
}

// utf8Class maps a byte to its character class.
var utf8Class = [256]uint8{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
}

// utf8Trans maps state+class to the next state.
var utf8Trans = [108]uint8{
	0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72, // accept
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, // reject
	12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12, // 1 continuation byte left
	12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12, // 2 left
	12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, // after E0: A0..BF
	12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12, // after ED: 80..9F (no surrogates)
	12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, // after F0: 90..BF
	12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, // 3 left (F1..F3)
	12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, // after F4: 80..8F (<= U+10FFFF)
}
