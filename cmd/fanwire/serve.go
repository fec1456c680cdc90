package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/demo"
)

// shutdownTimeout bounds how long serve waits for clients to take their
// 1001 close before the listeners are stopped anyway.
const shutdownTimeout = 10 * time.Second

// serveOptions is everything `fanwire serve` was asked to do.
type serveOptions struct {
	cfg       server.Config
	demo      bool
	logLevel  slog.Level
	logFormat string // "text" or "json"

	// Scale-out (workers.go): --workers N supervises N worker processes.
	workers  int
	natsURL  string
	natsPort int      // embedded NATS port; 0 = a free port
	args     []string // the serve arguments as given, passed on to workers

	auth   authFlags     // serve_auth.go
	limits limitOptions  // serve_limits.go
	memory memoryOptions // serve_memory.go
}

// newServeFlags defines the serve flags on a fresh FlagSet, bound to opts.
// Defaults come from server.DefaultConfig, so --help shows the real ones.
func newServeFlags(opts *serveOptions) (fs *flag.FlagSet, logLevel, logFormat *string) {
	d := server.DefaultConfig()
	c := &opts.cfg
	fs = flag.NewFlagSet("fanwire serve", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", d.Listen, "WebSocket listener `addr`ess (upgrade at GET /ws); port 0 picks a free port")
	fs.StringVar(&c.HTTPListen, "http", d.HTTPListen, "control HTTP API `addr`ess (publish, healthz, demo page); \"\" disables it")
	fs.BoolVar(&c.Echo, "echo", false, "conformance mode: echo every client text/binary message back (for Autobahn only)")
	fs.BoolVar(&opts.demo, "demo", false, "publish a simulated live feed on scores.football, prices.BTC-USD, prices.ETH-USD")
	fs.DurationVar(&c.PingInterval, "ping-interval", d.PingInterval, "ping idle connections this often; close them after 2 silent intervals")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", d.HandshakeTimeout, "close (HTTP 408) connections that have not completed the upgrade this long after accept; trickling the request does not extend it")
	sizeVar(fs, &c.MaxHandshake, "max-handshake", d.MaxHandshake, "max `size` of the upgrade request header block (431 above it)")
	sizeVar(fs, &c.MaxMessage, "max-message", d.MaxMessage,
		"max `size` of one client message (close 1009 above it); with --echo the default is "+formatSize(server.DefaultEchoMaxMessage))
	fs.IntVar(&c.MaxTopicsPerConn, "max-topics", d.MaxTopicsPerConn, "max subscriptions per connection (at most 65535)")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "max open connections, 0 = unlimited (HTTP 503 above it)")
	sizeVar(fs, &c.MaxPublishBody, "max-body", d.MaxPublishBody, "max `size` of a publish request body (413 above it)")
	sizeVar(fs, &c.MaxPending, "max-pending", d.MaxPending, "max unsent `size` per connection; above it deliveries are conflated (last-value topics) or the client is closed with 1008; a resume replays at most this much")
	sizeVar(fs, &c.SendBuffer, "send-buffer", 0, "kernel send buffer `size` per connection (SO_SNDBUF); 0 = kernel default, autotuned up to net.ipv4.tcp_wmem")
	sizeVar(fs, &c.NotSentLowat, "kernel-unsent", d.NotSentLowat, "unsent `size` the kernel may queue per connection (TCP_NOTSENT_LOWAT); beyond it a stalled client's backlog counts toward --max-pending; 0 = no limit")
	fs.DurationVar(&c.SlowGrace, "slow-grace", d.SlowGrace, "a connection still over --max-pending after this long is closed with 1008")
	fs.StringVar(&c.LastValue, "last-value", d.LastValue, "comma-separated topic `patterns` (path.Match, e.g. prices.*) whose last message new subscribers get first; \"\" = none, * = all")
	fs.IntVar(&c.History, "history", d.History, "recent messages kept per topic for resume (since); 0 = none")
	fs.DurationVar(&c.HistoryTTL, "history-ttl", d.HistoryTTL, "history entries older than this are dropped")
	fs.DurationVar(&c.DrainWindow, "drain-window", d.DrainWindow, "on shutdown, reconnect-delay hints sent with close 1001 are spread over this window")
	fs.IntVar(&c.DrainRate, "drain-rate", d.DrainRate, "on shutdown, connections closed per second")
	fs.IntVar(&c.Loops, "loops", 0, "event loops, 0 = GOMAXPROCS")
	// Scale-out (workers.go).
	fs.IntVar(&opts.workers, "workers", 0, "run N worker processes sharing --listen (SO_REUSEPORT), supervised, publishing over NATS; 0 = one process, in-process fan-out")
	fs.IntVar(&opts.natsPort, "nats-port", 0, "with --workers and no --nats: the embedded NATS server's `port` on 127.0.0.1; 0 = a free port")
	fs.StringVar(&opts.natsURL, "nats", "", "with --workers: join this NATS `url` (JetStream enabled, e.g. nats://host:4222) to share topics with other nodes; \"\" = embedded NATS on 127.0.0.1")
	proxyFlags(fs, &c.Proxy) // serve_proxy.go
	fs.DurationVar(&c.FlushInterval, "flush-interval", 0, "gather publishes this long and write them to each connection together (fewer syscalls, more latency); 0 = write at once")
	defineAuthFlags(fs, opts)
	limitFlags(fs, opts)                     // serve_limits.go
	defineUsersFlags(fs, opts)               // serve_users.go
	streamFlags(fs, opts)                    // serve_streams.go
	metricsFlags(fs, opts)                   // serve_metrics.go
	memoryFlags(fs, &opts.memory, &c.Memory) // serve_memory.go
	acceptFlags(fs, &c.Accept)               // serve_accept.go
	compressionFlags(fs, &c.Compression)
	deltaFlags(fs, &c.Delta)
	publishFlags(fs, &c.PublishLimits) // serve_publish.go
	logLevel = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	logFormat = fs.String("log-format", "text", "log `format`: text or json")
	fs.SetOutput(io.Discard) // parse errors are reported by parseServeFlags
	fs.Usage = func() {}
	return fs, logLevel, logFormat
}

// parseServeFlags turns command-line arguments into serve options.
// It returns flag.ErrHelp for -h/--help.
func parseServeFlags(args []string) (serveOptions, error) {
	var opts serveOptions
	fs, logLevel, logFormat := newServeFlags(&opts)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Autobahn's limit cases send 16 MiB messages: echo mode needs a larger
	// default, but an explicit --max-message always wins.
	if opts.cfg.Echo && !set["max-message"] {
		opts.cfg.MaxMessage = server.DefaultEchoMaxMessage
	}
	if err := finishAuthFlags(&opts); err != nil {
		return opts, err
	}
	if err := finishLimitFlags(&opts); err != nil {
		return opts, err
	}
	if err := checkPublishFlags(opts.cfg.PublishLimits); err != nil {
		return opts, err
	}
	// Scale-out (workers.go).
	opts.args = args
	if opts.workers < 0 {
		return opts, fmt.Errorf("--workers %d: want 0 (one process) or more", opts.workers)
	}
	if opts.natsURL != "" && opts.workers == 0 {
		return opts, fmt.Errorf("--nats needs --workers 1 or more")
	}
	if opts.cfg.Loops < 0 {
		return opts, fmt.Errorf("--loops %d: want 0 (GOMAXPROCS) or more", opts.cfg.Loops)
	}
	if opts.cfg.MaxConns < 0 {
		return opts, fmt.Errorf("--max-conns %d: want 0 (unlimited) or more", opts.cfg.MaxConns)
	}
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
	lvl, ok := levels[*logLevel]
	if !ok {
		return opts, fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	opts.logLevel = lvl
	if *logFormat != "text" && *logFormat != "json" {
		return opts, fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	opts.logFormat = *logFormat
	return opts, nil
}

func printServeUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: fanwire serve [flags]

Runs a fanwire node. Subscribers connect to ws://<listen>/ws (optionally
?topics=a,b); publishers POST JSON to http://<http>/publish/<topic>.
SIGINT/SIGTERM closes every connection with 1001 and exits.

Sizes accept bytes or a binary suffix: 65536, 64KiB, 1MiB (K = KiB).

Flags:
`)
	fs, _, _ := newServeFlags(&serveOptions{})
	printFlags(w, fs)
}

// runServe is `fanwire serve`: it runs until SIGINT or SIGTERM.
func runServe(args []string, stdout, stderr io.Writer) int {
	opts, err := parseServeFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		printServeUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fanwire serve: %v\nRun 'fanwire serve --help' for the flags.\n", err)
		return 2
	}
	if opts.auth.checkConfig {
		return checkConfig(opts, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, opts, newLogger(stderr, opts.logLevel, opts.logFormat), stop)
}

// serve runs a node until ctx is done, then shuts it down. stopSignals is
// called once shutdown begins so that a second Ctrl-C kills the process.
func serve(ctx context.Context, opts serveOptions, log *slog.Logger, stopSignals func()) int {
	logLimitWarnings(log, opts)
	applyMemoryFlags(opts.memory, log) // serve_memory.go
	// Scale-out (workers.go).
	if workerID() > 0 {
		return serveWorker(ctx, opts, log, stopSignals)
	}
	warnProxyExposure(log, opts.cfg) // serve_proxy.go
	if opts.workers > 0 {
		return superviseWorkers(ctx, opts, log, stopSignals)
	}
	cfg := opts.cfg
	cfg.Logger = log
	if cfg.HTTPListen != "" {
		cfg.Page = demo.RenderPage // rendered with the bound address once the node listens
	}
	warnIfExposed(&cfg, log)
	demoTokens(&cfg, opts.demo)
	node, err := server.NewNode(cfg)
	if err != nil {
		log.Error("invalid configuration", "err", err)
		return 1
	}
	if err := node.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	attrs := []any{"ws", demo.WSURL(node.WSAddr()), "echo", cfg.Echo}
	if addr := node.HTTPAddr(); addr != "" {
		attrs = append(attrs, "control", "http://"+addr, "demo_page", "http://"+addr+"/")
	}
	if addr := node.MetricsAddr(); addr != "" {
		attrs = append(attrs, "metrics", "http://"+addr+"/metrics")
	}
	log.Info("fanwire "+version+" listening", attrs...)

	// The feed gets its own context so it stops after "shutting down" is logged.
	demoCtx, stopDemo := context.WithCancel(context.Background())
	defer stopDemo()
	demoDone := make(chan struct{})
	if opts.demo {
		go func() {
			defer close(demoDone)
			demo.Run(demoCtx, node, log.With("component", "demo"))
		}()
	} else {
		close(demoDone)
	}

	<-ctx.Done()
	stopSignals()
	log.Info("shutting down: closing connections with 1001", "timeout", shutdownTimeout.String())
	stopDemo()
	<-demoDone
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := node.Shutdown(shutCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
