package codec

import (
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

func TestParserSize(t *testing.T) {
	if size := unsafe.Sizeof(Parser{}); size > 24 {
		t.Fatalf("Parser is %d bytes, want <= 24 (it is in every connection)", size)
	}
	t.Logf("unsafe.Sizeof(Parser{}) = %d", unsafe.Sizeof(Parser{}))
}

func TestZeroAllocs(t *testing.T) {
	frame := AppendMaskedFrame(nil, OpText, true, []byte(strings.Repeat("héllo ", 20)), [4]byte{1, 2, 3, 4})
	in := make([]byte, len(frame))
	cfg := ParserConfig{MaxMessage: 1 << 20}
	var p Parser
	dst := make([]byte, 0, 4096)
	req := []byte(browserRequest)
	allocs := testing.AllocsPerRun(100, func() {
		copy(in, frame)
		if _, _, err := p.Next(in, &cfg); err != nil {
			t.Fatal(err)
		}
		dst = AppendFrame(dst[:0], OpText, frame)
		dst = AppendMaskedFrame(dst[:0], OpText, true, frame, [4]byte{1, 2, 3, 4})
		dst = AppendCloseFrame(dst[:0], CloseGoingAway, "bye")
		dst = AppendMaskedCloseFrame(dst[:0], CloseGoingAway, "bye", [4]byte{1, 2, 3, 4})
		dst = AppendHeader(dst[:0], OpBinary, false, 70000)
		dst = AppendAcceptResponse(dst[:0], []byte("dGhlIHNhbXBsZSBub25jZQ=="))
		dst = AppendHTTPError(dst[:0], ErrVersion)
		dst = AppendUpgradeRequest(dst[:0], "127.0.0.1:8080", "/ws", []byte("dGhlIHNhbXBsZSBub25jZQ=="))
		r, _, herr := ParseRequest(req, 8192)
		if herr != nil || r.Check() != nil {
			t.Fatal(herr)
		}
		resp := AppendAcceptResponse(dst[:0], r.Key)
		if _, _, err := CheckAcceptResponse(resp, r.Key); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func benchParse(b *testing.B, payloadLen int) {
	payload := []byte(strings.Repeat("fanwire ", payloadLen/8+1)[:payloadLen])
	frame := AppendMaskedFrame(nil, OpText, true, payload, [4]byte{0x12, 0x34, 0x56, 0x78})
	in := make([]byte, len(frame))
	cfg := ParserConfig{MaxMessage: 1 << 20}
	var p Parser
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(in, frame) // parsing unmasks in place
		f, n, err := p.Next(in, &cfg)
		if err != nil || n != len(in) || !f.Fin {
			b.Fatal(err, n)
		}
	}
}

func BenchmarkParseFrame(b *testing.B) { benchParse(b, 100) }
func BenchmarkParseLarge(b *testing.B) { benchParse(b, 64<<10) }

func BenchmarkAppendFrame(b *testing.B) {
	payload := []byte(`{"topic":"prices.BTC-USD","seq":12345,"data":{"price":64123.5,"ts":1732500000}}`)
	dst := make([]byte, 0, 256)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], OpText, payload)
	}
}

func BenchmarkAppendMaskedFrame(b *testing.B) {
	payload := []byte(strings.Repeat("x", 100))
	dst := make([]byte, 0, 256)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendMaskedFrame(dst[:0], OpText, true, payload, [4]byte{1, 2, 3, 4})
	}
}

func BenchmarkUTF8(b *testing.B) {
	inputs := map[string][]byte{
		"ASCII": []byte(strings.Repeat(`{"topic":"scores.football","seq":7} `, 100)),
		"mixed": []byte(strings.Repeat("Grüße, κόσμε, 世界 😀 plain ascii text ", 100)),
		"short": []byte(strings.Repeat("fanwire ", 13)[:100]),
	}
	for _, name := range []string{"ASCII", "mixed", "short"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if ValidateUTF8(UTF8Accept, in) != UTF8Accept {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte(browserRequest)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		req, n, err := ParseRequest(in, 8192)
		if err != nil || n != len(in) || req.Check() != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAcceptResponse(b *testing.B) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendAcceptResponse(dst[:0], key)
	}
}

func BenchmarkStdlibUTF8(b *testing.B) {
	in := []byte(strings.Repeat("Grüße, κόσμε, 世界 😀 plain ascii text ", 100))
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if !utf8.Valid(in) {
			b.Fatal("invalid")
		}
	}
}

// A 64 KiB text message arriving in 1460-byte reads: one DataChunk per read.
func BenchmarkParseChunked(b *testing.B) {
	payload := []byte(strings.Repeat("Grüße fanwire ", 5000)[:64<<10-1] + "!")
	frame := AppendMaskedFrame(nil, OpText, false, payload, [4]byte{0x12, 0x34, 0x56, 0x78})
	frame = AppendMaskedFrame(frame, OpContinuation, true, nil, [4]byte{1, 2, 3, 4})
	in := make([]byte, len(frame))
	cfg := ParserConfig{MaxMessage: 1 << 20}
	var p Parser
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(in, frame)
		for rest := in; len(rest) > 0; {
			read := rest[:min(len(rest), 1460)]
			for len(read) > 0 {
				_, n, err := p.Next(read, &cfg)
				if err != nil || n == 0 {
					b.Fatal(err, n)
				}
				read = read[n:]
			}
			rest = rest[min(len(rest), 1460):]
		}
	}
}
