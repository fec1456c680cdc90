package server

import (
	"fmt"

	"github.com/fanwire/fanwire/codec"
)

// CompressionConfig is permessage-deflate (RFC 7692). The server never
// keeps compression context between messages (it answers
// server_no_context_takeover and client_no_context_takeover), so an idle
// connection costs nothing extra and one compressed frame per publish is
// shared by every subscriber that negotiated it.
type CompressionConfig struct {
	Enabled bool // negotiate permessage-deflate with clients that offer it
	// MinSize: deliveries whose envelope is smaller go uncompressed (the
	// frame would barely shrink and compressing costs CPU).
	MinSize int
	Level   int // flate level, 1 (fastest) to 9 (smallest)
}

// Defaults of permessage-deflate.
const (
	DefaultCompressMin   = 256
	DefaultCompressLevel = 1
)

// DefaultCompression is on, for messages of 256 bytes or more, at level 1.
func DefaultCompression() CompressionConfig {
	return CompressionConfig{Enabled: true, MinSize: DefaultCompressMin, Level: DefaultCompressLevel}
}

func (c *CompressionConfig) normalize() error {
	if c.MinSize < 0 {
		return fmt.Errorf("config: Compression.MinSize %d is negative", c.MinSize)
	}
	if c.Level == 0 {
		c.Level = DefaultCompressLevel
	}
	if c.Level < codec.MinCompressLevel || c.Level > codec.MaxCompressLevel {
		return fmt.Errorf("config: Compression.Level %d: want %d to %d", c.Level, codec.MinCompressLevel, codec.MaxCompressLevel)
	}
	return nil
}
