package main

import (
	"testing"

	"github.com/fanwire/fanwire/server"
)

func TestServeDeltaFlag(t *testing.T) {
	opts, err := parseServeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.cfg.Delta.Topics != "" {
		t.Errorf("default --delta %q, want off", opts.cfg.Delta.Topics)
	}
	opts, err = parseServeFlags([]string{"--delta", "prices.*,scores.*"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.cfg.Delta.Topics != "prices.*,scores.*" {
		t.Errorf("--delta: %q", opts.cfg.Delta.Topics)
	}
	opts.cfg.Delta.Topics = "[bad"
	opts.cfg.Listen = "127.0.0.1:0"
	if _, err := server.NewNode(opts.cfg); err == nil {
		t.Error("NewNode accepted a bad --delta pattern")
	}
}
