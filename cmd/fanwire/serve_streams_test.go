package main

import (
	"testing"
	"time"
)

var streamFlagNames = []string{"poll-timeout"}

func TestServeStreamFlags(t *testing.T) {
	opts, err := parseServeFlags([]string{"--poll-timeout", "40s"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.cfg.Streams.PollTimeout != 40*time.Second {
		t.Fatalf("PollTimeout %v, want 40s", opts.cfg.Streams.PollTimeout)
	}
}
