package server

import (
	"fmt"
	"math"
)

// PublishLimits bound client publishes per connection (issue 12), on top
// of --max-client-rate (which counts every client message). A token bucket
// per publishing connection, refilled from the loop clock when it
// publishes: no timer, and no bytes in conn (a per-loop table, publish.go).
type PublishLimits struct {
	// Rate is publishes (ephemeral ones too) per second per connection;
	// over it a publish is dropped with rate_limited and its id, and the
	// connection stays open. 0: only --max-client-rate applies.
	Rate float64
	// Burst is publishes accepted at once; 0 = one second's worth (at least 1).
	Burst int
}

// DefaultPublishRate is client publishes per second per connection (like
// Pusher's client events: plenty for chat and typing indicators).
const DefaultPublishRate = 10

func (p *PublishLimits) normalize() error {
	if p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) {
		return fmt.Errorf("config: PublishLimits.Rate %v: want 0 (no publish limit) or a positive number", p.Rate)
	}
	if p.Burst < 0 {
		return fmt.Errorf("config: PublishLimits.Burst %d is negative", p.Burst)
	}
	if p.Burst == 0 {
		p.Burst = int(max(1, math.Ceil(min(p.Rate, math.MaxInt32))))
	}
	return nil
}

// ClientPublisher takes client publications off the loop when seqs are
// assigned elsewhere (worker mode: bus.ClientPublisher sends them to the
// supervisor's sequencer over NATS). Publish must not block: done is called
// exactly once, from any goroutine (possibly before Publish returns), with
// the assigned seq (0 for an ephemeral message) or the error. data and from
// are only valid during the call.
type ClientPublisher interface {
	Publish(topic string, data, from []byte, ephemeral bool, done func(seq uint64, err error))
}

// DeliverFrom is Deliver for a client publication sequenced elsewhere: from
// is its sender stamp (nil: none). Any goroutine.
func (n *Node) DeliverFrom(topic string, seq uint64, data, from []byte) (subscribers int, err error) {
	return n.hub.deliverFrom(topic, seq, data, from)
}

// DeliverEphemeral hands an ephemeral message (no seq, kept nowhere) to the
// topic's current subscribers here. Any goroutine.
func (n *Node) DeliverEphemeral(topic string, data, from []byte) (subscribers int, err error) {
	return n.hub.publishEphemeral(topic, data, from)
}
