package main

import (
	"testing"

	"github.com/fanwire/fanwire/server"
)

var publishFlagNames = []string{"max-client-publish-rate", "max-client-publish-burst"}

func TestServePublishFlags(t *testing.T) {
	opts, err := parseServeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := opts.cfg.PublishLimits; p.Rate != server.DefaultPublishRate || p.Burst != 0 {
		t.Fatalf("defaults: %+v", p)
	}
	opts, err = parseServeFlags([]string{"--max-client-publish-rate", "2.5", "--max-client-publish-burst", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if p := opts.cfg.PublishLimits; p.Rate != 2.5 || p.Burst != 4 {
		t.Fatalf("parsed: %+v", p)
	}
	for _, args := range [][]string{{"--max-client-publish-rate", "-1"}, {"--max-client-publish-burst", "-2"}, {"--max-client-publish-rate", "NaN"}} {
		if _, err := parseServeFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
