package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fanwire/fanwire/loadtest"
)

// loadMain runs `fanwire load <mode> [flags]`; args start at the mode.
// Exit codes: 0 all good, 1 connections failed or deliveries lost, 2 usage.
func loadMain(args []string) int {
	if len(args) > 0 && args[0] == "worker" {
		// A re-executed worker process (see loadtest.RunWorkerIfChild).
		return loadtest.RunWorker(os.Stdin, os.Stdout)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		printLoadUsage(os.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	mode := args[0]
	if mode != "connect" && mode != "fanout" && mode != "churn" && mode != "chat" {
		fmt.Fprintf(os.Stderr, "fanwire load: unknown mode %q\n\n", mode)
		printLoadUsage(os.Stderr)
		return 2
	}
	cfg := loadtest.DefaultConfig(mode)
	var quiet bool
	fs := loadFlags(mode, &cfg, &quiet)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fanwire load %s: unexpected argument %q\n", mode, fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := loadtest.Run(ctx, cfg, os.Stderr, quiet)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fanwire load %s: %v\n", mode, err)
		return 2
	}
	r.WriteText(os.Stdout)
	if cfg.JSONPath != "" {
		if err := r.WriteJSON(cfg.JSONPath); err != nil {
			fmt.Fprintf(os.Stderr, "fanwire load: writing report: %v\n", err)
			return 1
		}
	}
	if !r.OK {
		return 1
	}
	return 0
}

// loadFlags declares the flags of one mode, defaults taken from cfg.
func loadFlags(mode string, cfg *loadtest.Config, quiet *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("fanwire load "+mode, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "WebSocket URL of the node (ws:// only)")
	if mode == "connect" || mode == "fanout" {
		fs.StringVar(&cfg.Transport, "transport", "websocket", "websocket, sse or poll: the same subscriptions as Server-Sent Events (GET /sse on the --url's host; /ws becomes /sse) or as long-polling (GET /poll, each answer followed at once by the next request with the positions it returned)")
	}
	if mode == "connect" {
		fs.StringVar(&cfg.Dialect, "dialect", "", "centrifugo: speak Centrifugo v6's JSON protocol (connect and subscribe to the --url's topics= channel; `fanwire bench` uses it)")
	}
	switch mode {
	case "fanout":
		fs.IntVar(&cfg.Conns, "subscribers", cfg.Conns, "subscriber connections, spread round-robin over the topics")
	case "chat":
		loadChatFlags(fs, cfg) // load_chat.go
	default:
		fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections to open")
	}
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "new connections per second (ramp)")
	switch mode {
	case "connect":
		fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "how long to hold the connections once ramped; 0 = until --duration (Ctrl-C ends earlier)")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "cap on ramp plus hold")
		cfg.MeasureMemory = true
		fs.BoolVar(&cfg.MeasureMemory, "measure-memory", cfg.MeasureMemory, "report the load generator's heap and RSS per idle connection")
		fs.BoolVar(&cfg.Track, "track", false, "count deliveries during --hold and record their latency from a {\"t\":<unix ns>} payload (broadcast timing)")
	case "fanout":
		fs.StringVar(&cfg.API, "api", cfg.API, "control API base URL of the node")
		fs.IntVar(&cfg.Topics, "topics", cfg.Topics, "number of topics")
		fs.Float64Var(&cfg.PubRate, "pub-rate", cfg.PubRate, "publishes per second, over all topics")
		fs.IntVar(&cfg.Size, "size", cfg.Size, "publish body size in bytes ({\"t\":<send time>,\"pad\":\"...\"})")
		fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "concurrent HTTP publishers")
		fs.StringVar(&cfg.TopicPrefix, "topic-prefix", cfg.TopicPrefix, "topic name prefix; empty means load.<random>, unique per run")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish")
		fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "max wait for outstanding deliveries after the last publish")
		fs.Float64Var(&cfg.MaxLoss, "max-loss", cfg.MaxLoss, "allowed fraction of lost deliveries before the exit status is 1")
	case "churn":
		fs.Float64Var(&cfg.ChurnRate, "churn-rate", cfg.ChurnRate, "disconnects (each followed by a reconnect) per second once ramped")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to churn after the ramp")
	}
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes (0: as many as the open-files limit requires; 1: this process)")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "epoll event loops per process")
	fs.StringVar(&cfg.SourceIPs, "source-ips", cfg.SourceIPs, "source addresses: auto (127.0.0.2-127.0.0.33 for a loopback target), none, a count, a range a-b or a list")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "TCP connect plus WebSocket handshake timeout")
	fs.BoolVar(&cfg.Resume, "resume", cfg.Resume, "reconnect a connection the server closed (worker crash, restart, drain) as a client would: after the server's \"reconnect in Nms\" hint (1001) or a jittered backoff, honouring Retry-After, retrying until the run ends; fanout and chat resume after the last seq, so the report shows whether anything was lost; the report gives the reconnect times and any connection given up (exit 1)")
	if mode == "connect" {
		fs.BoolVar(&cfg.EndWhenBack, "end-when-back", false, "with --resume: end the hold as soon as every connection the server closed is open again (a restart storm)")
	}
	fs.IntVar(&cfg.Retries, "retries", cfg.Retries, "re-dial a connection whose connect or handshake failed (timeout, refused, reset, 503) up to this many times, with backoff")
	fs.DurationVar(&cfg.CloseTimeout, "close-timeout", cfg.CloseTimeout, "wait for the server's close frame after ours")
	loadTokenFlags(fs, cfg) // load_tokens.go
	fs.StringVar(&cfg.JSONPath, "json", "", "write a machine-readable report to this file")
	fs.BoolVar(quiet, "quiet", false, "no live progress")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fanwire load %s [flags]\n\n%s\n", mode, loadModeSummary(mode))
		if mode == "chat" {
			fmt.Fprint(fs.Output(), chatHelp)
		}
		fmt.Fprint(fs.Output(), "\nFlags:\n")
		printFlags(fs.Output(), fs)
	}
	return fs
}

func loadModeSummary(mode string) string {
	switch mode {
	case "connect":
		return "Open --conns WebSocket connections at --rate per second, hold them for --hold, close them cleanly."
	case "fanout":
		return "Connect --subscribers over --topics, publish at --pub-rate through --api for --duration, check every delivery."
	case "churn":
		return "Hold --conns connections and close+reopen --churn-rate of them per second for --duration."
	case "chat":
		return "--users in --rooms (and a --hot-room-users room) publish in-band every --publish-interval, check every delivery."
	}
	return ""
}

func printLoadUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: fanwire load <mode> [flags]\n\nModes:\n")
	for _, m := range []string{"connect", "fanout", "churn", "chat"} {
		fmt.Fprintf(w, "  %-8s %s\n", m, loadModeSummary(m))
	}
	fmt.Fprint(w, "\nRun 'fanwire load <mode> --help' for the flags of a mode. Exit status 1 means\n"+
		"connections failed, were dropped by the server, or deliveries were lost.\n")
}
