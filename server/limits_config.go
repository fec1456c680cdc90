package server

import (
	"fmt"
	"math"
	"time"

	"github.com/fanwire/fanwire/server/api"
)

// LimitsConfig is the control API's keys and the abuse limits (issue 11).
// Counts and rates of 0 mean "no limit"; DefaultConfig sets the defaults
// below. Every limit is per process: with --workers N the supervisor splits
// the node-wide ones (the connection rate) over the workers, and the
// per-client ones (per IP) apply in each worker (see README "Limits").
type LimitsConfig struct {
	APIKeys   api.Keys // POST /publish* needs one of them (or an admin key); none = open
	AdminKeys api.Keys // /stats, /debug/*, /admin/data, /topics, /metrics need one (not the static /admin page, nor --metrics-listen); none = open

	// MessageTimeout bounds how long a started client frame or message may
	// stay incomplete (a fragmented message never finished, a frame trickled
	// in byte by byte): close 1008. 0 = DefaultMessageTimeout.
	MessageTimeout time.Duration
	// MaxConnsPerIP caps open connections per client address (IPv6: per
	// /64); over it the upgrade gets HTTP 429.
	MaxConnsPerIP int
	// ConnRate is new connections per second for the process, a token
	// bucket per event loop (each loop gets ConnRate/Loops); over it the
	// client gets HTTP 503 with Retry-After. ConnBurst 0 = one second's worth.
	ConnRate  float64
	ConnBurst int
	// ClientRate is client messages (data messages and pings) per second per
	// connection, ClientBurst the bucket size (0 = one second's worth, at
	// most 65535). Over it: one rate_limited error, then close 1008. Not
	// applied with Echo (conformance suites send thousands at once).
	ClientRate  float64
	ClientBurst int
	// AllowedOrigins is a comma list of browser origins allowed to connect
	// (exact, or with one * for host labels: https://*.example.com); a
	// request with another Origin gets HTTP 403. "" = any origin. Requests
	// without Origin (non-browser clients) are always allowed.
	AllowedOrigins string
}

// Defaults of the abuse limits.
const (
	DefaultMessageTimeout = 10 * time.Second
	DefaultMaxConnsPerIP  = 1000
	DefaultConnRate       = 10000
	DefaultClientRate     = 100
)

// maxMessageTimeout keeps a message's start time within the 16-bit coarse
// clock on conn (65,535 x 16 ms).
const maxMessageTimeout = 15 * time.Minute

func defaultLimits() LimitsConfig {
	return LimitsConfig{
		MessageTimeout: DefaultMessageTimeout,
		MaxConnsPerIP:  DefaultMaxConnsPerIP,
		ConnRate:       DefaultConnRate,
		ClientRate:     DefaultClientRate,
	}
}

// normalize fills defaults and rejects impossible values.
func (c *LimitsConfig) normalize() error {
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = DefaultMessageTimeout
	}
	if c.MessageTimeout > maxMessageTimeout {
		return fmt.Errorf("config: MessageTimeout %v is above the maximum %v", c.MessageTimeout, maxMessageTimeout)
	}
	switch {
	case c.MaxConnsPerIP < 0:
		return fmt.Errorf("config: MaxConnsPerIP %d is negative", c.MaxConnsPerIP)
	case c.ConnRate < 0 || math.IsNaN(c.ConnRate) || math.IsInf(c.ConnRate, 0):
		return fmt.Errorf("config: ConnRate %v: want 0 (unlimited) or a positive number", c.ConnRate)
	case c.ClientRate < 0 || math.IsNaN(c.ClientRate) || math.IsInf(c.ClientRate, 0):
		return fmt.Errorf("config: ClientRate %v: want 0 (unlimited) or a positive number", c.ClientRate)
	case c.ConnBurst < 0 || c.ClientBurst < 0:
		return fmt.Errorf("config: negative burst")
	case c.ClientBurst > math.MaxUint16:
		return fmt.Errorf("config: ClientBurst %d is above %d", c.ClientBurst, math.MaxUint16)
	}
	if c.ConnBurst == 0 {
		c.ConnBurst = int(math.Ceil(c.ConnRate))
	}
	if c.ClientBurst == 0 {
		c.ClientBurst = int(min(math.Ceil(c.ClientRate), math.MaxUint16))
	}
	if _, err := parseOrigins(c.AllowedOrigins); err != nil {
		return err
	}
	return nil
}
