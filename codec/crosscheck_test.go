package codec

import (
	"bytes"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/gobwas/ws"
)

// Frames written by gobwas/ws (an independent implementation) parse with
// ours, split anywhere.
func TestGobwasFramesParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var stream bytes.Buffer
	var want []string
	for i := range 40 {
		size := []int{0, 1, 125, 126, 300, 65535, 65536, 3000}[i%8]
		text := randomText(rng, size, false)
		key := [4]byte{byte(i), 0xfe, byte(3 * i), 0x01}
		if i%3 == 0 {
			// Fragmented, with a ping in between.
			half := len(text) / 2
			for half > 0 && !utf8RuneStart(text[half]) && i%2 == 0 {
				half-- // sometimes split mid-rune, sometimes not
			}
			frames := []ws.Frame{
				ws.NewFrame(ws.OpText, false, append([]byte(nil), text[:half]...)),
				ws.NewPingFrame([]byte("x")),
				ws.NewFrame(ws.OpContinuation, true, append([]byte(nil), text[half:]...)),
			}
			for _, f := range frames {
				if err := ws.WriteFrame(&stream, ws.MaskFrameInPlaceWith(f, key)); err != nil {
					t.Fatal(err)
				}
			}
			want = append(want, "ping:x")
		} else if err := ws.WriteFrame(&stream, ws.MaskFrameInPlaceWith(ws.NewTextFrame(append([]byte(nil), text...)), key)); err != nil {
			t.Fatal(err)
		}
		want = append(want, "text:"+string(text))
	}
	ws.WriteFrame(&stream, ws.MaskFrameInPlaceWith(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")), [4]byte{1, 2, 3, 4}))
	want = append(want, "close:1001:bye")

	in := stream.Bytes()
	wantStr := joinEvents(want)
	for _, chunk := range []int{len(in), 1, 2, 3, 7, 100, 4096} {
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := min(chunk, len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got, broken := parseChunks(ParserConfig{}, chunks...)
		if broken != "" || got.String() != wantStr {
			t.Fatalf("chunk %d: %s\n got  %.200s\n want %.200s", chunk, broken, got, wantStr)
		}
	}
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func joinEvents(ev []string) string { return result{events: ev}.String() }

// Frames written by us are read back by gobwas/ws.
func TestOurFramesReadByGobwas(t *testing.T) {
	var stream []byte
	payloads := [][]byte{nil, []byte("hi"), bytes.Repeat([]byte("z"), 126), bytes.Repeat([]byte{0, 1, 2}, 30000)}
	for _, p := range payloads {
		stream = AppendFrame(stream, OpBinary, p)
		stream = AppendMaskedFrame(stream, OpText, true, p, [4]byte{9, 8, 7, 6})
	}
	stream = AppendCloseFrame(stream, CloseGoingAway, "shutting down")
	stream = append(stream, PingFrame...)

	r := bytes.NewReader(stream)
	for _, p := range payloads {
		f, err := ws.ReadFrame(r)
		if err != nil || f.Header.OpCode != ws.OpBinary || !f.Header.Fin || f.Header.Masked || !bytes.Equal(f.Payload, p) {
			t.Fatalf("unmasked %d bytes: %v %+v", len(p), err, f.Header)
		}
		f, err = ws.ReadFrame(r)
		if err != nil || f.Header.OpCode != ws.OpText || !f.Header.Masked {
			t.Fatalf("masked %d bytes: %v %+v", len(p), err, f.Header)
		}
		f = ws.UnmaskFrameInPlace(f)
		if !bytes.Equal(f.Payload, p) {
			t.Fatalf("masked %d bytes: payload differs", len(p))
		}
	}
	f, err := ws.ReadFrame(r)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("close: %v %+v", err, f.Header)
	}
	code, reason := ws.ParseCloseFrameData(f.Payload)
	if code != ws.StatusGoingAway || reason != "shutting down" {
		t.Fatalf("close: %d %q", code, reason)
	}
	if f, err = ws.ReadFrame(r); err != nil || f.Header.OpCode != ws.OpPing || f.Header.Length != 0 {
		t.Fatalf("ping: %v %+v", err, f.Header)
	}
	if _, err := ws.ReadFrame(r); err != io.EOF {
		t.Fatalf("trailing bytes: %v", err)
	}
}

// gobwasEvents reads in with gobwas/ws and reports it the way parseChunks
// does, for inputs our parser accepts: complete messages and control frames,
// up to the first incomplete frame. It does no validation of its own.
func gobwasEvents(in []byte) []string {
	r := bytes.NewReader(append([]byte(nil), in...))
	var events []string
	var msg []byte
	var msgOp ws.OpCode
	for {
		// ReadHeader first: ReadFrame would allocate whatever length a
		// (fuzzed) header claims.
		hdr, err := ws.ReadHeader(r)
		if err != nil || hdr.Length > int64(r.Len()) {
			return events
		}
		f := ws.Frame{Header: hdr, Payload: make([]byte, hdr.Length)}
		io.ReadFull(r, f.Payload)
		if f.Header.Masked {
			f = ws.UnmaskFrameInPlace(f)
		}
		switch op := f.Header.OpCode; op {
		case ws.OpPing:
			events = append(events, "ping:"+string(f.Payload))
		case ws.OpPong:
			events = append(events, "pong:"+string(f.Payload))
		case ws.OpClose:
			if len(f.Payload) == 0 {
				events = append(events, "close:1005:")
			} else {
				code, reason := ws.ParseCloseFrameData(f.Payload)
				events = append(events, "close:"+strconv.Itoa(int(code))+":"+reason)
			}
		default:
			if op != ws.OpContinuation {
				msgOp, msg = op, msg[:0]
			}
			msg = append(msg, f.Payload...)
			if f.Header.Fin {
				if msgOp == ws.OpText {
					events = append(events, "text:"+string(msg))
				} else {
					events = append(events, "binary:"+hex.EncodeToString(msg))
				}
			}
		}
	}
}

// Every valid table case reads the same with gobwas/ws.
func TestTableAgainstGobwas(t *testing.T) {
	for _, tc := range parserCases {
		in := h(tc.in)
		got, _ := parseChunks(ParserConfig{Client: tc.client, MaxMessage: tc.max}, in)
		if got.err != nil {
			continue
		}
		if want := joinEvents(gobwasEvents(in)); got.String() != want {
			t.Errorf("%s:\n ours   %.200s\n gobwas %.200s", tc.name, got, want)
		}
	}
}
