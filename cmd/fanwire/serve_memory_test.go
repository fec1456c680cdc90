package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

var memoryFlagNames = []string{"gogc", "memory-limit", "trim-memory"}

func TestServeMemoryFlags(t *testing.T) {
	opts, err := parseServeFlags([]string{"--gogc", "30", "--memory-limit", "2GiB", "--trim-memory=false"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.memory.gogc != 30 || opts.memory.limit != 2<<30 || opts.cfg.Memory.Trim {
		t.Fatalf("memory options %+v, trim %v", opts.memory, opts.cfg.Memory.Trim)
	}
	if opts, _ := parseServeFlags(nil); !opts.cfg.Memory.Trim || opts.memory.gogc != 0 {
		t.Fatalf("defaults: %+v, trim %v", opts.memory, opts.cfg.Memory.Trim)
	}
}

// TestApplyMemoryFlags: 50 unless $GOGC says otherwise; an explicit --gogc wins.
func TestApplyMemoryFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	gc := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }

	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	applyMemoryFlags(memoryOptions{}, log)
	if gc() != defaultGOGC {
		t.Fatalf("GC percent %d, want %d", gc(), defaultGOGC)
	}
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // what the runtime read at start
	applyMemoryFlags(memoryOptions{}, log)
	if gc() != 80 {
		t.Fatalf("$GOGC=80: GC percent %d", gc())
	}
	applyMemoryFlags(memoryOptions{gogc: 20, limit: 1 << 30}, log)
	if gc() != 20 || debug.SetMemoryLimit(-1) != 1<<30 {
		t.Fatalf("--gogc 20 --memory-limit 1GiB: %d, %d", gc(), debug.SetMemoryLimit(-1))
	}
}
