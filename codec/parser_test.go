package codec

import (
	"fmt"
	"strings"
	"testing"
)

const k0 = "00000000" // zero mask key: payload bytes read as written

var parserCases = []struct {
	name   string
	client bool
	max    int
	in     string // hex
	want   string // result.String()
}{
	// Valid frames.
	{name: "rfc masked hello", in: "81 85 37fa213d 7f9f4d5158", want: "text:Hello"},
	{name: "client unmasked hello", client: true, in: "81 05 48656c6c6f", want: "text:Hello"},
	{name: "empty text", in: "81 80 01020304", want: "text:"},
	{name: "binary", in: "82 83" + k0 + "010203", want: "binary:010203"},
	{name: "fragmented text", in: "01 83" + k0 + "48656c 00 80" + k0 + "80 82" + k0 + "6c6f", want: "text:Hello"},
	{name: "fragmented binary, masked", in: "02 82 a1b2c3d4 a0b0 80 81 a1b2c3d4 a2", want: "binary:010203"},
	{name: "ping empty", in: "89 80 11223344", want: "ping:"},
	{name: "ping hi", in: "89 82" + k0 + "6869", want: "ping:hi"},
	{name: "pong", in: "8a 80" + k0, want: "pong:"},
	{name: "close empty", in: "88 80" + k0, want: "close:1005:"},
	{name: "close 1000", in: "88 82" + k0 + "03e8", want: "close:1000:"},
	{name: "close 1000 ok", in: "88 84" + k0 + "03e8 6f6b", want: "close:1000:ok"},
	{name: "close 1003", in: "88 82" + k0 + "03eb", want: "close:1003:"},
	{name: "close 1007", in: "88 82" + k0 + "03ef", want: "close:1007:"},
	{name: "close 1014", in: "88 82" + k0 + "03f6", want: "close:1014:"},
	{name: "close 3000", in: "88 82" + k0 + "0bb8", want: "close:3000:"},
	{name: "close 4999", in: "88 82" + k0 + "1387", want: "close:4999:"},
	{name: "close utf8 reason", in: "88 84" + k0 + "03e8 ceba", want: "close:1000:κ"},
	{name: "ping inside fragmented text", in: "01 81" + k0 + "48  89 80" + k0 + "  80 81" + k0 + "69", want: "ping: | text:Hi"},
	{name: "close inside fragmented text", in: "01 81" + k0 + "48  88 80" + k0, want: "close:1005:"},
	{name: "rune split across fragments", in: "01 81" + k0 + "ce  80 81" + k0 + "ba", want: "text:κ"},
	{name: "4-byte rune split 1+2+1", in: "01 81" + k0 + "f0  00 82" + k0 + "9f98  80 81" + k0 + "80", want: "text:😀"},
	{name: "16-bit length", in: "81 fe 007e" + k0 + strings.Repeat("61", 126), want: "text:" + strings.Repeat("a", 126)},
	{name: "64-bit length", in: "82 ff 0000000000010000" + k0 + strings.Repeat("00", 65536), want: "binary:" + strings.Repeat("00", 65536)},
	{name: "non-minimal length accepted", in: "81 fe 0002" + k0 + "6869", want: "text:hi"},
	{name: "max message exact", max: 5, in: "81 85 37fa213d 7f9f4d5158", want: "text:Hello"},
	{name: "max message fragments exact", max: 5, in: "01 83" + k0 + "48656c 80 82" + k0 + "6c6f", want: "text:Hello"},
	{name: "max counts per message", max: 3, in: "81 83" + k0 + "616263 81 83" + k0 + "646566", want: "text:abc | text:def"},
	{name: "control frames do not count", max: 1, in: "01 81" + k0 + "61 89 85" + k0 + "6162636465 80 80" + k0, want: "ping:abcde | text:a"},
	{name: "truncated header", in: "81", want: ""},
	{name: "truncated control", in: "89 85" + k0 + "6869", want: ""},

	// Violations.
	{name: "unmasked client frame", in: "81 05 48656c6c6f", want: "ERR " + ErrUnmaskedFrame.Reason},
	{name: "masked server frame", client: true, in: "81 85 37fa213d 7f9f4d5158", want: "ERR " + ErrMaskedFrame.Reason},
	{name: "rsv1", in: "c1 80" + k0, want: "ERR " + ErrReservedBits.Reason},
	{name: "rsv2", in: "a1 80" + k0, want: "ERR " + ErrReservedBits.Reason},
	{name: "rsv3", in: "91 80" + k0, want: "ERR " + ErrReservedBits.Reason},
	{name: "rsv on ping", in: "c9 80" + k0, want: "ERR " + ErrReservedBits.Reason},
	{name: "fragmented ping", in: "09 80" + k0, want: "ERR " + ErrFragmentedControl.Reason},
	{name: "fragmented close", in: "08 80" + k0, want: "ERR " + ErrFragmentedControl.Reason},
	{name: "ping 126 bytes", in: "89 fe 007e" + k0 + strings.Repeat("61", 126), want: "ERR " + ErrControlTooLong.Reason},
	{name: "ping 125 bytes ok", in: "89 fd" + k0 + strings.Repeat("61", 125), want: "ping:" + strings.Repeat("a", 125)},
	{name: "close 1 byte", in: "88 81" + k0 + "03", want: "ERR " + ErrCloseLength.Reason},
	{name: "close invalid reason", in: "88 83" + k0 + "03e8 ff", want: "ERR " + ErrInvalidCloseReason.Reason},
	{name: "close truncated rune reason", in: "88 83" + k0 + "03e8 ce", want: "ERR " + ErrInvalidCloseReason.Reason},
	{name: "continuation without start", in: "80 80" + k0, want: "ERR " + ErrUnexpectedContinuation.Reason},
	{name: "continuation after finished message", in: "81 81" + k0 + "61 80 81" + k0 + "62", want: "text:a | ERR " + ErrUnexpectedContinuation.Reason},
	{name: "text inside fragmented text", in: "01 81" + k0 + "61 81 81" + k0 + "62", want: "ERR " + ErrExpectedContinuation.Reason},
	{name: "binary inside fragmented text", in: "01 81" + k0 + "61 02 81" + k0 + "62", want: "ERR " + ErrExpectedContinuation.Reason},
	{name: "64-bit length msb", in: "82 ff 8000000000000000" + k0, want: "ERR " + ErrLengthMSB.Reason},
	{name: "too big single frame", max: 4, in: "82 85" + k0 + "0102030405", want: "ERR " + ErrMessageTooBig.Reason},
	{name: "too big across fragments", max: 4, in: "02 83" + k0 + "010203 80 82" + k0 + "0405", want: "ERR " + ErrMessageTooBig.Reason},
	{name: "too big checked from header alone", max: 4, in: "82 ff 0000000100000000", want: "ERR " + ErrMessageTooBig.Reason},
	{name: "invalid utf8", in: "81 81" + k0 + "ff", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "surrogate", in: "81 83" + k0 + "eda080", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "overlong", in: "81 82" + k0 + "c0af", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "above U+10FFFF", in: "81 84" + k0 + "f4908080", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "truncated rune at fin", in: "81 81" + k0 + "ce", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "truncated rune at message end", in: "01 81" + k0 + "ce 80 81" + k0 + "41", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "invalid utf8 fails before frame is complete", in: "81 8a" + k0 + "61 ff 61", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "invalid utf8 in a later fragment fails fast", in: "01 81" + k0 + "61 00 8a" + k0 + "c0", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "client: fragmented text with ping", client: true, in: "01 02 cebA 89 00 80 01 21", want: "ping: | text:κ!"},
	{name: "client: close 1001 reason", client: true, in: "88 05 03e9 627965", want: "close:1001:bye"},
	{name: "client: rsv1", client: true, in: "c1 00", want: "ERR " + ErrReservedBits.Reason},
	{name: "client: fragmented pong", client: true, in: "0a 00", want: "ERR " + ErrFragmentedControl.Reason},
	{name: "client: close code 1006", client: true, in: "88 02 03ee", want: "ERR " + ErrInvalidCloseCode.Reason},
	{name: "client: invalid utf8", client: true, in: "81 03 eda080", want: "ERR " + ErrInvalidUTF8.Reason},
	{name: "client: too big", client: true, max: 2, in: "81 03 616263", want: "ERR " + ErrMessageTooBig.Reason},
	{name: "binary is not utf8-checked", in: "82 81" + k0 + "ff", want: "binary:ff"},
}

func TestParserTable(t *testing.T) {
	for _, tc := range parserCases {
		cfg := ParserConfig{Client: tc.client, MaxMessage: tc.max}
		got := checkAllSplits(t, tc.name, cfg, h(tc.in))
		if got.String() != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
}

func TestParserReservedOpcodes(t *testing.T) {
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		for _, fin := range []byte{0, 0x80} {
			in := h(fmt.Sprintf("%02x 80", fin|op) + k0)
			got, _ := parseChunks(ParserConfig{}, in)
			if got.err != ErrReservedOpcode {
				t.Errorf("opcode %x fin %x: got %v", op, fin, got)
			}
		}
	}
}

func TestParserCloseCodes(t *testing.T) {
	for code := 0; code < 1<<16; code++ {
		in := h(fmt.Sprintf("88 82 %s %04x", k0, code))
		got, _ := parseChunks(ParserConfig{}, in)
		valid := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
		if valid != ValidCloseCode(CloseCode(code)) {
			t.Fatalf("ValidCloseCode(%d) = %v", code, !valid)
		}
		if valid && got.String() != fmt.Sprintf("close:%d:", code) || !valid && got.err != ErrInvalidCloseCode {
			t.Fatalf("code %d: got %v", code, got)
		}
	}
}

// Partial payloads: delivered at once, consumed and unmasked; the mask
// position carries over to the next chunk.
func TestParserPartialDataChunks(t *testing.T) {
	var p Parser
	cfg := ParserConfig{}
	frame := AppendMaskedFrame(nil, OpText, true, []byte("Hello, world"), [4]byte{1, 2, 3, 4})

	f, n, err := p.Next(frame[:1], &cfg)
	if err != nil || f.Kind != NeedMore || n != 0 {
		t.Fatalf("1 byte: %+v n=%d err=%v", f, n, err)
	}
	f, n, err = p.Next(frame[:6], &cfg) // header + key, no payload
	if err != nil || f.Kind != NeedMore || n != 6 {
		t.Fatalf("header only: %+v n=%d err=%v", f, n, err)
	}
	f, n, err = p.Next(frame[6:9], &cfg)
	if err != nil || f.Kind != DataChunk || n != 3 || string(f.Payload) != "Hel" || !f.First || f.Fin || f.Op != OpText {
		t.Fatalf("chunk 1: %+v n=%d err=%v", f, n, err)
	}
	f, n, err = p.Next(frame[9:9], &cfg)
	if err != nil || f.Kind != NeedMore || n != 0 {
		t.Fatalf("empty input mid-frame: %+v n=%d err=%v", f, n, err)
	}
	f, n, err = p.Next(frame[9:], &cfg)
	if err != nil || f.Kind != DataChunk || n != 9 || string(f.Payload) != "lo, world" || f.First || !f.Fin {
		t.Fatalf("chunk 2: %+v n=%d err=%v", f, n, err)
	}
}

// An incomplete control frame must be left untouched: the caller presents
// the same raw bytes again.
func TestParserControlNotUnmaskedEarly(t *testing.T) {
	var p Parser
	cfg := ParserConfig{}
	frame := AppendMaskedFrame(nil, OpPing, true, []byte("ping!"), [4]byte{9, 8, 7, 6})
	orig := append([]byte(nil), frame...)
	for i := 0; i < len(frame); i++ {
		f, n, err := p.Next(frame[:i], &cfg)
		if err != nil || f.Kind != NeedMore || n != 0 {
			t.Fatalf("prefix %d: %+v n=%d err=%v", i, f, n, err)
		}
		if string(frame) != string(orig) {
			t.Fatalf("prefix %d: input modified", i)
		}
	}
	f, n, err := p.Next(frame, &cfg)
	if err != nil || f.Kind != Ping || n != len(frame) || string(f.Payload) != "ping!" {
		t.Fatalf("whole: %+v n=%d err=%v", f, n, err)
	}
}

// MaxMessage is enforced from the header: no payload byte is delivered.
func TestParserMaxMessageBeforePayload(t *testing.T) {
	var p Parser
	cfg := ParserConfig{MaxMessage: 10}
	frame := AppendMaskedFrame(nil, OpBinary, true, make([]byte, 11), [4]byte{1, 2, 3, 4})
	f, _, err := p.Next(frame[:2], &cfg)
	if err != ErrMessageTooBig || f.Kind != NeedMore {
		t.Fatalf("got %+v, %v", f, err)
	}
}

func TestParserReset(t *testing.T) {
	var p Parser
	cfg := ParserConfig{}
	frame := AppendMaskedFrame(nil, OpText, false, []byte("abc"), [4]byte{1, 2, 3, 4})
	if _, _, err := p.Next(frame[:7], &cfg); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	if p != (Parser{}) {
		t.Fatalf("Reset left %+v", p)
	}
}

// TestParserResting: a parser replaced by RestingParser(p.Ext()) whenever
// it rests (what a server keeping one byte per idle connection does) reads
// every test stream exactly like one kept whole, split any way.
func TestParserResting(t *testing.T) {
	for _, client := range []bool{true, false} {
		cfg := ParserConfig{Client: !client}
		for name, s := range testStreams(client) {
			for _, window := range []uint8{0, 15} {
				want, _ := parseChunksResting(cfg, false, window, s.buf)
				for _, chunks := range [][][]byte{{s.buf}, splitAt(s.buf, len(s.buf)/3, len(s.buf)/2), bytewise(s.buf)} {
					got, broken := parseChunksResting(cfg, true, window, chunks...)
					if broken != "" || got.String() != want.String() {
						t.Fatalf("%s, window %d, chunks %v: %s\n got  %s\n want %s", name, window, chunkLens(chunks), broken, got, want)
					}
				}
			}
		}
	}
	var p Parser
	p.SetDeflate(11)
	if q := RestingParser(p.Ext()); !p.Resting() || q.DeflateWindow() != 11 {
		t.Fatal("a fresh parser rests, and its Ext keeps the deflate window")
	}
}
