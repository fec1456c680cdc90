// Package metrics exports fanwire's counters in the Prometheus text format.
//
// Nothing here runs on the delivery path: the node keeps its per-loop atomic
// counters as before, and a custom prometheus.Collector reads a Snapshot of
// them at scrape time and emits const metrics. The package is a leaf (it
// does not import the server), so the server, the control API and the
// supervisor can all share its types; a worker sends its Snapshot to the
// supervisor as JSON over the NATS control subject.
package metrics

// Close reasons: the label values of fanwire_connections_closed_total. The
// set is fixed so that the label stays small.
const (
	ReasonDropped          = "dropped"           // the client hung up without a close frame (TCP EOF or reset)
	ReasonNormal           = "normal"            // the client sent a close frame
	ReasonIdle             = "idle"              // no data from the client for two ping intervals
	ReasonSlow             = "slow"              // fell behind and could not be conflated (1008)
	ReasonProtocol         = "protocol"          // a frame broke RFC 6455 or the message rules (1002, 1003, 1007)
	ReasonTooLarge         = "too_large"         // a message over --max-message (1009)
	ReasonTokenExpired     = "token_expired"     // the connection's token expired (4001)
	ReasonLimit            = "limit"             // refused at accept: a connection limit (HTTP 503)
	ReasonShutdown         = "shutdown"          // closed with 1001 by a graceful shutdown
	ReasonHandshakeFailed  = "handshake_failed"  // the upgrade request was refused with an HTTP error
	ReasonHandshakeTimeout = "handshake_timeout" // no complete upgrade request within --handshake-timeout
	ReasonHTTP             = "http"              // a plain HTTP request answered on the WebSocket listener (GET /fanwire.js)
	ReasonDisconnected     = "disconnected"      // disconnected on purpose through the control API (4005)
)

// Reasons lists every close reason, in the order of the Reason indexes the
// server uses (index 0 is the default: dropped).
var Reasons = [...]string{ReasonDropped, ReasonNormal, ReasonIdle, ReasonSlow, ReasonProtocol, ReasonTooLarge,
	ReasonTokenExpired, ReasonLimit, ReasonShutdown, ReasonHandshakeFailed, ReasonHandshakeTimeout, ReasonHTTP, ReasonDisconnected}

// Transports are the label values of fanwire_connections_open, in the order
// of the server's transport indexes (conn.kind).
var Transports = [...]string{"websocket", "sse", "poll"}

// CloseCodes are the WebSocket close codes counted one by one in
// fanwire_ws_close_codes_total; any other code is counted as "other".
var CloseCodes = [...]int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 4001, 4005}

// CodeIndex is the slot of code in CloseCodes, len(CloseCodes) for "other".
func CodeIndex(code int) int {
	for i, c := range CloseCodes {
		if c == code {
			return i
		}
	}
	return len(CloseCodes)
}

// HTTPStatuses are the handshake failure statuses counted one by one in
// fanwire_handshake_failures_total; any other is counted as "other".
var HTTPStatuses = [...]int{400, 401, 403, 404, 405, 408, 413, 426, 429, 431, 500, 503}

// StatusIndex is the slot of status in HTTPStatuses, len(HTTPStatuses) for "other".
func StatusIndex(status int) int {
	for i, s := range HTTPStatuses {
		if s == status {
			return i
		}
	}
	return len(HTTPStatuses)
}

// Snapshot is one node's counters at one moment. Counters only grow over a
// process's life; gauges (Conns, Open, Topics, Subscriptions, SlowNow) are
// current values. It is JSON so a worker can send it to its supervisor.
type Snapshot struct {
	Conns          int64  `json:"conns"`           // open TCP connections, every phase
	Open           int64  `json:"open"`            // upgraded connections now open, every transport
	Accepted       uint64 `json:"accepted"`        // TCP connections accepted
	Upgrades       uint64 `json:"upgrades"`        // handshakes answered with 101
	Topics         int    `json:"topics"`          // topics known to the node
	Subscriptions  int64  `json:"subscriptions"`   // subscriptions in effect now
	SlowNow        int64  `json:"slow_now"`        // connections in slow (conflating) mode now
	PublishedLocal uint64 `json:"published_local"` // sequenced by this node (control API, in-process feeds)
	PublishedBus   uint64 `json:"published_bus"`   // received from the bus (worker mode)
	PublishedAPI   uint64 `json:"published_api"`   // accepted by this process's control API
	Delivered      uint64 `json:"delivered"`
	DeliveredBytes uint64 `json:"delivered_bytes"`
	SlowMode       uint64 `json:"slow_mode"`
	Conflated      uint64 `json:"conflated"`
	SlowClosed     uint64 `json:"slow_closed"`
	Snapshots      uint64 `json:"snapshots"`
	Replays        uint64 `json:"replays"`
	Resets         uint64 `json:"resets"`

	// PublishedClient: client publications over WebSocket accepted by this
	// node (worker mode: answered by the sequencer, or sent if ephemeral).
	PublishedClient uint64 `json:"published_client"`

	OpenByTransport   map[string]int64  `json:"open_by_transport"`  // Open by transport (Transports)
	Closed            map[string]uint64 `json:"closed"`             // by reason (Reasons)
	CloseCodes        map[string]uint64 `json:"close_codes"`        // close frames the server sent, by code
	HandshakeFailures map[string]uint64 `json:"handshake_failures"` // by HTTP status
	HandshakeSeconds  HistogramSnapshot `json:"handshake_seconds"`
	PublishSeconds    HistogramSnapshot `json:"publish_seconds"` // this process's control API publishes

	// DeliveredByTransport: Delivered (live deliveries) by transport (Transports).
	DeliveredByTransport map[string]uint64 `json:"delivered_by_transport"`
}
