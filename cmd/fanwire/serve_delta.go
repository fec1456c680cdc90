package main

import (
	"flag"

	"github.com/fanwire/fanwire/server"
)

// deltaFlags defines the Fossil delta flag (server.DeltaConfig).
func deltaFlags(fs *flag.FlagSet, c *server.DeltaConfig) {
	fs.StringVar(&c.Topics, "delta", "", "comma-separated topic `patterns` (\"prices.*\") whose subscribers may ask for Fossil deltas against the previous message (\"delta\":\"fossil\" in subscribe, ?delta=fossil in the URL); \"\" = none")
}
