package bench

import (
	"strings"
	"testing"

	"github.com/fanwire/fanwire/loadtest"
)

func TestCheckSoakTolerances(t *testing.T) {
	tol := SoakTolerance{Goroutines: 10, FDs: 20, RSSMiB: 48}
	base := SoakSample{Goroutines: 81, FDs: 48, Conns: 0, RSS: 54 << 20}
	warm := SoakSample{Goroutines: 90, FDs: 3500, Conns: 3400, RSS: 66 << 20}
	byName := func(cs []SoakCheck) map[string]bool {
		m := map[string]bool{}
		for _, c := range cs {
			m[c.Name] = c.OK
		}
		return m
	}
	ok := byName(CheckSoak(base, warm, SoakSample{Goroutines: 91, FDs: 68, Conns: 0, RSS: (66 + 48) << 20}, tol))
	for name, pass := range ok {
		if !pass {
			t.Errorf("%s fails at the edge of its tolerance", name)
		}
	}
	bad := byName(CheckSoak(base, warm, SoakSample{Goroutines: 92, FDs: 69, Conns: 3, RSS: (66+48)<<20 + 1}, tol))
	for name, pass := range bad {
		if pass {
			t.Errorf("%s passes just beyond its tolerance", name)
		}
	}
	// A figure that could not be read (-1) never passes.
	unknown := byName(CheckSoak(base, warm, SoakSample{Goroutines: -1, FDs: 48, Conns: -1, RSS: 60 << 20}, tol))
	if unknown["goroutines"] || unknown["connections"] {
		t.Errorf("unknown figures pass: %v", unknown)
	}
}

func TestCheckOracle(t *testing.T) {
	if p := CheckOracle(&loadtest.Delivery{Published: 10, Lost: 5, Announced: 5, Resets: 1}); len(p) != 0 {
		t.Errorf("losses announced by a reset are not a problem, got %v", p)
	}
	p := CheckOracle(&loadtest.Delivery{Published: 10, Lost: 7, Announced: 5, Gaps: 2, Dups: 1})
	if got := strings.Join(p, "; "); !strings.Contains(got, "silent gaps") || !strings.Contains(got, "duplicate") || !strings.Contains(got, "2 unaccounted") {
		t.Errorf("problems: %s", got)
	}
	if p := CheckOracle(nil); len(p) != 1 {
		t.Errorf("no report: %v", p)
	}
}

func TestSlowClosedOverRunSumsEveryWorkerProcess(t *testing.T) {
	s := []SoakSample{
		{Procs: []SoakProcSample{{Name: "worker1", PID: 10, SlowClosed: 3}, {Name: "worker2", PID: 11, SlowClosed: 1}}},
		{Procs: []SoakProcSample{{Name: "worker1", PID: 12, SlowClosed: 2}, {Name: "worker2", PID: 11, SlowClosed: 4}}}, // 10 was killed
	}
	if got := slowClosedOverRun(s); got != 3+2+4 {
		t.Errorf("slow closed over the run = %d, want 9", got)
	}
}
