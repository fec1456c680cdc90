package js

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centrifugal/fdelta"
	"github.com/fanwire/fanwire/server/wire"
)

var update = flag.Bool("update", false, "rewrite test/fossil-fixtures.json")

// fossilFixture is one delta the node would send: fanwire.js must turn the
// full delivery of base and then the delta delivery back into target.
type fossilFixture struct {
	Name   string `json:"name"`
	Base   string `json:"base"`   // the previous message's data (JSON text)
	Target string `json:"target"` // the message's data
	Full   string `json:"full"`   // base's delivery, seq 41
	Delta  string `json:"delta"`  // target's delta delivery, seq 42
}

func fossilFixtures() []fossilFixture {
	board := func(move, price int) string {
		var b strings.Builder
		b.WriteString(`{"board":[`)
		for k := 0; k < 10; k++ {
			p := 64000 + k*100
			if k == move {
				p = price
			}
			fmt.Fprintf(&b, `{"symbol":"SYM-%d","price":%d.25,"ts":1732500000000},`, k, p)
		}
		return strings.TrimSuffix(b.String(), ",") + "]}"
	}
	pairs := []struct{ name, base, target string }{
		{"price board, one row moved", board(3, 64300), board(3, 64317)},
		{"escapes and UTF-8", `{"text":"12' GOAL! \"Rovers\" \\ Ünited – 1-0 ⚽","minute":12,"pad":"` + strings.Repeat("x", 40) + `"}`,
			`{"text":"13' Save: \"Rovers\" \\ Ünited – 1-0 ⚽","minute":13,"pad":"` + strings.Repeat("x", 40) + `"}`},
		{"unrelated", `{"a":1}`, `{"b":"` + strings.Repeat("yz", 30) + `"}`},
		{"identical", board(1, 1), board(1, 1)},
		{"to empty object", board(2, 5), `{}`},
	}
	var out []fossilFixture
	for _, p := range pairs {
		d := fdelta.Create([]byte(p.base), []byte(p.target))
		out = append(out, fossilFixture{
			Name: p.name, Base: p.base, Target: p.target,
			Full:  string(wire.AppendEnvelope(nil, "t.x", 41, []byte(p.base))),
			Delta: string(wire.AppendDeltaEnvelope(nil, "t.x", 42, d)),
		})
	}
	return out
}

// TestFossilFixtures keeps test/fossil-fixtures.json (read by the node tests
// of fanwire.js's decoder) what the Go encoder produces; -update rewrites it.
func TestFossilFixtures(t *testing.T) {
	fx := fossilFixtures()
	for _, f := range fx {
		var m struct{ Data string }
		if err := json.Unmarshal([]byte(f.Delta), &m); err != nil {
			t.Fatalf("%s: delta delivery is not JSON: %v", f.Name, err)
		}
		patch := make([]byte, 0, len(m.Data))
		for _, r := range m.Data {
			patch = append(patch, byte(r))
		}
		got, err := fdelta.Apply([]byte(f.Base), patch)
		if err != nil || string(got) != f.Target {
			t.Fatalf("%s: %q %v", f.Name, got, err)
		}
	}
	want, _ := json.MarshalIndent(fx, "", "  ")
	want = append(want, '\n')
	path := filepath.Join("test", "fossil-fixtures.json")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, want) {
		t.Fatalf("%s is stale (%v): go test ./server/js -run FossilFixtures -update", path, err)
	}
}
