package main

import "testing"

func TestServeMetricsListenFlag(t *testing.T) {
	opts, err := parseServeFlags([]string{"--metrics-listen", "127.0.0.1:9100"})
	if err != nil || opts.cfg.Metrics.Listen != "127.0.0.1:9100" {
		t.Fatalf("--metrics-listen: %q, %v", opts.cfg.Metrics.Listen, err)
	}
	if opts, _ := parseServeFlags(nil); opts.cfg.Metrics.Listen != "" {
		t.Fatalf("default --metrics-listen = %q, want off", opts.cfg.Metrics.Listen)
	}
}
