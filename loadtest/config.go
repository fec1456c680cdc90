package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Config is a whole run as the user asked for it (flags); it is copied
// into the JSON report as "settings".
type Config struct {
	Mode           string        `json:"mode"` // connect, fanout, churn, chat
	URL            string        `json:"url"`
	API            string        `json:"api,omitempty"`
	Conns          int           `json:"conns"` // connect/churn: connections; fanout: subscribers
	Rate           float64       `json:"rate"`  // new connections per second
	Hold           time.Duration `json:"hold"`
	Duration       time.Duration `json:"duration"`
	Workers        int           `json:"workers"` // 0 = as many as the open-files limit needs
	Loops          int           `json:"loops"`   // event loops per process
	SourceIPs      string        `json:"source_ips"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	Retries        int           `json:"retries"`                 // re-dials of a connection whose connect or handshake failed
	Resume         bool          `json:"resume"`                  // reconnect a connection the server closed (fanout: resuming after its last seq)
	EndWhenBack    bool          `json:"end_when_back,omitempty"` // connect --resume: end the hold once every connection the server closed is open again
	CloseTimeout   time.Duration `json:"close_timeout"`
	MaxLoss        float64       `json:"max_loss"` // allowed lost fraction of expected deliveries
	MeasureMemory  bool          `json:"measure_memory"`
	Track          bool          `json:"track"`               // connect: check seq and record latency of deliveries (e.g. a broadcast during --hold)
	Transport      string        `json:"transport,omitempty"` // websocket (default), sse (sse.go) or poll (poll.go)
	Dialect        string        `json:"dialect,omitempty"`   // "" (fanwire) or centrifugo (centrifugo.go; connect mode)

	// fanout
	Topics      int           `json:"topics,omitempty"`
	PubRate     float64       `json:"pub_rate,omitempty"` // publishes per second (all topics)
	Size        int           `json:"size,omitempty"`     // publish body bytes
	Publishers  int           `json:"publishers,omitempty"`
	TopicPrefix string        `json:"topic_prefix,omitempty"`
	Drain       time.Duration `json:"drain,omitempty"` // max wait for deliveries after the last publish

	// churn
	ChurnRate float64 `json:"churn_rate,omitempty"` // disconnect+reconnect per second

	// chat (chat.go): Conns = Users + HotRoomUsers; Size, TopicPrefix,
	// Drain and Duration (publishing) as in fanout.
	Users              int           `json:"users,omitempty"`
	Rooms              int           `json:"rooms,omitempty"`
	HotRoomUsers       int           `json:"hot_room_users,omitempty"`
	PublishInterval    time.Duration `json:"-"`
	HotPublishInterval time.Duration `json:"-"`                    // 0: PublishInterval
	ServerPID          int           `json:"server_pid,omitempty"` // CPU of this pid and its descendants
	TokenPublish       string        `json:"token_publish,omitempty"`

	// Tokens (tokens.go): one fixed --token, or one HS256 token per
	// connection signed with the secret (file, env or flag) for sub TokenSub.
	Token           string        `json:"-"` // a credential: not in the report
	TokenSecret     string        `json:"-"`
	TokenSecretFile string        `json:"token_hmac_secret_file,omitempty"`
	TokenSub        string        `json:"token_sub,omitempty"`
	TokenTTL        time.Duration `json:"-"`
	TokenSubscribe  string        `json:"token_subscribe,omitempty"`
	Tokens          string        `json:"tokens,omitempty"` // how connections authenticate: "", "fixed", "hs256"

	JSONPath string `json:"-"`
}

// DefaultConfig returns the defaults for a mode (the flags show them).
func DefaultConfig(mode string) Config {
	c := Config{
		Mode:           mode,
		URL:            "ws://127.0.0.1:8080/ws",
		Conns:          1000,
		Rate:           2000,
		Hold:           5 * time.Second,
		Duration:       30 * time.Second,
		Loops:          min(runtime.GOMAXPROCS(0), 4),
		TokenSub:       "load-%d",
		TokenTTL:       time.Hour,
		TokenSubscribe: "*",
		SourceIPs:      "auto",
		ConnectTimeout: 10 * time.Second,
		Retries:        3,
		CloseTimeout:   5 * time.Second,
	}
	switch mode {
	case "fanout":
		c.API = "http://127.0.0.1:8081"
		c.Conns = 1000
		c.Topics = 10
		c.PubRate = 100
		c.Size = 100
		c.Publishers = 4
		c.Duration = 10 * time.Second
		c.Drain = 5 * time.Second
	case "churn":
		c.Conns = 1000
		c.ChurnRate = 200
		c.Duration = 10 * time.Second
	case "chat":
		c.Users = 1000
		c.Rooms = 100
		c.PublishInterval = 10 * time.Second
		c.Size = 100
		c.Duration = 30 * time.Second
		c.Drain = 10 * time.Second
		c.TopicPrefix = "chat.load"
		c.TokenPublish = "*"
	}
	return c
}

func (c *Config) validate() error {
	switch c.Mode {
	case "connect", "fanout", "churn", "chat":
	default:
		return fmt.Errorf("unknown mode %q", c.Mode)
	}
	if c.Mode == "chat" {
		c.Conns = c.Users + c.HotRoomUsers // one connection per user
	}
	switch c.Transport {
	case "", TransportWebSocket, TransportSSE, TransportPoll:
	default:
		return fmt.Errorf("unknown --transport %q (want websocket, sse or poll)", c.Transport)
	}
	if c.Dialect != "" && c.Dialect != DialectCentrifugo {
		return fmt.Errorf("unknown --dialect %q (want centrifugo)", c.Dialect)
	}
	if c.Dialect != "" && c.Transport != "" && c.Transport != TransportWebSocket {
		return fmt.Errorf("--dialect %s speaks WebSocket only, not --transport %s", c.Dialect, c.Transport)
	}
	switch {
	case c.Conns < 1:
		return errors.New("--conns must be >= 1")
	case c.Rate <= 0:
		return errors.New("--rate must be > 0")
	case c.Duration <= 0:
		return errors.New("--duration must be > 0")
	case c.Retries < 0 || c.Retries > 255:
		return errors.New("--retries must be 0..255")
	case c.MaxLoss < 0 || c.MaxLoss > 1:
		return errors.New("--max-loss is a fraction between 0 and 1")
	}
	if c.Mode == "fanout" {
		switch {
		case c.Topics < 1 || c.Topics > 65535:
			return errors.New("--topics must be 1..65535")
		case c.PubRate <= 0:
			return errors.New("--pub-rate must be > 0")
		case c.API == "":
			return errors.New("--api is required")
		case c.Publishers < 1:
			return errors.New("--publishers must be >= 1")
		}
	}
	if c.Mode == "chat" {
		switch {
		case c.Users < 0 || c.HotRoomUsers < 0:
			return errors.New("--users and --hot-room-users must be >= 0")
		case c.Users > 0 && c.Rooms < 1:
			return errors.New("--rooms must be >= 1")
		case c.Users+c.HotRoomUsers < 1:
			return errors.New("no users: set --users (and --rooms) or --hot-room-users")
		case c.PublishInterval <= 0 || c.HotPublishInterval < 0:
			return errors.New("--publish-interval must be > 0")
		case c.Transport == TransportSSE:
			return errors.New("chat publishes in-band: --transport sse does not apply")
		case c.Size < 0 || c.Size > 1<<20:
			return errors.New("--size must be 0..1MiB")
		}
	}
	if c.Mode == "churn" && c.ChurnRate <= 0 {
		return errors.New("--churn-rate must be > 0")
	}
	return nil
}

// MarshalJSON writes durations as strings ("5s") so reports are readable.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Hold           string `json:"hold"`
		Duration       string `json:"duration"`
		ConnectTimeout string `json:"connect_timeout"`
		CloseTimeout   string `json:"close_timeout"`
		Drain          string `json:"drain,omitempty"`
		PubInterval    string `json:"publish_interval,omitempty"`
		HotInterval    string `json:"hot_room_publish_interval,omitempty"`
	}{plain(c), c.Hold.String(), c.Duration.String(), c.ConnectTimeout.String(), c.CloseTimeout.String(), durOrEmpty(c.Drain),
		durOrEmpty(c.PublishInterval), durOrEmpty(c.HotPublishInterval)})
}

func durOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
