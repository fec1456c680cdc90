package codec

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// validPrefix reports whether b can still become valid UTF-8: the validator
// must reject exactly when it cannot (fail fast, but not too early).
func validPrefix(b []byte) bool {
	if utf8.Valid(b) {
		return true
	}
	for _, c1 := range []byte{0x80, 0x90, 0xA0} {
		for _, tail := range [][]byte{{c1}, {c1, 0x80}, {c1, 0x80, 0x80}} {
			var buf [64]byte
			if utf8.Valid(append(append(buf[:0], b...), tail...)) {
				return true
			}
		}
	}
	return false
}

func checkUTF8(t *testing.T, b []byte) {
	t.Helper()
	s := ValidateUTF8(UTF8Accept, b)
	if (s == UTF8Accept) != utf8.Valid(b) {
		t.Fatalf("% x: state %d, utf8.Valid %v", b, s, utf8.Valid(b))
	}
	if (s != UTF8Reject) != validPrefix(b) {
		t.Fatalf("% x: state %d, validPrefix %v", b, s, validPrefix(b))
	}
}

// classEdges holds the first and last byte of every range the DFA tells
// apart, so that sequences built from them cover every transition.
var classEdges = []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
	0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}

// Every 1- and 2-byte input, then 3- and 4-byte inputs from classEdges.
func TestUTF8Exhaustive(t *testing.T) {
	var b [4]byte
	for c0 := range 256 {
		b[0] = byte(c0)
		checkUTF8(t, b[:1])
		for c1 := range 256 {
			b[1] = byte(c1)
			checkUTF8(t, b[:2])
		}
	}
	for _, c0 := range classEdges {
		for _, c1 := range classEdges {
			for _, c2 := range classEdges {
				b = [4]byte{c0, c1, c2}
				checkUTF8(t, b[:3])
				for _, c3 := range classEdges {
					b[3] = c3
					checkUTF8(t, b[:4])
				}
			}
		}
	}
}

func TestUTF8Edges(t *testing.T) {
	cases := []string{
		"", "a", "hello world, longer than eight bytes", "κόσμε", "\u0080", "\u07ff", "\u0800", "\uffff",
		"\U00010000", "\U0010FFFF", "\xf4\x90\x80\x80", "\xed\xa0\x80", "\xed\xbf\xbf", "\xed\x9f\xbf",
		"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
		"\xf5\x80\x80\x80", "\xff", "\xfe", "\x80", "\xbf", "\xce", "\xe2\x82", "\xf0\x9f\x98",
		"12345678\xce\xba12345678", "1234567\xce\xba", "12345678\xff", "\xce\xba12345678901234567\xff",
	}
	for _, c := range cases {
		checkUTF8(t, []byte(c))
	}
}

// randomText mixes ASCII runs, valid runes of every length and, sometimes,
// garbage.
func randomText(rng *rand.Rand, n int, garbage bool) []byte {
	var b []byte
	for len(b) < n {
		switch rng.IntN(6) {
		case 0, 1:
			for range rng.IntN(20) {
				b = append(b, byte('a'+rng.IntN(26)))
			}
		case 2:
			b = utf8.AppendRune(b, rune(0x80+rng.IntN(0x780)))
		case 3:
			r := rune(0x800 + rng.IntN(0xF800))
			if r >= 0xD800 && r < 0xE000 {
				r = 0xFFFD
			}
			b = utf8.AppendRune(b, r)
		case 4:
			b = utf8.AppendRune(b, rune(0x10000+rng.IntN(0x100000)))
		case 5:
			if garbage && rng.IntN(8) == 0 {
				b = append(b, byte(0x80+rng.IntN(128)))
			} else {
				b = append(b, ' ')
			}
		}
	}
	return b
}

func TestUTF8RandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		b := randomText(rng, rng.IntN(64), rng.IntN(2) == 0)
		checkUTF8(t, b)
		want := ValidateUTF8(UTF8Accept, b)
		// Feeding in pieces gives the same final answer, and a reject in a
		// piece is final.
		s := UTF8Accept
		for rest := b; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			s = ValidateUTF8(s, rest[:n])
			rest = rest[n:]
		}
		if s != want && !(s == UTF8Reject || want == UTF8Reject) || (s == UTF8Reject) != (want == UTF8Reject) {
			t.Fatalf("% x: split state %d, whole %d", b, s, want)
		}
		if (s == UTF8Accept) != utf8.Valid(b) {
			t.Fatalf("% x: split state %d, utf8.Valid %v", b, s, utf8.Valid(b))
		}
	}
}
