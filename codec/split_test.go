package codec

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// streamBuilder writes client (masked) or server (unmasked) frames and
// records the result the parser must produce.
type streamBuilder struct {
	client bool // frames as a client writes them (masked)
	buf    []byte
	want   []string
	key    byte
}

func (s *streamBuilder) frame(op OpCode, fin bool, payload []byte) {
	if s.client {
		s.key += 0x3b
		key := [4]byte{s.key, s.key ^ 0x55, s.key + 7, 0xa5}
		s.buf = AppendMaskedFrame(s.buf, op, fin, payload, key)
		return
	}
	s.buf = appendHeader(s.buf, op, fin, len(payload), 0)
	s.buf = append(s.buf, payload...)
}

// message writes msg as text in fragments of the given sizes, with a ping
// between fragments when pings is set.
func (s *streamBuilder) message(op OpCode, msg string, sizes []int, pings bool) {
	rest := []byte(msg)
	first := true
	for i := 0; ; i++ {
		size := len(rest)
		if i < len(sizes) && sizes[i] < size {
			size = sizes[i]
		}
		fop := OpContinuation
		if first {
			fop = op
		}
		fin := size == len(rest)
		s.frame(fop, fin, rest[:size])
		rest = rest[size:]
		first = false
		if fin {
			break
		}
		if pings {
			s.frame(OpPing, true, []byte("p"))
			s.want = append(s.want, "ping:p")
		}
	}
	if op == OpText {
		s.want = append(s.want, "text:"+msg)
	} else {
		s.want = append(s.want, "binary:"+hexString(msg))
	}
}

func hexString(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

func testStreams(client bool) map[string]*streamBuilder {
	streams := map[string]*streamBuilder{}
	add := func(name string, build func(s *streamBuilder)) {
		s := &streamBuilder{client: client}
		build(s)
		streams[name] = s
	}
	add("simple", func(s *streamBuilder) {
		s.message(OpText, "hello", nil, false)
		s.message(OpBinary, "\x00\x01\xff", nil, false)
		s.message(OpText, "", nil, false)
	})
	add("fragmented multibyte", func(s *streamBuilder) {
		// Every rune boundary and non-boundary lands on a fragment edge.
		s.message(OpText, "aκ😀€z", []int{2, 1, 3, 1, 1, 1}, false)
		s.message(OpText, "😀😀", []int{1, 1, 1, 1, 1, 1, 1}, true)
	})
	add("pings interleaved", func(s *streamBuilder) {
		s.message(OpText, "one two three", []int{3, 4, 0, 2}, true)
		s.frame(OpPong, true, []byte("pong"))
		s.want = append(s.want, "pong:pong")
		s.message(OpBinary, "binary data", []int{5}, true)
	})
	add("lengths", func(s *streamBuilder) {
		s.message(OpBinary, strings.Repeat("x", 125), nil, false)
		s.message(OpText, strings.Repeat("é", 63), []int{63}, false) // 126 bytes, split mid-rune
		s.message(OpText, strings.Repeat("ab", 300), []int{200, 0, 1}, true)
	})
	add("close", func(s *streamBuilder) {
		s.message(OpText, "bye", nil, false)
		s.frame(OpClose, true, []byte("\x03\xe8done"))
		s.want = append(s.want, "close:1000:done")
	})
	add("large", func(s *streamBuilder) {
		s.message(OpText, strings.Repeat("ü€x", 7000), []int{20001, 333}, true)
	})
	return streams
}

func TestSplitStreams(t *testing.T) {
	for _, client := range []bool{true, false} {
		for name, s := range testStreams(client) {
			cfg := ParserConfig{Client: !client} // we parse the other side
			got := checkAllSplits(t, name, cfg, s.buf)
			if want := strings.Join(s.want, " | "); got.String() != want {
				t.Fatalf("%s (client=%v):\n got  %.300s\n want %.300s", name, client, got, want)
			}
		}
	}
}

// Random multi-way splits of all streams concatenated.
func TestSplitRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := &streamBuilder{client: true}
	for _, name := range []string{"simple", "fragmented multibyte", "pings interleaved", "lengths", "close"} {
		part := testStreams(true)[name]
		s.buf = append(s.buf, part.buf...)
		s.want = append(s.want, part.want...)
	}
	want := strings.Join(s.want, " | ")
	for range 2000 {
		var chunks [][]byte
		for rest := s.buf; len(rest) > 0; {
			n := 1 + rng.IntN(min(len(rest), 1+rng.IntN(40)))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got, broken := parseChunks(ParserConfig{}, chunks...)
		if broken != "" || got.String() != want {
			t.Fatalf("split %v: %s\n got  %.300s\n want %.300s", chunkLens(chunks), broken, got, want)
		}
	}
}

func chunkLens(chunks [][]byte) []int {
	l := make([]int, len(chunks))
	for i, c := range chunks {
		l[i] = len(c)
	}
	return l
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 3, 4, 5, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(rng.IntN(256))
		}
		orig := append([]byte(nil), payload...)
		for _, masked := range []bool{true, false} {
			var frame []byte
			if masked {
				frame = AppendMaskedFrame([]byte("junk"), OpBinary, true, payload, [4]byte{byte(size), 0x12, 0x34, 0x56})
			} else {
				frame = AppendFrame([]byte("junk"), OpBinary, payload)
			}
			if !bytes.Equal(payload, orig) {
				t.Fatal("AppendMaskedFrame modified its payload")
			}
			frame = frame[4:]
			if hs := HeaderSize(size, masked); len(frame) != hs+size {
				t.Fatalf("size %d masked %v: frame %d bytes, HeaderSize %d", size, masked, len(frame), hs)
			}
			var p Parser
			f, n, err := p.Next(frame, &ParserConfig{Client: !masked})
			if err != nil || n != len(frame) || f.Kind != DataChunk || !f.First || !f.Fin || f.Op != OpBinary || !bytes.Equal(f.Payload, orig) {
				t.Fatalf("size %d masked %v: n=%d err=%v kind=%v", size, masked, n, err, f.Kind)
			}
		}
	}
}

func TestAppendHeaderNoFin(t *testing.T) {
	got := AppendHeader(nil, OpText, false, 300)
	if !bytes.Equal(got, h("01 7e 012c")) {
		t.Fatalf("got % x", got)
	}
	got = AppendHeader(nil, OpBinary, true, 1<<16)
	if !bytes.Equal(got, h("82 7f 0000000000010000")) {
		t.Fatalf("got % x", got)
	}
	if !bytes.Equal(PingFrame, h("89 00")) {
		t.Fatalf("PingFrame % x", PingFrame)
	}
}

func TestMaskResume(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for size := range 70 {
		whole := bytes.Repeat([]byte{0xAA}, size)
		Mask(whole, key, 0)
		for cut := 0; cut <= size; cut++ {
			b := bytes.Repeat([]byte{0xAA}, size)
			pos := Mask(b[:cut], key, 0)
			if pos != cut%4 {
				t.Fatalf("pos %d after %d", pos, cut)
			}
			Mask(b[cut:], key, pos)
			if !bytes.Equal(b, whole) {
				t.Fatalf("size %d cut %d", size, cut)
			}
		}
	}
}

func TestAppendCloseFrame(t *testing.T) {
	cases := []struct {
		code   CloseCode
		reason string
		want   string
	}{
		{CloseNormal, "", "88 02 03e8"},
		{CloseGoingAway, "bye", "88 05 03e9 627965"},
		{CloseNoStatus, "ignored", "88 00"},
		{0, "", "88 00"},
	}
	for _, c := range cases {
		if got := AppendCloseFrame(nil, c.code, c.reason); !bytes.Equal(got, h(c.want)) {
			t.Errorf("%d %q: got % x", c.code, c.reason, got)
		}
	}
	// Long reasons are cut to 123 bytes at a rune boundary, and parse back.
	long := strings.Repeat("€", 50) // 150 bytes, 3 per rune
	frame := AppendMaskedCloseFrame(nil, CloseProtocolError, long, [4]byte{5, 6, 7, 8})
	var p Parser
	f, n, err := p.Next(frame, &ParserConfig{})
	if err != nil || n != len(frame) || f.Kind != Close || f.CloseCode != CloseProtocolError ||
		string(f.CloseReason) != strings.Repeat("€", 41) {
		t.Fatalf("long reason: n=%d err=%v %+v", n, err, f)
	}
}
