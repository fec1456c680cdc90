package server

import (
	"cmp"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// MemoryConfig is how the node gives memory back after a burst of accepts.
type MemoryConfig struct {
	// Trim returns freed heap to the OS once a burst of accepts is over:
	// a connection ramp leaves the handshakes' garbage and GC headroom
	// resident, so an idle node would keep ~150 B per connection it does
	// not use. Costs one forced GC (debug.FreeOSMemory) per burst, and one
	// every 10 TrimEvery periods during a ramp that never pauses.
	Trim bool
	// TrimEvery is the least time between two trims; 0 = DefaultTrimEvery.
	TrimEvery time.Duration
}

// Trim defaults: a burst is at least trimBurst accepts, and bursts are
// trimmed at most once per DefaultTrimEvery. A ramp that never pauses for a
// tick (a steady trickle of connects) is trimmed every trimSteady
// TrimEvery periods while it goes on, so its headroom does not stay
// resident until it stops.
const (
	DefaultTrimEvery = 30 * time.Second
	trimBurst        = 1000
	trimSteady       = 10
	// trimQuiet: a ramp is over once no connection was accepted for this
	// long (ms of the node clock), even if the last tick saw some: the
	// trim then runs 0.5–1.5 s after the last accept instead of 1–2 s.
	trimQuiet = 500
)

// memTrim watches the accept counter from the engine tick: accepts since the
// last trim, then a tick with none, means a ramp just ended; trimSteady
// periods of accepts without such a tick mean a long, steady ramp.
type memTrim struct {
	accepts    atomic.Uint64 // OnOpen
	lastAccept atomic.Uint32 // node clock (ms) of the latest OnOpen
	seen       uint64        // accepts at the previous tick
	base       uint64        // accepts at the last trim
	last       time.Time     // when the last trim ran
	busySince  time.Time     // first tick of the current run of ticks with accepts (since the last trim)
	trims      atomic.Uint64
	lastCost   atomic.Int64 // ns the last FreeOSMemory took
}

// accepted counts an accept at clock (ms, Node.clock).
func (m *memTrim) accepted(clock uint32) {
	m.accepts.Add(1)
	m.lastAccept.Store(clock)
}

// tick runs on gnet's ticker goroutine, never on a loop: FreeOSMemory
// stops the world briefly and blocks its caller for the whole GC. clock is
// the node clock (ms).
func (m *memTrim) tick(cfg *MemoryConfig, now time.Time, clock uint32, log *slog.Logger) {
	a := m.accepts.Load()
	quiet := a == m.seen || clock-m.lastAccept.Load() >= trimQuiet
	m.seen = a
	switch {
	case quiet:
		m.busySince = time.Time{}
	case m.busySince.IsZero():
		m.busySince = now
	case now.Sub(m.busySince) >= trimSteady*cmp.Or(cfg.TrimEvery, DefaultTrimEvery):
		quiet = true // a steady ramp: trim while it goes on
	}
	if !cfg.Trim || !quiet || a-m.base < trimBurst || now.Sub(m.last) < cmp.Or(cfg.TrimEvery, DefaultTrimEvery) {
		return
	}
	m.busySince = time.Time{}
	m.base, m.last = a, now
	debug.FreeOSMemory()
	cost := time.Since(now)
	m.lastCost.Store(int64(cost))
	m.trims.Add(1)
	log.Info("connect burst over: returned freed memory to the OS", "accepts", a, "took", cost.Round(time.Millisecond))
}
