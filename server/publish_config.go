package server

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
