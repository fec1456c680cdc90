package main

import (
	"flag"

	"github.com/fanwire/fanwire/server"
)

// streamFlags registers the flags of the SSE and long-poll transports.
func streamFlags(fs *flag.FlagSet, opts *serveOptions) {
	fs.DurationVar(&opts.cfg.Streams.PollTimeout, "poll-timeout", server.DefaultPollTimeout,
		"a long-poll (GET /poll) with nothing to deliver is answered empty after this long")
}
