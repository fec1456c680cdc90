package server

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestMemTrimAfterBurst: a trim runs once a burst of accepts is followed by a
// quiet tick, not during the burst, not for a trickle, and not twice within
// TrimEvery.
func TestMemTrimAfterBurst(t *testing.T) {
	var m memTrim
	cfg := MemoryConfig{Trim: true, TrimEvery: time.Minute}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Unix(1e6, 0)
	step := func(accepts uint64) {
		m.accepts.Add(accepts)
		now = now.Add(time.Second)
		m.tick(&cfg, now, 0, log) // the clock stays at the accepts' time: only a tick without accepts is quiet
	}
	step(10)
	step(0)
	if m.trims.Load() != 0 {
		t.Fatal("trimmed after a trickle of 10 accepts")
	}
	step(trimBurst)
	step(5)
	if m.trims.Load() != 0 {
		t.Fatal("trimmed while accepts go on")
	}
	step(0)
	if m.trims.Load() != 1 {
		t.Fatalf("trims after the burst = %d, want 1", m.trims.Load())
	}
	step(0)
	step(trimBurst)
	step(0)
	if m.trims.Load() != 1 {
		t.Fatal("trimmed twice within TrimEvery")
	}
	now = now.Add(time.Minute)
	step(0)
	if m.trims.Load() != 2 {
		t.Fatalf("trims after TrimEvery = %d, want 2", m.trims.Load())
	}
	cfg.Trim = false
	step(trimBurst)
	now = now.Add(time.Minute)
	step(0)
	if m.trims.Load() != 2 {
		t.Fatal("trimmed with Trim off")
	}
}

// TestMemTrimSteadyRamp: a ramp that never leaves a tick without accepts is
// trimmed every trimSteady TrimEvery periods while it goes on.
func TestMemTrimSteadyRamp(t *testing.T) {
	var m memTrim
	cfg := MemoryConfig{Trim: true, TrimEvery: time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Unix(1e6, 0)
	for i := 1; i <= 3*trimSteady; i++ {
		m.accepts.Add(trimBurst)
		now = now.Add(time.Second)
		m.tick(&cfg, now, 0, log)
		if want := uint64(i / (trimSteady + 1)); i%(trimSteady+1) != 0 && m.trims.Load() != want {
			t.Fatalf("tick %d of a steady ramp: %d trims, want %d", i, m.trims.Load(), want)
		}
	}
	if m.trims.Load() != 2 {
		t.Fatalf("a steady ramp of %d ticks trimmed %d times, want 2", 3*trimSteady, m.trims.Load())
	}
}

// TestMemTrimQuietSinceLastAccept: a tick that saw accepts still trims when
// the latest was trimQuiet ms ago: the ramp is over.
func TestMemTrimQuietSinceLastAccept(t *testing.T) {
	var m memTrim
	cfg := MemoryConfig{Trim: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Unix(1e6, 0)
	for i := range trimBurst {
		m.accepted(uint32(i / 10)) // 1,000 accepts within 100 ms
	}
	m.tick(&cfg, now, 99+trimQuiet-1, log)
	if m.trims.Load() != 0 {
		t.Fatal("trimmed less than trimQuiet after the last accept")
	}
	m.accepted(200)
	m.tick(&cfg, now.Add(time.Second), 200+trimQuiet, log)
	if m.trims.Load() != 1 {
		t.Fatalf("trims %d trimQuiet after the last accept, want 1", m.trims.Load())
	}
}
