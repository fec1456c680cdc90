package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

func TestServeFlagDefaults(t *testing.T) {
	opts, err := parseServeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := server.DefaultConfig()
	want.Loops = 0 // 0 = GOMAXPROCS, resolved by the node, so --help is machine-independent
	if !reflect.DeepEqual(opts.cfg, want) {
		t.Fatalf("config = %+v\nwant     %+v", opts.cfg, want)
	}
	if opts.demo || opts.logLevel != slog.LevelInfo || opts.logFormat != "text" {
		t.Fatalf("demo %v level %v format %q", opts.demo, opts.logLevel, opts.logFormat)
	}
}

func TestServeFlagsMaxMessageInEchoMode(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{nil, server.DefaultMaxMessage},
		{[]string{"--echo"}, server.DefaultEchoMaxMessage},
		{[]string{"--echo", "--max-message", "1MiB"}, 1 << 20},
		{[]string{"--max-message=64KiB", "--echo"}, 64 << 10}, // explicit, even if equal to the normal default
		{[]string{"--max-message", "1000"}, 1000},
	}
	for _, c := range cases {
		opts, err := parseServeFlags(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if opts.cfg.MaxMessage != c.want {
			t.Errorf("%q: MaxMessage = %d, want %d", c.args, opts.cfg.MaxMessage, c.want)
		}
	}
}

func TestServeFlagsAllSet(t *testing.T) {
	opts, err := parseServeFlags([]string{
		"--listen", "0.0.0.0:9000", "--http", "", "--echo", "--demo",
		"--ping-interval", "2s", "--handshake-timeout", "750ms", "--max-handshake", "4KiB",
		"--max-message", "2M", "--max-topics", "7", "--max-conns", "100", "--max-body", "512",
		"--max-pending", "3MiB", "--loops", "4", "--log-level", "debug", "--log-format", "json",
		"--flush-interval", "5ms", "--slow-grace", "3s", "--last-value", "a.*", "--history", "7",
		"--history-ttl", "1m", "--drain-window", "2s", "--drain-rate", "500", "--kernel-unsent", "32KiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := server.Config{
		Listen: "0.0.0.0:9000", HTTPListen: "", Echo: true, PingInterval: 2 * time.Second,
		HandshakeTimeout: 750 * time.Millisecond, MaxHandshake: 4 << 10, MaxMessage: 2 << 20,
		MaxTopicsPerConn: 7, MaxConns: 100, MaxPublishBody: 512, MaxPending: 3 << 20, Loops: 4,
		FlushInterval: 5 * time.Millisecond, SlowGrace: 3 * time.Second, LastValue: "a.*", History: 7,
		HistoryTTL: time.Minute, DrainWindow: 2 * time.Second, DrainRate: 500, NotSentLowat: 32 << 10,
		Auth: server.AuthConfig{Mode: server.AuthOff},
	}
	want.Limits = server.DefaultConfig().Limits               // serve_limits_test.go covers those flags
	want.Streams = server.DefaultConfig().Streams             // serve_streams_test.go covers those
	want.Memory = server.DefaultConfig().Memory               // serve_memory_test.go
	want.Compression = server.DefaultCompression()            // not set here: serve_compress_test.go
	want.PublishLimits = server.DefaultConfig().PublishLimits // serve_publish_test.go
	if !reflect.DeepEqual(opts.cfg, want) {
		t.Fatalf("config = %+v\nwant     %+v", opts.cfg, want)
	}
	if !opts.demo || opts.logLevel != slog.LevelDebug || opts.logFormat != "json" {
		t.Fatalf("demo %v level %v format %q", opts.demo, opts.logLevel, opts.logFormat)
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", "loud"},
		{"--log-format", "xml"},
		{"--max-message", "12Q"},
		{"--max-body", "-1"},
		{"--loops", "-1"},
		{"--max-conns", "-5"},
		{"--no-such-flag"},
		{"stray"},
	} {
		if _, err := parseServeFlags(args); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: err = %v, want a parse error", args, err)
		}
	}
	if _, err := parseServeFlags([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v, want flag.ErrHelp", err)
	}
}

func TestServeUsageListsEveryFlagWithDefault(t *testing.T) {
	var out bytes.Buffer
	printServeUsage(&out)
	usage := out.String()
	documented := []string{"listen", "http", "echo", "demo", "ping-interval", "handshake-timeout",
		"max-handshake", "max-message", "max-topics", "max-conns", "max-body", "max-pending", "send-buffer", "kernel-unsent", "slow-grace", "last-value", "history", "history-ttl", "drain-window", "drain-rate",
		"loops", "workers", "nats", "nats-port", "flush-interval", "log-level", "log-format"}
	documented = append(documented, authFlagNames...)
	documented = append(documented, limitFlagNames...) // serve_limits_test.go
	documented = append(documented, proxyFlagNames...) // serve_proxy_test.go
	documented = append(documented, usersFlagNames...)
	documented = append(documented, streamFlagNames...)                              // serve_streams_test.go
	documented = append(documented, "metrics-listen")                                // serve_metrics.go
	documented = append(documented, memoryFlagNames...)                              // serve_memory_test.go
	documented = append(documented, "compression", "compress-min", "compress-level") // serve_compress.go
	documented = append(documented, "delta")                                         // serve_delta.go
	documented = append(documented, publishFlagNames...)                             // serve_publish_test.go
	documented = append(documented, "defer-accept")                                  // serve_accept.go
	fs, _, _ := newServeFlags(&serveOptions{})
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n != len(documented) {
		t.Errorf("serve has %d flags, the brief lists %d: keep this test and the README in sync", n, len(documented))
	}
	for _, name := range documented {
		line := lineWith(usage, "--"+name+" ")
		if line == "" || !strings.Contains(line, "(default ") {
			t.Errorf("usage has no line for --%s with its default:\n%s", name, usage)
		}
	}
	for _, want := range []string{`--listen addr`, `(default "127.0.0.1:8080")`, `(default 64KiB)`, `(default 1MiB)`,
		`(default 30s)`, `--echo  `, `(default false)`, `(default "info")`} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
}

func lineWith(text, needle string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, needle) {
			return line
		}
	}
	return ""
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "65536": 65536, "64K": 64 << 10, "64KiB": 64 << 10,
		"1M": 1 << 20, "1MiB": 1 << 20, "2GiB": 2 << 30, "10B": 10, " 3 MiB ": 3 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "1.5M", "-1", "1TiB", "99999999999G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1KiB", 64 << 10: "64KiB", 1 << 20: "1MiB", 3 << 30: "3GiB", 1536: "1536"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	var small int
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sizeVar(fs, &small, "s", 5, "")
	if err := fs.Parse([]string{"-s", "1GiB"}); err != nil || small != 1<<30 {
		t.Fatalf("int size flag: %d, %v", small, err)
	}
}

func TestSubcommands(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{nil, 2, "", "Commands:"},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"version"}, 0, "fanwire dev (", ""},
		{[]string{"--version"}, 0, "fanwire dev (", ""},
		{[]string{"help"}, 0, "serve", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help", "serve"}, 0, "--max-pending", ""},
		{[]string{"help", "bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"serve", "--help"}, 0, "--log-format", ""},
		{[]string{"serve", "-h"}, 0, "Usage: fanwire serve", ""},
		{[]string{"serve", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String(), c.stdout) || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("fanwire %q: exit %d (want %d)\nstdout: %s\nstderr: %s", c.args, code, c.code, stdout.String(), stderr.String())
		}
	}
}

// syncBuffer lets the test read log output while the node writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeRunsAndShutsDown runs a real node on free ports, reads the
// control URL from the startup log, publishes once and stops it.
func TestServeRunsAndShutsDown(t *testing.T) {
	opts, err := parseServeFlags([]string{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--demo", "--loops", "1", "--log-format", "json"})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- serve(ctx, opts, newLogger(&logs, slog.LevelInfo, "json"), func() {}) }()

	var started struct{ WS, Control string }
	deadline := time.Now().Add(10 * time.Second)
	for started.Control == "" {
		select {
		case code := <-exit:
			t.Fatalf("serve exited with %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no startup log line:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "listening") {
				json.Unmarshal([]byte(line), &started) //nolint:errcheck // checked below
			}
		}
	}
	if !strings.HasPrefix(started.WS, "ws://127.0.0.1:") || !strings.HasSuffix(started.WS, "/ws") {
		t.Fatalf("ws URL %q", started.WS)
	}
	for _, path := range []string{"/healthz", "/"} {
		resp, err := http.Get(started.Control + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(started.Control+"/publish/hello", "application/json", strings.NewReader(`{"hi":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no stopped log line:\n%s", logs.String())
	}
}
