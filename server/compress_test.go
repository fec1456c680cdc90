package server

import (
	"strings"
	"sync"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// lastWrite is a gnet.Conn that keeps the last frame written to it.
type lastWrite struct {
	gnet.Conn
	last []byte
}

func (w *lastWrite) Write(b []byte) (int, error) { w.last = b; return len(b), nil }
func (w *lastWrite) OutboundBuffered() int       { return 0 }

// TestDeflateVariantSharedAcrossLoops: two loops drain the same publish at
// once; the compressed frame is built once and both write the same bytes;
// plain subscribers get the plain frame, small publishes stay plain.
func TestDeflateVariantSharedAcrossLoops(t *testing.T) {
	cfg := DefaultConfig()
	cfg.History, cfg.LastValue = 0, ""
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var loops [2]*loop
	var fakes [2][3]*lastWrite
	for i := range loops {
		loops[i] = newLoop(n, nil)
		for j := range fakes[i] {
			fakes[i][j] = &lastWrite{}
			c := &conn{gc: fakes[i][j], loop: loops[i], phase: phaseOpen}
			switch j {
			case 0, 1:
				c.setDeflate(15)
			}
			loops[i].addConn(c)
			loops[i].subscribe(c, "t", resume{}, false)
		}
	}
	big := []byte(`{"rows":"` + strings.Repeat("BTC-USD 64012.25 ", 30) + `"}`)
	for round := 0; round < 50; round++ {
		if _, _, err := n.Publish("t", big); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, l := range loops {
			wg.Add(1)
			go func() { defer wg.Done(); l.drain() }()
		}
		wg.Wait()
		z := fakes[0][0].last
		if z[0] != 0xC1 {
			t.Fatalf("round %d: compressing subscriber got first byte %#x, want FIN|RSV1|text", round, z[0])
		}
		for i := range loops {
			for j := 0; j < 2; j++ {
				if got := fakes[i][j].last; &got[0] != &z[0] || len(got) != len(z) {
					t.Fatalf("round %d: loop %d subscriber %d got its own compressed copy", round, i, j)
				}
			}
			if plain := fakes[i][2].last; plain[0] != 0x81 || len(plain) <= len(z) {
				t.Fatalf("round %d: plain subscriber got %#x, %d bytes", round, plain[0], len(plain))
			}
		}
	}
	if _, _, err := n.Publish("t", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	loops[0].drain()
	if b := fakes[0][0].last; b[0] != 0x81 {
		t.Fatalf("a small publish went compressed (%#x)", b[0])
	}
	// A gap reset (a frame without an envelope) goes plain, whatever its size.
	loops[0].compressMin = 1
	h := n.hub
	h.mu.Lock()
	h.gapReset(h.topics["t"], 1000)
	h.mu.Unlock()
	loops[0].drain()
	if b := fakes[0][0].last; b[0] != 0x81 || !strings.Contains(string(b), `"reset"`) {
		t.Fatalf("gap reset to a compressing subscriber: %q", b)
	}
}
