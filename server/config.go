package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"runtime"
	"strings"
	"time"
)

// Config is everything a node needs. Start from DefaultConfig: zero limits and
// durations take its defaults, except LastValue and History, where zero means off.
type Config struct {
	Listen           string                    // WebSocket listener; port 0 picks a free port
	HTTPListen       string                    // control HTTP API; port 0 picks a free port; "" disables it
	Echo             bool                      // conformance mode: echo every client message back
	PingInterval     time.Duration             // idle connections are pinged, and closed after 2 silent intervals
	HandshakeTimeout time.Duration             // a connection must finish its upgrade within this time
	MaxHandshake     int                       // bytes of the HTTP upgrade header block (431 above it)
	MaxMessage       int                       // bytes of one client message (close 1009 above it)
	MaxTopicsPerConn int                       // subscriptions per connection
	MaxConns         int                       // 0 = unlimited; above it new connections get HTTP 503
	MaxPublishBody   int64                     // bytes of one publish request body (413 above it)
	MaxPending       int                       // unsent bytes per connection before it is slow: conflated (last-value topics) or closed with 1008; also caps a resume's replay
	Loops            int                       // event loops; default GOMAXPROCS
	SendBuffer       int                       // kernel send buffer per socket (SO_SNDBUF); 0 = kernel default (autotuned)
	NotSentLowat     int                       // unsent bytes the kernel may queue per socket (TCP_NOTSENT_LOWAT), so MaxPending sees a stalled client's backlog; 0 = no limit
	FlushInterval    time.Duration             // 0: write each publish at once; >0: gather publishes this long, write them together
	Page             func(wsURL string) []byte // renders the HTML served at GET / (nil: a plain index)
	LastValue        string                    // comma-separated topic patterns ("prices.*") that keep their last message for new subscribers
	History          int                       // recent messages kept per topic for resume (0: none)
	HistoryTTL       time.Duration             // history entries older than this are dropped
	SlowGrace        time.Duration             // how long a slow (conflated) connection may stay behind before close 1008
	DrainWindow      time.Duration             // shutdown: reconnect-delay hints are spread over this window
	DrainRate        int                       // shutdown: connections closed per second
	Logger           *slog.Logger
	// OnInterest, if set, is told when this node gains its first (true) or
	// loses its last (false) subscriber of a topic, so a bus can subscribe
	// only to what local clients watch. It must not block or call the node.
	OnInterest func(topic string, interested bool)
	// AwaitPrime (worker mode): a topic this node starts to follow is not
	// served until Prime reports that the bus subscription is live and gives
	// the newest stored message. Subscriptions wait for it (one bus round
	// trip), so their ack, snapshot and resume reflect the topic's real state.
	AwaitPrime bool
	// Epoch, if set, is every topic's epoch instead of one per node and topic
	// (worker mode: the bus stream's, since seqs are the stream's too, so a
	// client can resume on any worker or node).
	Epoch string
	// Auth is the token and permission policy (auth_config.go).
	Auth AuthConfig
	// Limits: control API keys and abuse limits (limits_config.go).
	Limits LimitsConfig
	Proxy  ProxyConfig // PROXY protocol from a TLS terminator in front (proxy.go)
	// Users are the per-user limits (users.go).
	Users UsersConfig
	// Streams configures SSE and long-polling (stream_config.go).
	Streams StreamConfig
	Metrics MetricsConfig // metrics_config.go: --metrics-listen
	// Memory is when the node returns freed memory to the OS (memtrim.go).
	Memory MemoryConfig
	// Accept tunes the WebSocket listeners (listener.go); off by default.
	Accept AcceptConfig

	// Compression: permessage-deflate (compress_config.go).
	Compression CompressionConfig
	// Delta: Fossil delta deliveries (delta_config.go).
	Delta         DeltaConfig
	ClientPublish ClientPublisher
	// PublishLimits: client publishes per second per connection (publish_config.go).
	PublishLimits PublishLimits
	// Presence: join/leave coalescing and the member bound (presence.go).
	Presence PresenceConfig
}

// Defaults of the wire contract.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultHTTPListen       = "127.0.0.1:8081"
	DefaultPingInterval     = 30 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxHandshake     = 8 << 10
	DefaultMaxMessage       = 64 << 10
	DefaultEchoMaxMessage   = 64 << 20 // Autobahn's limits cases send 16 MiB messages
	DefaultMaxTopicsPerConn = 1000
	DefaultMaxPublishBody   = 1 << 20
	DefaultMaxPending       = 256 << 10
	DefaultNotSentLowat     = 64 << 10
	DefaultLastValue        = "prices.*,scores.*"
	DefaultHistory          = 100
	DefaultHistoryTTL       = 5 * time.Minute
	DefaultSlowGrace        = 5 * time.Second
	DefaultDrainWindow      = 10 * time.Second
	DefaultDrainRate        = 20000
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Listen:           DefaultListen,
		HTTPListen:       DefaultHTTPListen,
		PingInterval:     DefaultPingInterval,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MaxHandshake:     DefaultMaxHandshake,
		MaxMessage:       DefaultMaxMessage,
		MaxTopicsPerConn: DefaultMaxTopicsPerConn,
		MaxPublishBody:   DefaultMaxPublishBody,
		MaxPending:       DefaultMaxPending,
		NotSentLowat:     DefaultNotSentLowat,
		LastValue:        DefaultLastValue,
		Memory:           MemoryConfig{Trim: true},
		History:          DefaultHistory,
		HistoryTTL:       DefaultHistoryTTL,
		SlowGrace:        DefaultSlowGrace,
		DrainWindow:      DefaultDrainWindow,
		DrainRate:        DefaultDrainRate,
		Loops:            runtime.GOMAXPROCS(0),
		Auth:             AuthConfig{Mode: AuthOff},
		Limits:           defaultLimits(),
		Streams:          StreamConfig{PollTimeout: DefaultPollTimeout},
		Compression:      DefaultCompression(),
		PublishLimits:    PublishLimits{Rate: DefaultPublishRate},
	}
}

// normalize fills zero fields with defaults and rejects impossible values.
func (c *Config) normalize() error {
	d := DefaultConfig()
	if c.Listen == "" {
		return errors.New("config: Listen address is required")
	}
	if c.PingInterval <= 0 {
		c.PingInterval = d.PingInterval
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxHandshake <= 0 {
		c.MaxHandshake = d.MaxHandshake
	}
	if c.MaxHandshake < 256 {
		return fmt.Errorf("config: MaxHandshake %d is too small (min 256)", c.MaxHandshake)
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = d.MaxMessage
		if c.Echo {
			c.MaxMessage = DefaultEchoMaxMessage
		}
	}
	if c.MaxTopicsPerConn <= 0 {
		c.MaxTopicsPerConn = d.MaxTopicsPerConn
	}
	if c.MaxTopicsPerConn > math.MaxUint16 {
		return fmt.Errorf("config: MaxTopicsPerConn %d is too large (max %d)", c.MaxTopicsPerConn, math.MaxUint16)
	}
	if c.MaxPublishBody <= 0 {
		c.MaxPublishBody = d.MaxPublishBody
	}
	if c.MaxPending <= 0 {
		c.MaxPending = d.MaxPending
	}
	// An echo reply is as large as the message: let one full reply be pending.
	if c.Echo && c.MaxPending < 2*c.MaxMessage {
		c.MaxPending = 2 * c.MaxMessage
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("config: MaxConns %d is negative", c.MaxConns)
	}
	if c.Loops <= 0 {
		c.Loops = d.Loops
	}
	if c.History < 0 {
		return fmt.Errorf("config: History %d is negative", c.History)
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = d.HistoryTTL
	}
	if c.SlowGrace <= 0 {
		c.SlowGrace = d.SlowGrace
	}
	if c.DrainWindow <= 0 {
		c.DrainWindow = d.DrainWindow
	}
	if c.DrainRate <= 0 {
		c.DrainRate = d.DrainRate
	}
	if err := validPatterns(c.LastValue); err != nil {
		return err
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("config: FlushInterval %v is negative", c.FlushInterval)
	}
	if err := c.Limits.normalize(); err != nil {
		return err
	}
	if err := c.PublishLimits.normalize(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Users.normalize()
	if err := c.Compression.normalize(); err != nil {
		return err
	}
	if err := c.Streams.normalize(); err != nil {
		return err
	}
	if err := c.Delta.normalize(); err != nil {
		return err
	}
	return c.Auth.normalize(c)
}

// tickInterval is how often each loop sweeps its connections for deadlines:
// a quarter of the shortest deadline, between 10 ms and 1 s, so a ping
// always has at least three ticks to be answered before the idle close.
func (c *Config) tickInterval() time.Duration {
	t := min(c.HandshakeTimeout, c.PingInterval, c.Limits.MessageTimeout) / 4
	return min(max(t, 10*time.Millisecond), time.Second)
}

// validPatterns checks a comma-separated list of path.Match topic patterns.
func validPatterns(list string) error {
	for _, p := range strings.Split(list, ",") {
		if _, err := path.Match(strings.TrimSpace(p), ""); err != nil {
			return fmt.Errorf("config: bad last-value pattern %q: %w", p, err)
		}
	}
	return nil
}
