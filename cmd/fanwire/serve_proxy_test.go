package main

import "testing"

// proxyFlagNames are the serve flags of serve_proxy.go (usage test).
var proxyFlagNames = []string{"proxy-protocol"}

func TestServeFlagProxyProtocol(t *testing.T) {
	opts, err := parseServeFlags([]string{"--proxy-protocol"})
	if err != nil || !opts.cfg.Proxy.Protocol {
		t.Fatalf("--proxy-protocol: %v %+v", err, opts.cfg.Proxy)
	}
	if opts, _ := parseServeFlags(nil); opts.cfg.Proxy.Protocol {
		t.Fatal("PROXY protocol on by default")
	}
}
