package codec

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestNegotiateDeflate(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		accept  bool
		bits    uint8
		bad     bool
	}{
		{"none", nil, false, 0, false},
		{"plain", []string{"permessage-deflate"}, true, 0, false},
		{"chromium", []string{"permessage-deflate; client_max_window_bits"}, true, 0, false},
		{"gorilla", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, 0, false},
		{"python websockets", []string{"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"}, true, 12, false},
		{"case-insensitive", []string{"PerMessage-Deflate; Server_Max_Window_Bits=9"}, true, 9, false},
		{"quoted value", []string{`permessage-deflate; server_max_window_bits="10"`}, true, 10, false},
		{"spaces", []string{"permessage-deflate ;server_max_window_bits = 15 ; client_max_window_bits"}, true, 15, false},
		{"window 8", []string{"permessage-deflate; server_max_window_bits=8"}, true, 8, false},
		{"other extension first", []string{"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"}, true, 0, false},
		{"second header line", []string{"foo; bar=1", "permessage-deflate"}, true, 0, false},
		{"first acceptable offer wins", []string{"permessage-deflate; server_max_window_bits=9, permessage-deflate"}, true, 9, false},
		{"bad first offer, good fallback", []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate"}, true, 0, false},
		{"empty list elements", []string{", ,permessage-deflate,"}, true, 0, false},
		{"unknown parameter", []string{"permessage-deflate; foo"}, false, 0, false},
		{"duplicate parameter", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, false, 0, false},
		{"duplicate window", []string{"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"}, false, 0, false},
		{"window 16", []string{"permessage-deflate; server_max_window_bits=16"}, false, 0, false},
		{"window 7", []string{"permessage-deflate; server_max_window_bits=7"}, false, 0, false},
		{"leading zero", []string{"permessage-deflate; server_max_window_bits=09"}, false, 0, false},
		{"server window without value", []string{"permessage-deflate; server_max_window_bits"}, false, 0, false},
		{"client window bad value", []string{"permessage-deflate; client_max_window_bits=abc"}, false, 0, false},
		{"takeover with value", []string{"permessage-deflate; server_no_context_takeover=1"}, false, 0, false},
		{"empty parameter", []string{"permessage-deflate;"}, false, 0, true},
		{"unterminated quote", []string{`permessage-deflate; server_max_window_bits="10`}, false, 0, true},
		{"empty quotes", []string{`permessage-deflate; server_max_window_bits=""`}, false, 0, true},
		{"garbage", []string{"permessage-deflate @"}, false, 0, true},
		{"missing value", []string{"permessage-deflate; server_max_window_bits="}, false, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
			for _, h := range c.headers {
				req += "Sec-WebSocket-Extensions: " + h + "\r\n"
			}
			r, _, err := ParseRequest([]byte(req+"\r\n"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Deflate.Accept != c.accept || r.Deflate.ServerMaxWindowBits != c.bits || r.Deflate.Malformed != c.bad {
				t.Fatalf("got %+v, want accept=%v bits=%d malformed=%v", r.Deflate, c.accept, c.bits, c.bad)
			}
		})
	}
}

func TestAppendDeflateResponse(t *testing.T) {
	const base = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	for bits, want := range map[uint8]string{0: base + "\r\n", 9: base + "; server_max_window_bits=9\r\n", 12: base + "; server_max_window_bits=12\r\n"} {
		if got := string(AppendDeflateResponse(nil, DeflateOffer{Accept: true, ServerMaxWindowBits: bits})); got != want {
			t.Errorf("bits %d: %q, want %q", bits, got, want)
		}
	}
}

// parseDeflate runs a parser with deflate negotiated over in.
func parseDeflate(in []byte, max int) (chunks []Frame, err *Error) {
	var p Parser
	p.SetDeflate(15)
	cfg := &ParserConfig{MaxMessage: max}
	for len(in) > 0 {
		f, n, e := p.Next(in, cfg)
		if e != nil {
			return chunks, e
		}
		if f.Kind == NeedMore && n == 0 {
			break
		}
		in = in[n:]
		if f.Kind != NeedMore {
			chunks = append(chunks, f)
		}
	}
	return chunks, nil
}

func TestParserCompressed(t *testing.T) {
	cases := []struct {
		name, in string
		want     *Error
	}{
		{"rsv1 text", "c1 81" + k0 + "ff", nil}, // not valid UTF-8: checked after inflating, not here
		{"rsv1 binary", "c2 81" + k0 + "00", nil},
		{"rsv1 first fragment", "41 81" + k0 + "ff 80 81" + k0 + "ff", nil},
		{"rsv1 on continuation", "01 81" + k0 + "61 c0 81" + k0 + "61", ErrCompressedContinuation},
		{"rsv1 on both fragments", "41 81" + k0 + "61 c0 81" + k0 + "61", ErrCompressedContinuation},
		{"rsv1 ping", "c9 80" + k0, ErrCompressedControl},
		{"rsv1 close", "c8 80" + k0, ErrCompressedControl},
		{"rsv1 pong", "ca 80" + k0, ErrCompressedControl},
		{"rsv2 still reserved", "a1 80" + k0, ErrReservedBits},
		{"rsv1+rsv2", "e1 80" + k0, ErrReservedBits},
		{"plain text still validated", "81 81" + k0 + "ff", ErrInvalidUTF8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chunks, err := parseDeflate(h(c.in), 0)
			if err != c.want {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.want == nil && (len(chunks) == 0 || !chunks[0].Compressed || !chunks[len(chunks)-1].Compressed) {
				t.Fatalf("chunks %+v: want Compressed on every chunk", chunks)
			}
		})
	}
	// Without negotiation RSV1 stays a protocol error; the flag survives Reset.
	var p Parser
	if _, _, err := p.Next(h("c1 80"+k0), nil); err != ErrReservedBits {
		t.Fatalf("rsv1 without deflate: %v", err)
	}
	p.SetDeflate(15)
	p.Reset()
	if !p.Deflate() {
		t.Fatal("Reset forgot the negotiated extension")
	}
	for _, bits := range []uint8{8, 9, 12, 15} {
		p.SetDeflate(bits)
		p.Reset()
		if got := p.DeflateWindow(); got != bits {
			t.Fatalf("window %d read back as %d", bits, got)
		}
	}
	if _, _, err := p.Next(h("c1 81"+k0+"00 81 81"+k0+"61"), nil); err != nil || p.DeflateWindow() != 15 {
		t.Fatalf("a message changed the window: %v %d", err, p.DeflateWindow())
	}
	p.SetDeflate(0)
	if p.Deflate() || p.DeflateWindow() != 0 {
		t.Fatal("SetDeflate(0) left deflate on")
	}
	// A plain message after a compressed one is not compressed.
	chunks, err := parseDeflate(h("c1 81"+k0+"00 81 81"+k0+"61"), 0)
	if err != nil || len(chunks) != 2 || chunks[1].Compressed {
		t.Fatalf("compressed then plain: %+v %v", chunks, err)
	}
	// The limit allows deflate's overhead on incompressible data, no more.
	if _, err := parseDeflate(h("c2 fe 0080"+k0+strings.Repeat("00", 128)), 100); err != nil {
		t.Fatalf("compressed 128 bytes, limit 100+slack: %v", err)
	}
	if _, err := parseDeflate(h("c2 fe 00a5"+k0+strings.Repeat("00", 165)), 100); err != ErrMessageTooBig {
		t.Fatalf("compressed 165 bytes, limit 100+64: %v", err)
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	c, err := NewCompressor(1)
	if err != nil {
		t.Fatal(err)
	}
	var d Decompressor
	for _, size := range []int{0, 1, 100, 4096, 70000, 300000} {
		msg := bytes.Repeat([]byte(`{"topic":"prices","seq":1,"data":"x"} `), size/38+1)[:size]
		fr := c.AppendFrame(nil, OpText, msg)
		if fr[0] != 0xC1 {
			t.Fatalf("size %d: first byte %#x, want FIN|RSV1|text", size, fr[0])
		}
		payload := framePayload(fr)
		// Independent check: the standard library inflates it too.
		std, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader(deflateTail))))
		if err != nil && err != io.ErrUnexpectedEOF || !bytes.Equal(std, msg) {
			t.Fatalf("size %d: compress/flate got %d bytes, %v", size, len(std), err)
		}
		got, perr := d.Inflate([]byte("prefix"), payload, 1<<20)
		if perr != nil || string(got[:6]) != "prefix" || !bytes.Equal(got[6:], msg) {
			t.Fatalf("size %d: inflate %d bytes, %v", size, len(got)-6, perr)
		}
	}
}

func TestInflateBounded(t *testing.T) {
	// A zip bomb: 16 MiB of zeros in about 16 KiB.
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 9)
	_, _ = w.Write(make([]byte, 16<<20))
	_ = w.Flush()
	bomb := bytes.TrimSuffix(buf.Bytes(), deflateTail)
	var d Decompressor
	got, err := d.Inflate(nil, bomb, 64<<10)
	if err != ErrMessageTooBig || len(got) != 0 {
		t.Fatalf("bomb: %d bytes, %v; want ErrMessageTooBig", len(got), err)
	}
	if cap(got) > 64<<10+1 {
		t.Fatalf("bomb: grew the output to %d bytes, want at most limit+1", cap(got))
	}
	// Exactly at the limit is fine.
	buf.Reset()
	w.Reset(&buf)
	_, _ = w.Write(make([]byte, 1000))
	_ = w.Flush()
	if got, err := d.Inflate(nil, buf.Bytes()[:buf.Len()-4], 1000); err != nil || len(got) != 1000 {
		t.Fatalf("at the limit: %d, %v", len(got), err)
	}
	if _, err := d.Inflate(nil, buf.Bytes()[:buf.Len()-4], 999); err != ErrMessageTooBig {
		t.Fatalf("one over: %v", err)
	}
	// Garbage.
	if _, err := d.Inflate(nil, []byte{0xff, 0xff, 0xff, 0xff}, 1000); err != ErrBadCompressedData {
		t.Fatalf("garbage: %v", err)
	}
	// The decompressor is reusable after errors.
	if got, err := d.Inflate(nil, buf.Bytes()[:buf.Len()-4], 1000); err != nil || len(got) != 1000 {
		t.Fatalf("after errors: %d, %v", len(got), err)
	}
}

// benchMessage is a ~1 KiB JSON client message.
var benchMessage = []byte(strings.Repeat(`{"op":"publish","topic":"chat.room-42","data":{"user":"ana","text":"hello"}} `, 13))[:1024]

func TestDeflateZeroAllocs(t *testing.T) {
	c, _ := NewCompressor(1)
	var d Decompressor
	z := framePayload(c.AppendFrame(nil, OpText, benchMessage))
	dst := make([]byte, 0, 4096)
	frame := make([]byte, 0, 4096)
	req := []byte(browserRequest[:len(browserRequest)-2] + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	_, _ = d.Inflate(dst, z, 1<<20) // first use allocates the window
	allocs := testing.AllocsPerRun(100, func() {
		frame = c.AppendFrame(frame[:0], OpText, benchMessage)
		var err *Error
		if dst, err = d.Inflate(dst[:0], z, 1<<20); err != nil {
			t.Fatal(err)
		}
		r, _, herr := ParseRequest(req, 8192)
		if herr != nil || !r.Deflate.Accept {
			t.Fatal(herr, r.Deflate)
		}
		frame = AppendAcceptDeflateResponse(frame[:0], r.Key, r.Deflate)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per compress+inflate+negotiation, want 0", allocs)
	}
}

// BenchmarkInflate: one 1 KiB compressed client message, as the server
// inflates it (the loop's Decompressor, bounded output), next to the
// standard library's compress/flate (what gorilla uses) reset per message.
// Run: go test -run '^$' -bench 'Inflate|Compress' -benchmem ./codec/
func BenchmarkInflate(b *testing.B) {
	c, _ := NewCompressor(1)
	z := framePayload(c.AppendFrame(nil, OpText, benchMessage))
	b.Run("fanwire", func(b *testing.B) {
		var d Decompressor
		dst := make([]byte, 0, 4096)
		b.SetBytes(int64(len(benchMessage)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var err *Error
			if dst, err = d.Inflate(dst[:0], z, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(z)), "compressed-B")
	})
	b.Run("compress-flate", func(b *testing.B) {
		src := append(append([]byte(nil), z...), deflateTail...)
		var in bytes.Reader
		in.Reset(src)
		r := flate.NewReader(&in)
		dst := make([]byte, 4096)
		b.SetBytes(int64(len(benchMessage)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			in.Reset(src)
			_ = r.(flate.Resetter).Reset(&in, nil)
			if n, _ := io.ReadFull(r, dst[:len(benchMessage)]); n != len(benchMessage) {
				b.Fatal(n)
			}
		}
	})
}

// BenchmarkCompress: one 1 KiB message compressed into a frame (what a
// publish costs once, whatever the number of compressing subscribers),
// next to compress/flate at level 1.
func BenchmarkCompress(b *testing.B) {
	for _, level := range []int{1, 6, 9} {
		b.Run(fmt.Sprintf("fanwire/level=%d", level), func(b *testing.B) {
			c, _ := NewCompressor(level)
			dst := make([]byte, 0, 4096)
			b.SetBytes(int64(len(benchMessage)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst = c.AppendFrame(dst[:0], OpText, benchMessage)
			}
			b.ReportMetric(float64(len(dst)), "frame-B")
		})
	}
	b.Run("compress-flate/level=1", func(b *testing.B) {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, 1)
		b.SetBytes(int64(len(benchMessage)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf.Reset()
			w.Reset(&buf)
			_, _ = w.Write(benchMessage)
			_ = w.Flush()
		}
		b.ReportMetric(float64(buf.Len()-4+2), "frame-B")
	})
}

// framePayload is the payload of one unmasked frame.
func framePayload(fr []byte) []byte {
	switch fr[1] & 0x7f {
	case 126:
		return fr[4:]
	case 127:
		return fr[10:]
	}
	return fr[2:]
}

// FuzzExtensions: any Sec-WebSocket-Extensions value parses without panic;
// an accepted offer is well-formed and its answer is what an RFC 7692 client
// accepts (a window in 8..15 or none).
func FuzzExtensions(f *testing.F) {
	for _, s := range []string{"permessage-deflate", "permessage-deflate; client_max_window_bits",
		`permessage-deflate; server_max_window_bits="10"; client_no_context_takeover, x`, ", ,", "a;b=c;d=\"e\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var o DeflateOffer
		o.addExtensions(v)
		if o.Accept && o.ServerMaxWindowBits != 0 && (o.ServerMaxWindowBits < 8 || o.ServerMaxWindowBits > 15) {
			t.Fatalf("accepted window %d", o.ServerMaxWindowBits)
		}
		if o.Accept && !bytes.Contains(bytes.ToLower(v), []byte("permessage-deflate")) {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzInflate: any compressed input inflates or fails, within the limit.
func FuzzInflate(f *testing.F) {
	c, _ := NewCompressor(1)
	f.Add(framePayload(c.AppendFrame(nil, OpText, benchMessage)))
	f.Add([]byte{0x00})
	f.Add([]byte{0xff, 0xff})
	var d Decompressor
	f.Fuzz(func(t *testing.T, z []byte) {
		out, err := d.Inflate(nil, z, 4096)
		if len(out) > 4096 || err != nil && len(out) != 0 {
			t.Fatalf("%d bytes, %v", len(out), err)
		}
	})
}
