package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/bench"
)

// benchOptions are the flags of `fanwire bench`.
type benchOptions struct {
	quick     bool
	scenarios []string
	out       string
	servers   []string
	peersSrc  string // bench/peers module, built into a temp dir
	peersBin  string // prebuilt peer binaries (skips the build)
	uws       bench.UWSBuild
	uwsBin    string // prebuilt uwshub (skips its build)
	fanwire   string // server binary; default: this executable
	suffix    string // appended to results file names
	cpus      string // pin servers to these CPUs, the harness to the others
	slowFor   time.Duration
}

// newBenchFlags declares the flags of `fanwire bench` on a new flag set;
// scen and servers are the raw comma-separated lists.
func newBenchFlags(o *benchOptions) (fs *flag.FlagSet, scen, servers *string) {
	fs = flag.NewFlagSet("fanwire bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "CI-sized runs (seconds per scenario and server); results get a -quick suffix")
	scen = fs.String("scenario", "all", "scenario `name`s, comma-separated: "+strings.Join(bench.Scenarios, ", ")+", or all; or "+strings.Join(bench.ExtraScenarios, ", ")+" (density and fan-out in one table, only when named)")
	fs.StringVar(&o.out, "out", "bench/results", "results `dir`ectory (<date>-<scenario>.json, .md, -<plot>.svg)")
	servers = fs.String("servers", strings.Join(bench.DefaultServers, ","), "servers to compare, in table order (the first is the baseline of the ratios); "+
		"fanwire-flush<duration> is fanwire with --flush-interval <duration> (fan-out and slow-consumer scenarios only); "+
		"fanwire-hs256 and fanwire-es256 are fanwire with --auth required and a token per connection (handshake only); "+
		"fanwire-sse and fanwire-poll are fanwire with clients on SSE and long-polling (density, fan-out and transports only); "+
		"centrifugo is Centrifugo "+bench.CentrifugoVersion+", installed once with go install into ~/.cache/fanwire-bench (bench/README.md)")
	fs.StringVar(&o.peersSrc, "peers-src", "bench/peers", "the peers' Go module, built with go build into a temp dir")
	fs.StringVar(&o.peersBin, "peers-bin", "", "`dir`ectory with prebuilt peer binaries (skips the build)")
	fs.StringVar(&o.uws.UWSSrc, "uws-src", os.Getenv("UWS_SRC"), "uWebSockets sources for uwshub: a checkout or git `dir` (default $UWS_SRC, else the local mirror, else git clone from GitHub)")
	fs.StringVar(&o.uws.USocketsSrc, "usockets-src", os.Getenv("USOCKETS_SRC"), "uSockets sources for uwshub: a checkout or git `dir` (default $USOCKETS_SRC, else <uws-src>/uSockets, the mirror or a clone)")
	fs.StringVar(&o.uwsBin, "uws-bin", "", "prebuilt uwshub `binary` (skips its build; default: built by bench/peers/uwshub/build.sh into $XDG_CACHE_HOME/fanwire/uwshub)")
	fs.StringVar(&o.fanwire, "fanwire", "", "fanwire `binary` to measure (default: this executable)")
	fs.StringVar(&o.suffix, "suffix", "", "appended to the scenario name of the results files (e.g. -uws: <date>-fanout-uws.md), so runs can sit side by side")
	fs.DurationVar(&o.slowFor, "slow-duration", 0, "publishing time of the slow-consumers scenario (0: its default, 20s)")
	fs.StringVar(&o.cpus, "server-cpus", "", "pin every server to these `CPUs` (e.g. 0) and the load generator and publisher to the others, so they stop competing; results get a -pinned suffix")
	return fs, scen, servers
}

// parseBenchArgs reads the flags; flag.ErrHelp for -h.
func parseBenchArgs(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs, scen, servers := newBenchFlags(&o)
	fs.SetOutput(stderr)
	fs.Usage = func() { printBenchUsage(fs.Output()) }
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.scenarios, err = bench.ParseScenarios(*scen); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if err := bench.CheckServerName(s); err != nil {
				return o, err
			}
			o.servers = append(o.servers, s)
		}
	}
	if len(o.servers) == 0 {
		return o, errors.New("--servers is empty")
	}
	if o.suffix != "" && (strings.ContainsAny(o.suffix, "/\\") || strings.Contains(o.suffix, "..")) {
		return o, fmt.Errorf("--suffix %q: no path separators", o.suffix)
	}
	if o.cpus != "" {
		if _, err := bench.ParseCPUs(o.cpus); err != nil {
			return o, fmt.Errorf("--server-cpus: %w", err)
		}
	}
	return o, nil
}

// printBenchUsage writes the help of `fanwire bench`.
func printBenchUsage(w io.Writer) {
	var o benchOptions
	fs, _, _ := newBenchFlags(&o)
	fmt.Fprint(w, "Usage: fanwire bench [--quick] [--scenario name|all] [--out dir]\n\n"+
		"Run fanwire and its peers (bench/peers: gorilla hub, nbio, coder/websocket, and uWebSockets when\n"+
		"its sources are found) one at a time\n"+
		"under the same load generator and write results JSON, markdown tables with fanwire/peer\n"+
		"ratios and SVG plots. Run from the repository root, as root (kernel slab figures).\n\nFlags:\n")
	printFlags(w, fs)
}

// benchMain runs `fanwire bench`. Exit codes: 0 ok, 1 a run failed, 2 usage.
func benchMain(args []string) int {
	o, err := parseBenchArgs(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanwire bench:", err)
		return 2
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanwire bench:", err)
		return 1
	}
	if o.fanwire == "" {
		o.fanwire = self
	}
	peers := o.peersBin
	if peers == "" && needsPeers(o.servers) {
		logf("building peers from %s", o.peersSrc)
		if peers, err = bench.BuildPeers(ctx, o.peersSrc); err != nil {
			fmt.Fprintln(os.Stderr, "fanwire bench:", err)
			return 1
		}
		defer os.RemoveAll(peers)
	}
	if o.uwsBin == "" && o.peersBin != "" {
		if _, err := os.Stat(filepath.Join(o.peersBin, bench.UWSName)); err == nil {
			o.uwsBin = filepath.Join(o.peersBin, bench.UWSName)
		}
	}
	if uws := slices.ContainsFunc(o.servers, bench.IsUWS); uws && o.uwsBin == "" {
		logf("building uwshub (uWebSockets) with %s", filepath.Join(o.peersSrc, "uwshub", "build.sh"))
		o.uws.Script = filepath.Join(o.peersSrc, "uwshub", "build.sh")
		o.uwsBin, err = bench.BuildUWS(ctx, o.uws)
		if errors.Is(err, bench.ErrNoUWSSources) {
			logf("skipping uwshub: %v", err)
			o.servers = bench.WithoutUWS(o.servers)
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "fanwire bench:", err)
			return 1
		}
	}
	opts := bench.Options{Quick: o.quick, Out: o.out, Servers: bench.ServerList(o.servers, o.fanwire, peers), Loader: self, Logf: logf, SlowDuration: o.slowFor, Suffix: o.suffix}
	if err := bench.PrepareCentrifugo(ctx, opts.Servers, logf); err != nil { // go install, once (bench/centrifugo.go)
		fmt.Fprintln(os.Stderr, "fanwire bench:", err)
		return 1
	}
	bench.SetUWSPath(opts.Servers, o.uwsBin)
	if o.cpus != "" {
		set, _ := bench.ParseCPUs(o.cpus) // checked by parseBenchArgs
		if err := bench.PinHarnessAway(set); err != nil {
			fmt.Fprintln(os.Stderr, "fanwire bench: --server-cpus:", err)
			return 1
		}
		opts.Pinned = true
		for i := range opts.Servers {
			opts.Servers[i].CPUs = o.cpus
		}
		logf("servers pinned to CPUs %s, load generator and publisher to the others", o.cpus)
	}
	code := 0
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			return 1
		}
		r, paths, err := bench.RunScenario(ctx, name, opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fanwire bench:", err)
			return 1
		}
		fmt.Printf("\n## %s\n\n%s\n", r.Scenario, bench.Markdown(r))
		if st := bench.StepMarkdown(r); st != "" {
			fmt.Print(st, "\n")
		}
		for _, p := range paths {
			fmt.Println("wrote", p)
		}
		for _, s := range r.Servers {
			if s.Error != "" {
				code = 1
			}
		}
	}
	return code
}

func needsPeers(servers []string) bool {
	for _, s := range servers {
		if !bench.IsFanwire(s) && !bench.IsCentrifugo(s) && !bench.IsUWS(s) {
			return true
		}
	}
	return false
}
