package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/fanwire/fanwire/server/demo"
	"github.com/fanwire/fanwire/server/supervisor"
)

// workerID is this process's worker number when a supervisor started it, else 0.
func workerID() int {
	env, ok := supervisor.WorkerFromEnv()
	if !ok {
		return 0
	}
	return env.ID
}

// superviseWorkers is `fanwire serve --workers N`: this process keeps the
// bus and the control API and re-executes itself as N workers that share
// the WebSocket port.
func superviseWorkers(ctx context.Context, opts serveOptions, log *slog.Logger, stopSignals func()) int {
	warnIfExposed(&opts.cfg, log)
	listen, err := concretePort(opts.cfg.Listen)
	if err != nil {
		log.Error("websocket listener", "err", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find own binary", "err", err)
		return 1
	}
	// Later flags win: every worker serves the same port with no HTTP API
	// and no demo feed, and never supervises in turn.
	// Workers serve no HTTP: they never see the API keys (withoutSecrets,
	// and the key variables are left out of their environment); token
	// secrets reach them through the environment (workerArgs).
	command := append([]string{exe, "serve"}, workerArgs(&opts)...)
	command = append(command, "--listen="+listen, "--http=", "--demo=false", "--workers=0", "--nats=", "--metrics-listen=")
	command = append(command, workerLimitArgs(opts)...)
	os.Unsetenv(envAPIKeys)   //nolint:errcheck // cannot fail for a valid name
	os.Unsetenv(envAdminKeys) //nolint:errcheck
	// --drain-rate is the node's: each worker closes its share.
	if opts.cfg.DrainRate > 0 {
		command = append(command, "--drain-rate="+strconv.Itoa(max(1, (opts.cfg.DrainRate+opts.workers-1)/opts.workers)))
	}
	sup, err := supervisor.New(supervisor.Config{
		Workers:    opts.workers,
		Command:    command,
		Listen:     listen,
		HTTPListen: opts.cfg.HTTPListen,
		NATSURL:    opts.natsURL,
		NATSPort:   opts.natsPort,
		MaxBody:    opts.cfg.MaxPublishBody,
		Page:       demo.RenderPage(demo.WSURL(listen)),
		APIKeys:    opts.cfg.Limits.APIKeys,
		AdminKeys:  opts.cfg.Limits.AdminKeys,
		Logger:     log,
		Metrics:    opts.cfg.Metrics.Listen,
	})
	if err == nil {
		err = sup.Start()
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	attrs := []any{"ws", demo.WSURL(listen), "workers", opts.workers,
		"bus", sup.NATSURL(), "control", "http://" + sup.HTTPAddr(), "demo_page", "http://" + sup.HTTPAddr() + "/"}
	if addr := sup.MetricsAddr(); addr != "" {
		attrs = append(attrs, "metrics", "http://"+addr+"/metrics")
	}
	log.Info("fanwire "+version+" supervising", attrs...)

	demoCtx, stopDemo := context.WithCancel(context.Background())
	demoDone := make(chan struct{})
	if opts.demo {
		go func() {
			defer close(demoDone)
			demo.Run(demoCtx, sup.Publisher(), log.With("component", "demo"))
		}()
	} else {
		close(demoDone)
	}
	<-ctx.Done()
	stopSignals()
	log.Info("shutting down: draining workers")
	stopDemo()
	<-demoDone
	if err := sup.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// serveWorker runs one worker's node (supervisor.RunWorker) until a signal.
func serveWorker(ctx context.Context, opts serveOptions, log *slog.Logger, stopSignals func()) int {
	env, _ := supervisor.WorkerFromEnv()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); stopSignals() }()
	if err := supervisor.RunWorker(ctx, opts.cfg, env, log); err != nil {
		log.Error("worker", "worker", env.ID, "err", err)
		return 1
	}
	return 0
}

// concretePort turns port 0 into a free port, so every worker binds the same one.
func concretePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}
