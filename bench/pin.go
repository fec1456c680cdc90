package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseCPUs reads a CPU list like "0", "0,2" or "0-1".
func ParseCPUs(s string) (unix.CPUSet, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= runtime.NumCPU() {
			return set, fmt.Errorf("bad CPU list %q (this machine has CPUs 0-%d)", s, runtime.NumCPU()-1)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return set, nil
}

// PinHarnessAway moves every thread of this process (load generator and
// publisher) off the servers' CPUs, so server and clients stop competing for
// the same cores. Threads started later inherit the mask.
func PinHarnessAway(servers unix.CPUSet) error {
	var rest unix.CPUSet
	for c := range runtime.NumCPU() {
		if !servers.IsSet(c) {
			rest.Set(c)
		}
	}
	if rest.Count() == 0 {
		return fmt.Errorf("no CPU left for the load generator")
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &rest); err != nil {
			return fmt.Errorf("pin thread %d: %w", tid, err)
		}
	}
	return nil
}
