package main

import (
	"flag"

	"github.com/fanwire/fanwire/server"
)

// compressionFlags defines the permessage-deflate flags (server.CompressionConfig).
func compressionFlags(fs *flag.FlagSet, c *server.CompressionConfig) {
	d := server.DefaultCompression()
	fs.BoolVar(&c.Enabled, "compression", d.Enabled, "negotiate permessage-deflate (RFC 7692) with clients that offer it; no context takeover either way, so idle connections cost nothing extra")
	sizeVar(fs, &c.MinSize, "compress-min", d.MinSize, "messages smaller than this `size` are sent uncompressed to compressing clients")
	fs.IntVar(&c.Level, "compress-level", d.Level, "deflate `level`, 1 (fastest) to 9 (smallest); each publish is compressed at most once")
}
