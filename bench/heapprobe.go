package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrNoHeapProbe means the server has no GET /debug/heap on its control port.
var ErrNoHeapProbe = errors.New("bench: server has no /debug/heap")

// HeapStats is the answer of GET /debug/heap (bench/peers serve it): Go
// memory right after a forced GC.
type HeapStats struct {
	HeapAlloc  int64 `json:"heap_alloc"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"`
	Sys        int64 `json:"sys"`
	Goroutines int64 `json:"goroutines"`
}

// Live is the Go memory a connection really pins: live heap plus goroutine
// stacks (which a goroutine-per-connection server pays outside the heap).
func (h HeapStats) Live() int64 { return h.HeapAlloc + h.StackInuse }

// ProbeHeap asks the control listener at httpAddr for HeapStats.
func ProbeHeap(httpAddr string) (HeapStats, error) {
	var h HeapStats
	// No keep-alive: an idle probe connection would count as one of the
	// server's descriptors when the density ramp takes its baseline.
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + httpAddr + "/debug/heap")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return h, ErrNoHeapProbe
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("bench: /debug/heap: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}
