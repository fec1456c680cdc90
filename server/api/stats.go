package api

import (
	"net/http"
	"runtime"
	"runtime/debug"
)

// HeapStats is the answer of GET /debug/heap: Go memory right after a forced
// GC, so a benchmark can divide it by the number of connections.
type HeapStats struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
}

// serveStats answers GET /stats with the node's counters.
func (h *handler) serveStats(w http.ResponseWriter) {
	if h.stats == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "no stats on this listener")
		return
	}
	writeJSON(w, http.StatusOK, h.stats())
}

// serveHeap forces a GC and reports live memory. It costs a full GC, so it is
// a measurement tool for the (trusted, loopback by default) control listener.
func serveHeap(w http.ResponseWriter) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	writeJSON(w, http.StatusOK, HeapStats{
		HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse,
		Sys: m.Sys, Goroutines: runtime.NumGoroutine(),
	})
}
