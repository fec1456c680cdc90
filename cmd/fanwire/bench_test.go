package main

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/fanwire/fanwire/bench"
)

func TestBenchArgsDefaults(t *testing.T) {
	o, err := parseBenchArgs(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.quick || o.out != "bench/results" || o.peersSrc != "bench/peers" || o.fanwire != "" ||
		!reflect.DeepEqual(o.scenarios, bench.Scenarios) || !reflect.DeepEqual(o.servers, bench.DefaultServers) {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestBenchArgs(t *testing.T) {
	o, err := parseBenchArgs([]string{"--quick", "--scenario", "fanout,handshake", "--out", "/tmp/x", "--servers", "fanwire, nbiohub"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.quick || o.out != "/tmp/x" || !reflect.DeepEqual(o.scenarios, []string{"fanout", "handshake"}) || !reflect.DeepEqual(o.servers, []string{"fanwire", "nbiohub"}) {
		t.Fatalf("parsed: %+v", o)
	}
	if needsPeers([]string{"fanwire"}) || needsPeers([]string{"fanwire", "centrifugo"}) || !needsPeers(o.servers) {
		t.Fatal("needsPeers")
	}
}

func TestBenchArgsErrorsAndHelp(t *testing.T) {
	for _, args := range [][]string{{"--scenario", "nope"}, {"--servers", ","}, {"--servers", "fanwire,nginx"}, {"extra"}, {"--no-such-flag"}} {
		if _, err := parseBenchArgs(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	var out bytes.Buffer
	_, err := parseBenchArgs([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"Usage: fanwire bench", "--quick", "--scenario", "--out", "slow-consumers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printBenchUsage(&out)
	if !strings.Contains(out.String(), "fanwire-flush") || !strings.Contains(out.String(), "--servers") {
		t.Errorf("printBenchUsage:\n%s", out.String())
	}
	if code := benchMain([]string{"--scenario", "nope"}); code != 2 {
		t.Errorf("bad usage exit code %d, want 2", code)
	}
}
