package main

import (
	"flag"
	"fmt"
	"math"

	"github.com/fanwire/fanwire/server"
)

// publishFlags defines the per-connection client publish limits (issue 12).
func publishFlags(fs *flag.FlagSet, p *server.PublishLimits) {
	d := server.DefaultConfig().PublishLimits
	fs.Float64Var(&p.Rate, "max-client-publish-rate", d.Rate, "client publishes (in-band {\"op\":\"publish\"}, ephemeral ones too) per second per connection, 0 = only --max-client-rate applies (over it: a rate_limited error with the publish's id; the connection stays open)")
	fs.IntVar(&p.Burst, "max-client-publish-burst", d.Burst, "client publishes accepted at once before --max-client-publish-rate applies, 0 = one second's worth")
}

// checkPublishFlags rejects impossible values before anything starts.
func checkPublishFlags(p server.PublishLimits) error {
	if p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) || p.Burst < 0 {
		return fmt.Errorf("--max-client-publish-rate / --max-client-publish-burst: want 0 or more")
	}
	return nil
}
