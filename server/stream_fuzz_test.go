package server

import (
	"testing"

	"github.com/fanwire/fanwire/server/wire"
)

// FuzzLastEventID: any Last-Event-ID is either refused (400) or sets resume
// points only for the stream's own topics, each a valid topic with a seq.
func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"a=42@E1,b=7@E2", "a=1", "a=", "=1", "a=1@", ",", "a=1,,b=2", "a=18446744073709551616", "b=3@x@y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		op := wire.Op{Topics: []string{"a", "b"}}
		if herr := applyLastEventID(&op, []byte(id)); herr != nil {
			if herr.Status != 400 {
				t.Fatalf("%q: status %d", id, herr.Status)
			}
			return
		}
		for name := range op.Since {
			if name != "a" && name != "b" {
				t.Fatalf("%q: resume point for %q, not a topic of the stream", id, name)
			}
		}
		for name := range op.Epochs {
			if _, ok := op.Since[name]; !ok {
				t.Fatalf("%q: epoch for %q without a seq", id, name)
			}
		}
	})
}
