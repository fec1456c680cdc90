package server

import (
	"net"
	"runtime/debug"
	"testing"
	"time"
)

// accepts calls b.accepted(trim) k times.
func accepts(b *burstGC, k int, trim bool) {
	for range k {
		b.accepted(trim)
	}
}

// A burst of accepts relaxes GOGC to keep the heap goal burstHeadroom past
// the live heap; the first quiet tick puts it back and asks for a trim.
func TestBurstGCRelaxesAndRestores(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	var b burstGC
	accepts(&b, 1000, false) // trimming off: no burst
	b.tick()
	accepts(&b, burstAccepts-1, true)
	if got := debug.SetGCPercent(50); got != 50 {
		t.Fatalf("below a burst: GOGC %d, want 50 untouched", got)
	}
	b.accepted(true)
	relaxed := debug.SetGCPercent(-1)
	debug.SetGCPercent(relaxed)
	if relaxed <= 50 || b.restore != 50 { // the exact value follows the live heap, which other goroutines move
		t.Fatalf("in a burst: GOGC %d (want > 50), restore %d (want 50)", relaxed, b.restore)
	}
	accepts(&b, burstAccepts, true) // already relaxed: nothing more
	if b.tick() {
		t.Fatal("a tick with accepts ended the burst")
	}
	if got := debug.SetGCPercent(relaxed); got != relaxed {
		t.Fatalf("still in the burst: GOGC %d, want %d", got, relaxed)
	}
	if !b.tick() {
		t.Fatal("a quiet tick after a relaxed burst did not ask for a trim")
	}
	if got := debug.SetGCPercent(50); got != 50 {
		t.Fatalf("after the burst: GOGC %d, want 50 back", got)
	}
	if b.tick() || b.bursts.Load() != 1 {
		t.Fatalf("second quiet tick: trim asked again, or bursts %d != 1", b.bursts.Load())
	}
}

// After a collection during the burst, GOGC is recomputed from the new live
// heap; once that is no more than GOGC's own goal, GOGC goes back early.
func TestBurstGCRecomputesAfterGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	var b burstGC
	accepts(&b, burstAccepts, true)
	if b.restore != 50 {
		t.Fatalf("restore %d, want 50", b.restore)
	}
	b.restore = 1 // a GOGC below the burst's: afterGC keeps the burst's goal, recomputed
	b.afterGC()
	if got := debug.SetGCPercent(50); got <= 1 || b.restore != 1 {
		t.Fatalf("GOGC %d, restore %d: want a recomputed burst GOGC (> 1) and restore 1 kept", got, b.restore)
	}
	b.restore = 1 << 30 // as if the live heap had grown past burstHeadroom×100/GOGC
	b.afterGC()
	if got := debug.SetGCPercent(50); got != 1<<30 || b.restore != 0 {
		t.Fatalf("GOGC %d, restore %d: want GOGC put back (%d) and nothing left to restore", got, b.restore, 1<<30)
	}
	b.tick() // the burst's accepts
	if !b.tick() {
		t.Fatal("the burst was relaxed: its end should still ask for a trim")
	}
}

// With GC off (GOGC=off) nothing changes.
func TestBurstGCLeavesGCOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var b burstGC
	accepts(&b, burstAccepts, true)
	b.tick()
	if got := debug.SetGCPercent(-1); got != -1 || b.tick() {
		t.Fatalf("GC off: GOGC %d after a burst, want -1 untouched and no trim", got)
	}
}

// On a running node, a storm of upgrades relaxes the GC and the quiet tick
// after it puts GOGC back.
func TestBurstGCOnAStorm(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	n := startRawNode(t, func(cfg *Config) { cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0 })
	before := gcBursts.bursts.Load()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range burstAccepts + 100 { // in well under a tick (1 s) unless the box is very slow
		clients = append(clients, rawUpgrade(t, n, "/ws?topics=a"))
	}
	if gcBursts.bursts.Load() == before {
		t.Skip("the storm was spread over more than a tick (slow box): no burst to check")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cur := debug.SetGCPercent(50)
		if cur == 50 && !gcBursts.relaxed.Load() {
			break
		}
		debug.SetGCPercent(cur)
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d 10 s after the storm, want 50 back", cur)
		}
	}
}
