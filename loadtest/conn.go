package loadtest

import "github.com/fanwire/fanwire/codec"

// Connection states.
const (
	stFree       uint8 = iota // slot unused
	stConnecting              // TCP connect in progress
	stHandshake               // upgrade request sent, waiting for 101
	stOpen                    // WebSocket open
	stClosing                 // our close sent, waiting for the server's
)

// conn is the whole per-connection state of the load generator, stored by
// value in its loop's slot slice. An idle open connection owns no buffers:
// in and out are nil unless a frame or a write is split.
type conn struct {
	fd      int32
	state   uint8
	hasSeq  bool     // lastSeq is set (first delivery seen)
	resume  bool     // a reconnect: the upgrade asks for the topic since lastSeq (Plan.Resume)
	tries   uint8    // earlier failed attempts of this connection (see Plan.Retries)
	path    uint32   // index into the loop's path list for the upgrade request
	proto   uint8    // dialect progress (centrifugo.go: 101 seen, commands sent); in path's padding
	repoll  bool     // poll: an open conn's next request is connecting (poll.go); padding too
	since   int64    // unix nanos: dial time, or close time in stClosing
	down    int64    // unix nanos: when the server closed the connection this one replaces (0: first connect)
	lastSeq uint64   // last seq seen (fanout: one topic per connection)
	msgs    uint32   // data messages on this socket (dump.go)
	key     [24]byte // Sec-WebSocket-Key, needed to verify the accept
	parser  codec.Parser
	in      []byte // leftover partial frame / response (pooled)
	out     []byte // unsent bytes (pooled)
}
