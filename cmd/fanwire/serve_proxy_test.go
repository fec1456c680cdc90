package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/fanwire/fanwire/server"
)

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

func TestWarnProxyExposure(t *testing.T) {
	for listen, warn := range map[string]bool{
		"0.0.0.0:8080": true, ":8080": true, "[::]:8080": true, "203.0.113.5:8080": true,
		"127.0.0.1:8080": false, "10.0.0.5:8080": false, "[::1]:8080": false,
	} {
		var buf bytes.Buffer
		cfg := server.DefaultConfig()
		cfg.Listen, cfg.Proxy.Protocol = listen, true
		warnProxyExposure(slog.New(slog.NewTextHandler(&buf, nil)), cfg)
		if got := strings.Contains(buf.String(), "level=WARN"); got != warn {
			t.Errorf("%s: warned %v, want %v (%s)", listen, got, warn, buf.String())
		}
		buf.Reset()
		cfg.Proxy.Protocol = false
		if warnProxyExposure(slog.New(slog.NewTextHandler(&buf, nil)), cfg); buf.Len() > 0 {
			t.Errorf("%s without the flag: %s", listen, buf.String())
		}
	}
}
