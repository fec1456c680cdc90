package server

import (
	"fmt"
	"time"
)

// StreamConfig configures the HTTP fallback transports served on the
// WebSocket listener: Server-Sent Events (GET /sse) and long-polling
// (GET /poll). See stream.go and the README's "SSE and long-polling".
type StreamConfig struct {
	// PollTimeout is how long a long-poll request with nothing to deliver
	// is held before it is answered with no messages.
	PollTimeout time.Duration
}

// DefaultPollTimeout stays under the 30-60 s idle timeouts common in proxies.
const DefaultPollTimeout = 25 * time.Second

func (s *StreamConfig) normalize() error {
	if s.PollTimeout < 0 {
		return fmt.Errorf("config: PollTimeout %v is negative", s.PollTimeout)
	}
	if s.PollTimeout == 0 {
		s.PollTimeout = DefaultPollTimeout
	}
	return nil
}
