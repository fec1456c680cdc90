package codec

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
	"unicode/utf8"
)

// FuzzParser: any input, fed whole, in two pieces and byte by byte, must give
// the same result, and never panic.
func FuzzParser(f *testing.F) {
	for _, tc := range parserCases {
		if in := h(tc.in); len(in) < 4096 {
			mode := byte(tc.max)
			if tc.client {
				mode |= 0x80
			}
			f.Add(in, mode)
		}
	}
	for _, s := range testStreams(true) {
		if len(s.buf) < 4096 {
			f.Add(s.buf, byte(7))
		}
	}
	for _, s := range testStreams(false) {
		if len(s.buf) < 4096 {
			f.Add(s.buf, byte(0x81))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, mode byte) {
		cfg := ParserConfig{Client: mode&0x80 != 0, MaxMessage: int(mode & 0x7F)}
		if cfg.MaxMessage == 0x7F {
			cfg.MaxMessage = 0 // sometimes no limit
		}
		whole, broken := parseChunks(cfg, in)
		if broken != "" {
			t.Fatalf("whole: %s", broken)
		}
		cut := 0
		if len(in) > 0 {
			cut = int(mode) * 7 % (len(in) + 1)
		}
		// What we accept, an independent reader reads the same way.
		if whole.err == nil {
			if other := joinEvents(gobwasEvents(in)); other != whole.String() {
				t.Fatalf("gobwas/ws reads it differently:\n ours   %s\n gobwas %s", whole, other)
			}
		}
		for _, chunks := range [][][]byte{splitAt(in, cut), splitAt(in, len(in)/2), bytewise(in)} {
			got, broken := parseChunks(cfg, chunks...)
			if broken != "" || got.String() != whole.String() {
				t.Fatalf("chunks %v: %s\n got  %s\n want %s", chunkLens(chunks), broken, got, whole)
			}
		}
		// A parser kept as its Ext byte whenever it rests reads the same,
		// with and without permessage-deflate.
		for _, window := range []uint8{0, 8 + mode%8} {
			want, _ := parseChunksResting(cfg, false, window, in)
			for _, chunks := range [][][]byte{{in}, splitAt(in, cut), bytewise(in)} {
				if got, broken := parseChunksResting(cfg, true, window, chunks...); broken != "" || got.String() != want.String() {
					t.Fatalf("resting, window %d, chunks %v: %s\n got  %s\n want %s", window, chunkLens(chunks), broken, got, want)
				}
			}
		}
	})
}

// FuzzParseRequest: never panics; a parsed request is a set of slices into
// the input, incomplete prefixes stay incomplete, and anything we accept is
// also accepted by net/http.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(browserRequest))
	for _, c := range requestCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET http://h/ws?x HTTP/1.1\r\nConnection: a, upgrade\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("POST /ws HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET /ws HTTP/1.1\nHost: h\n\n"))
	f.Add(AppendAcceptResponse(nil, []byte("dGhlIHNhbXBsZSBub25jZQ==")))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The client side reads the same kind of header block: no panics.
		if n, _, err := CheckAcceptResponse(in, []byte("dGhlIHNhbXBsZSBub25jZQ==")); n > len(in) || err == nil && n == 0 && len(in) >= maxResponseHeader {
			t.Fatalf("CheckAcceptResponse: n=%d err=%v", n, err)
		}
		req, n, err := ParseRequest(in, 1024)
		if err != nil || n == 0 {
			if n != 0 {
				t.Fatalf("n=%d with err %v", n, err)
			}
			return
		}
		if n > len(in) || n > 1024 {
			t.Fatalf("n=%d len=%d", n, len(in))
		}
		checkErr := req.Check()
		for _, field := range [][]byte{req.Method, req.Path, req.Query, req.Host, req.Key, req.Version, req.Origin, req.Protocol} {
			if len(field) > 0 && !within(field, in[:n]) {
				t.Fatalf("field %q not inside the header block", field)
			}
		}
		again, n2, err2 := ParseRequest(in[:n], 1024)
		if err2 != nil || n2 != n || string(again.Key) != string(req.Key) {
			t.Fatalf("reparse: n=%d err=%v", n2, err2)
		}
		// We are stricter than net/http: a valid upgrade must parse there too.
		if checkErr == nil {
			if _, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[:n]))); herr != nil {
				t.Fatalf("net/http rejects what we accept: %v", herr)
			}
		}
	})
}

func within(field, block []byte) bool {
	for i := range block {
		if &block[i] == &field[0] {
			return i+len(field) <= len(block)
		}
	}
	return false
}

// FuzzUTF8: ValidateUTF8 agrees with unicode/utf8, whole and split.
func FuzzUTF8(f *testing.F) {
	f.Add([]byte("hello"), 2)
	f.Add([]byte("κόσμε 😀 \xed\xa0\x80"), 5)
	f.Add([]byte("\xf4\x90\x80\x80"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		s := ValidateUTF8(UTF8Accept, b)
		if (s == UTF8Accept) != utf8.Valid(b) {
			t.Fatalf("% x: state %d, utf8.Valid %v", b, s, utf8.Valid(b))
		}
		if (s != UTF8Reject) != validPrefix(b) {
			t.Fatalf("% x: state %d, validPrefix %v", b, s, validPrefix(b))
		}
		if len(b) > 0 {
			cut = (cut%len(b) + len(b)) % len(b)
			if split := ValidateUTF8(ValidateUTF8(UTF8Accept, b[:cut]), b[cut:]); split != s {
				t.Fatalf("% x cut %d: split %d whole %d", b, cut, split, s)
			}
		}
	})
}
