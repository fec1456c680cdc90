package main

import "flag"

// metricsFlags defines the Prometheus flags of serve (see README "Metrics and admin").
func metricsFlags(fs *flag.FlagSet, opts *serveOptions) {
	fs.StringVar(&opts.cfg.Metrics.Listen, "metrics-listen", "",
		"also serve GET /metrics alone on this `addr`ess, open to scrapers (the control listener serves it too, with the other operator endpoints); \"\" = only on the control listener")
}
