package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// burstGC lets the Go heap grow by up to burstHeadroom during a connect
// burst before the GC runs, instead of GOGC's share of a heap that is still
// small. A fresh node taking its clients back after a restart otherwise
// collects ~7 times during a 15k storm (the heap goal starts at 2 MiB with
// GOGC 50), and the collections were ~10 % of the storm's server CPU
// (issue 17). Once the burst is over, the tick restores GOGC and the
// trimmer collects and returns the memory (burst garbage never stays
// resident). A heap already past burstHeadroom×100/GOGC is left alone, so
// large nodes collect as before; GOMEMLIMIT still caps the heap. GOGC is a
// ratio of the live heap, so it is recomputed after every collection during
// the burst (a finalizer): the goal stays live + burstHeadroom, not a
// multiple of a heap that has grown. GOGC is the process's, so there is
// one burstGC per process (gcBursts), whatever the number of Nodes.
type burstGC struct {
	accepts atomic.Uint64 // every node's accepts
	mark    atomic.Uint64 // accepts at the last tick of any node
	relaxed atomic.Bool   // set by the loop that saw the burst
	mu      sync.Mutex    // relax and restore
	restore int           // GOGC to put back; 0 = nothing changed
	trimDue bool          // this burst was relaxed: trim at its end
	bursts  atomic.Uint64
	samples [1]metrics.Sample
}

var gcBursts burstGC

const (
	// burstAccepts within one tick make a burst.
	burstAccepts = 500
	// burstHeadroom is how far the heap may grow past its live size
	// during a burst before the GC runs.
	burstHeadroom = 64 << 20
)

// accepted runs in OnOpen: a counter and one comparison unless a burst
// just started. trim: the node trims memory after bursts (without it
// nothing would return the headroom, so the GC is left alone).
func (b *burstGC) accepted(trim bool) {
	if a := b.accepts.Add(1); !trim || a-b.mark.Load() < burstAccepts || b.relaxed.Load() || !b.relaxed.CompareAndSwap(false, true) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := b.percent()
	prev := debug.SetGCPercent(pct)
	if prev <= 0 || prev >= pct {
		debug.SetGCPercent(prev) // GC off (or 0), or already this relaxed: keep it
		return
	}
	b.restore, b.trimDue = prev, true
	b.bursts.Add(1)
	b.armAfterGC()
}

// percent is the GOGC that puts the heap goal burstHeadroom past the heap
// the last collection found live.
func (b *burstGC) percent() int {
	b.samples[0].Name = "/gc/heap/live:bytes"
	metrics.Read(b.samples[:])
	return int(burstHeadroom * 100 / max(b.samples[0].Value.Uint64(), 1<<20))
}

type gcSentinel struct{ _ [16]byte } // big enough not to be a tiny allocation

// armAfterGC runs afterGC once the next collection has run.
func (b *burstGC) armAfterGC() {
	runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) { b.afterGC() })
}

// afterGC keeps the goal at live + burstHeadroom while the burst lasts, and
// puts GOGC back once that is no more than GOGC's own goal.
func (b *burstGC) afterGC() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restore == 0 {
		return
	}
	if pct := b.percent(); pct > b.restore {
		debug.SetGCPercent(pct)
		b.armAfterGC()
	} else {
		debug.SetGCPercent(b.restore)
		b.restore = 0
	}
}

// tick runs on a node's ticker goroutine: a tick without accepts (on any
// node) after a relaxed burst puts GOGC back and says the headroom should
// be returned now.
func (b *burstGC) tick() (ended bool) {
	accepts := b.accepts.Load()
	quiet := accepts == b.mark.Swap(accepts)
	if !quiet || !b.relaxed.Load() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restore != 0 {
		debug.SetGCPercent(b.restore)
		b.restore = 0
	}
	ended, b.trimDue = b.trimDue, false
	b.relaxed.Store(false)
	return ended
}

// returnBurst is the trim after a relaxed burst: always, however soon
// after the last trim, since the heap may hold up to burstHeadroom of the
// burst's garbage. The heap was small (that is when a burst relaxes), so
// the forced GC is short.
func (m *memTrim) returnBurst(now time.Time) {
	m.base, m.last = m.accepts.Load(), now
	debug.FreeOSMemory()
	m.trims.Add(1)
}
