package bus

import (
	"errors"
	"sync/atomic"
)

// SequencerCounters count a Sequencer's work, for /metrics.
type SequencerCounters struct {
	Published  atomic.Uint64 // messages sequenced and acknowledged by the stream
	CASRetries atomic.Uint64 // attempts lost to another publisher of the topic (Nats-Expected-Last-Subject-Sequence)
	Errors     atomic.Uint64 // publishes that failed with ErrUnavailable
}

// Counters are the Sequencer's counters; read them with Load.
func (s *Sequencer) Counters() *SequencerCounters { return &s.counters }

// count records how one Publish ended; a bad topic is the caller's error,
// not the bus's.
func (s *Sequencer) count(err *error) {
	switch {
	case *err == nil:
		s.counters.Published.Add(1)
	case errors.Is(*err, ErrUnavailable):
		s.counters.Errors.Add(1)
	}
}
