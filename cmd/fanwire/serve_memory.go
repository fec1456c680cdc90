package main

import (
	"flag"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/fanwire/fanwire/server"
)

// defaultGOGC is serve's GC target when neither --gogc nor $GOGC says: a
// node that holds connections has a large, long-lived heap, and Go's 100
// keeps as much again resident as headroom.
const defaultGOGC = 50

// memoryOptions are the Go runtime's memory settings for serve.
type memoryOptions struct {
	gogc  int   // 0 = $GOGC if set, else defaultGOGC; -1 = GC off
	limit int64 // bytes; 0 = $GOMEMLIMIT if set, else none
}

func memoryFlags(fs *flag.FlagSet, o *memoryOptions, c *server.MemoryConfig) {
	fs.IntVar(&o.gogc, "gogc", 0, "Go GC target percent (like $GOGC); 0 = $GOGC if set, else 50")
	sizeVar(fs, &o.limit, "memory-limit", 0, "soft memory `size` limit of the Go runtime (like $GOMEMLIMIT), e.g. 2GiB; the GC works harder near it; 0 = $GOMEMLIMIT if set, else none")
	fs.BoolVar(&c.Trim, "trim-memory", true, "after a burst of connects, return freed memory to the OS (one forced GC, at most every 30s; every 5m during a ramp that never pauses)")
}

// applyMemoryFlags sets the runtime's GC percent and memory limit.
func applyMemoryFlags(o memoryOptions, log *slog.Logger) {
	gogc := o.gogc
	if gogc == 0 && os.Getenv("GOGC") == "" {
		gogc = defaultGOGC
	}
	if gogc != 0 {
		debug.SetGCPercent(gogc)
	}
	if o.limit > 0 {
		debug.SetMemoryLimit(o.limit)
	}
	log.Debug("go runtime memory", "gogc", gogc, "memory_limit", debug.SetMemoryLimit(-1)) // -1 reads it
}
