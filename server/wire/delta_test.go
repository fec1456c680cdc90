package wire

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// FuzzDeltaEnvelope: any delta bytes make a valid UTF-8 JSON envelope of
// the announced size whose data string gives the bytes back, one per character.
func FuzzDeltaEnvelope(f *testing.F) {
	f.Add([]byte("3H\n2C@0,F:7,\"event\":\"save\"\\x\x00\x7f\x80\xff;"))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, delta []byte) {
		env := AppendDeltaEnvelope([]byte("x"), "t.a", 42, delta)[1:]
		if len(env) != DeltaEnvelopeSize("t.a", 42, delta) {
			t.Fatalf("size %d, announced %d", len(env), DeltaEnvelopeSize("t.a", 42, delta))
		}
		if !utf8.Valid(env) {
			t.Fatalf("not UTF-8: %q", env)
		}
		var m struct {
			Topic string
			Seq   uint64
			Delta string
			Data  string
		}
		if err := json.Unmarshal(env, &m); err != nil {
			t.Fatalf("%q: %v", env, err)
		}
		got := make([]byte, 0, len(delta))
		for _, r := range m.Data {
			if r > 0xff {
				t.Fatalf("U+%04X in %q", r, env)
			}
			got = append(got, byte(r))
		}
		if m.Topic != "t.a" || m.Seq != 42 || m.Delta != DeltaFossil || !bytes.Equal(got, delta) {
			t.Fatalf("%q decodes to %+v", env, m)
		}
	})
}

func TestParseDeltaAndOp(t *testing.T) {
	if d, err := ParseDelta([]string{"fossil"}); d != "fossil" || err != nil {
		t.Fatal(d, err)
	}
	if _, err := ParseDelta([]string{"zstd"}); err == nil {
		t.Fatal("zstd accepted")
	}
	if op, e := ParseOp([]byte(`{"op":"subscribe","topics":["a"],"delta":"fossil"}`)); e != nil || op.Delta != "fossil" {
		t.Fatal(op, e)
	}
	if _, e := ParseOp([]byte(`{"op":"subscribe","topics":["a"],"delta":"bsdiff"}`)); e == nil || e.Code != CodeBadDelta {
		t.Fatal(e)
	}
	if got := string(AppendDeltaTopics([]byte(`{"type":"subscribed"}`), []string{"a", "b"})); got != `{"type":"subscribed","delta":["a","b"]}` {
		t.Fatal(got)
	}
}
