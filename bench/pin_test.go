package bench

import (
	"runtime"
	"testing"
)

func TestParseCPUs(t *testing.T) {
	set, err := ParseCPUs("0")
	if err != nil || set.Count() != 1 || !set.IsSet(0) {
		t.Fatalf("0: %v %v", set, err)
	}
	if runtime.NumCPU() >= 2 {
		if set, err = ParseCPUs("0-1"); err != nil || set.Count() != 2 {
			t.Fatalf("0-1: %v %v", set, err)
		}
	}
	for _, bad := range []string{"", "x", "1-0", "-1", "99999"} {
		if _, err := ParseCPUs(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
