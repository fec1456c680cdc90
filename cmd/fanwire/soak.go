package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/bench"
)

// soakFlags declares the flags of `fanwire soak` into cfg (defaults for a
// 30-minute run; the fault intervals are rescaled when only --duration is
// changed, see soakMain).
func soakFlags(cfg *bench.SoakConfig, out, name, logs, natsBin *string) *flag.FlagSet {
	fs := flag.NewFlagSet("fanwire soak", flag.ContinueOnError)
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "load time (make soak: SOAK_DURATION); kill, bus-restart and warm-up intervals shrink in proportion below 30m unless set")
	fs.DurationVar(&cfg.KillEvery, "kill-every", 0, "kill -9 one worker this often, the workers in turn (0: 3m for 30m)")
	fs.DurationVar(&cfg.BusEvery, "bus-restart-every", 0, "stop and restart nats-server this often (0: 7m for 30m)")
	fs.BoolVar(&cfg.KillInOutage, "kill-in-outage", false, "also kill a worker 1 s into every bus outage (its replacement starts while NATS is down)")
	fs.DurationVar(&cfg.BusDown, "bus-down", cfg.BusDown, "how long nats-server stays down at each restart")
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "fan-out oracle subscribers")
	fs.Float64Var(&cfg.PubRate, "pub-rate", cfg.PubRate, "fan-out publishes per second")
	fs.IntVar(&cfg.ChurnConns, "churn-conns", cfg.ChurnConns, "churn connections")
	fs.IntVar(&cfg.SlowConns, "slow-conns", cfg.SlowConns, "stalled subscribers per batch")
	fs.IntVar(&cfg.Tolerance.Goroutines, "tol-goroutines", cfg.Tolerance.Goroutines, "goroutines at the end: ± this of the idle baseline")
	fs.IntVar(&cfg.Tolerance.FDs, "tol-fds", cfg.Tolerance.FDs, "open files at the end: ± this of the idle baseline")
	fs.Int64Var(&cfg.Tolerance.RSSMiB, "tol-rss-mib", cfg.Tolerance.RSSMiB, "RSS at the end: at most this many MiB above the post-warm-up RSS")
	fs.StringVar(out, "out", "bench/results", "results `dir`ectory")
	fs.StringVar(name, "name", "", "results file name without extension (default <date>-soak, <date>-soak-short below 30m)")
	fs.StringVar(logs, "logs", "bin/soak", "`dir`ectory for the node's, the bus's and the load generators' logs and reports")
	fs.StringVar(natsBin, "nats-server", "nats-server", "nats-server `binary` (Debian: apt-get install nats-server)")
	fs.StringVar(&cfg.Fanwire, "fanwire", "", "fanwire `binary` for the node and the load (default: this executable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: fanwire soak [--duration 30m] [flags]\n\n"+
			"Run a node (--workers 2) on an external nats-server under mixed load: fan-out with the\n"+
			"resume oracle, churn, stalled subscribers; kill -9 a worker and restart the bus on a\n"+
			"schedule; sample RSS, PSS, goroutines, open files and connections every 5 s. At the end\n"+
			"check that they are back near their baselines and that nothing was lost. Writes\n"+
			"<out>/<name>.json, .md and .svg. Exit status 1 if a check failed.\n\nFlags:\n")
		printFlags(fs.Output(), fs)
	}
	return fs
}

func printSoakUsage(w io.Writer) {
	cfg := bench.DefaultSoak(30 * time.Minute)
	var s1, s2, s3, s4 string
	fs := soakFlags(&cfg, &s1, &s2, &s3, &s4)
	fs.SetOutput(w)
	fs.Usage()
}

// soakMain runs `fanwire soak`. Exit codes: 0 pass, 1 a check failed or
// the run could not complete, 2 usage.
func soakMain(args []string, stdout, stderr io.Writer) int {
	cfg := bench.DefaultSoak(30 * time.Minute)
	var out, name, logs, natsBin string
	fs := soakFlags(&cfg, &out, &name, &logs, &natsBin)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || cfg.Duration < time.Minute {
		fmt.Fprintln(stderr, "fanwire soak: want no arguments and --duration of at least 1m")
		return 2
	}
	// Defaults for the chosen duration, then the intervals set explicitly.
	d := bench.DefaultSoak(cfg.Duration)
	if cfg.KillEvery == 0 {
		cfg.KillEvery = d.KillEvery
	}
	if cfg.BusEvery == 0 {
		cfg.BusEvery = d.BusEvery
	}
	cfg.Warmup, cfg.Quiet, cfg.SlowEvery = d.Warmup, d.Quiet, d.SlowEvery
	var err error
	if cfg.NATSServer, err = exec.LookPath(natsBin); err != nil {
		fmt.Fprintln(stderr, "fanwire soak: nats-server not found (apt-get install nats-server):", err)
		return 1
	}
	if cfg.Fanwire == "" {
		if cfg.Fanwire, err = os.Executable(); err != nil {
			fmt.Fprintln(stderr, "fanwire soak:", err)
			return 1
		}
	}
	if name == "" {
		name = time.Now().UTC().Format("2006-01-02") + "-soak"
		if cfg.Duration < 30*time.Minute {
			name += "-short"
		}
	}
	cfg.LogDir = logs
	cfg.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.RunSoak(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "fanwire soak:", err)
		return 1
	}
	paths, err := bench.WriteSoak(r, out, name)
	if err != nil {
		fmt.Fprintln(stderr, "fanwire soak: writing results:", err)
		return 1
	}
	for _, c := range r.Checks {
		fmt.Fprintf(stdout, "%-12s baseline %-8g end %-8g %-28s %s\n", c.Name, c.Baseline, c.End, c.Limit, map[bool]string{true: "ok", false: "FAIL"}[c.OK])
	}
	if o := r.Oracle; o != nil {
		fmt.Fprintf(stdout, "oracle       published %d, expected %d, delivered %d, lost %d (announced %d, resets %d), silent gaps %d, dups %d\n",
			o.Published, o.Expected, o.Delivered, o.Lost, o.Announced, o.Resets, o.Gaps, o.Dups)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, "wrote", p)
	}
	if !r.OK {
		fmt.Fprintln(stdout, "soak: FAIL")
		return 1
	}
	fmt.Fprintln(stdout, "soak: PASS")
	return 0
}
