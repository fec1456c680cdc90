package main

import (
	"flag"

	"github.com/fanwire/fanwire/server"
)

// acceptFlags are the WebSocket listener's socket options.
func acceptFlags(fs *flag.FlagSet, c *server.AcceptConfig) {
	fs.IntVar(&c.DeferAccept, "defer-accept", 0, "TCP_DEFER_ACCEPT `seconds`: accept a connection only once its upgrade request has arrived (one wakeup per handshake instead of two; a silent client gets no 408 but waits in the kernel this long); 0 = off")
}
