package loadtest

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/fanwire/fanwire/codec"
)

func TestEnvelopeFields(t *testing.T) {
	msg := []byte(`{"topic":"load.1.2","seq":42,"data":{"t":1700000000123456789,"pad":"xxxx"}}`)
	seq, sent, ok := envelopeFields(msg)
	if !ok || seq != 42 || sent != 1700000000123456789 {
		t.Fatalf("got %d %d %v", seq, sent, ok)
	}
	if _, sent, ok := envelopeFields([]byte(`{"topic":"a","seq":7,"data":{"x":1}}`)); !ok || sent != 0 {
		t.Fatalf("no send time: sent=%d ok=%v", sent, ok)
	}
	if _, _, ok := envelopeFields([]byte(`{"type":"subscribed"}`)); ok {
		t.Fatal("no seq must not be ok")
	}
	if n := testing.AllocsPerRun(100, func() { envelopeFields(msg) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func TestFrameLen(t *testing.T) {
	small := codec.AppendFrame(nil, codec.OpText, make([]byte, 100))
	mid := codec.AppendFrame(nil, codec.OpText, make([]byte, 300))
	big := codec.AppendFrame(nil, codec.OpBinary, make([]byte, 70000))
	masked := codec.AppendMaskedFrame(nil, codec.OpText, true, make([]byte, 10), [4]byte{1, 2, 3, 4})
	for _, f := range [][]byte{small, mid, big, masked} {
		if got := frameLen(f); got != len(f) {
			t.Errorf("frameLen = %d, want %d", got, len(f))
		}
	}
	if frameLen(small[:1]) != -1 || frameLen(mid[:3]) != -1 || frameLen(big[:9]) != -1 {
		t.Error("incomplete headers must give -1")
	}
}

func TestAppendPayloadSizeAndShape(t *testing.T) {
	b := appendPayload(nil, 123, 100)
	if len(b) != 100 || !strings.HasPrefix(string(b), `{"t":123,"pad":"x`) || !strings.HasSuffix(string(b), `x"}`) {
		t.Fatalf("%d %s", len(b), b)
	}
	if b := appendPayload(nil, 1, 0); string(b) != `{"t":1,"pad":""}` {
		t.Fatalf("%s", b)
	}
}

func TestParseSources(t *testing.T) {
	cases := map[string]string{
		"":                      "",
		"none":                  "",
		"3":                     "127.0.0.2,127.0.0.3,127.0.0.4",
		"127.0.0.2-127.0.0.4":   "127.0.0.2,127.0.0.3,127.0.0.4",
		"127.0.0.9, 10.0.0.255": "127.0.0.9,10.0.0.255",
		"127.0.0.255-127.0.1.1": "127.0.0.255,127.0.1.0,127.0.1.1",
	}
	for in, want := range cases {
		got, err := ParseSources(in)
		if err != nil || FormatSources(got) != want {
			t.Errorf("ParseSources(%q) = %q, %v; want %q", in, FormatSources(got), err, want)
		}
	}
	for _, bad := range []string{"0", "127.0.0.5-127.0.0.2", "::1", "x"} {
		if _, err := ParseSources(bad); err == nil {
			t.Errorf("ParseSources(%q) accepted", bad)
		}
	}
}

func TestPlanSplitKeepsGlobalIndexes(t *testing.T) {
	p := Plan{Conns: 10, Rate: 90, ChurnRate: 30}
	parts := p.split(3)
	wantConns, wantOff := []int{4, 3, 3}, []int{0, 4, 7}
	for i, q := range parts {
		if q.Conns != wantConns[i] || q.Offset != wantOff[i] || q.Rate != 30 || q.ChurnRate != 10 {
			t.Errorf("part %d = %+v", i, q)
		}
	}
}

func TestProcessesFor(t *testing.T) {
	for _, c := range []struct{ n, forced, per, want int }{
		{100, 0, 1000, 1}, {1000, 0, 1000, 1}, {1001, 0, 1000, 2}, {25000, 0, 19872, 2}, {100, 3, 1000, 3},
	} {
		if got := processesFor(c.n, c.forced, c.per); got != c.want {
			t.Errorf("processesFor(%d,%d,%d) = %d, want %d", c.n, c.forced, c.per, got, c.want)
		}
	}
}

// The per-connection budget is 1 KiB of load-generator memory; the slot
// itself must stay a small fraction of it.
func TestConnSlotIsSmall(t *testing.T) {
	if size := unsafe.Sizeof(conn{}); size > 160 {
		t.Fatalf("conn is %d bytes, budget 160", size)
	} else {
		t.Logf("conn slot: %d bytes", size)
	}
}
