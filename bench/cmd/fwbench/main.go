// Command fwbench runs the bench scenarios that need no load generator yet
// (density) against fanwire and the peers built from bench/peers, and writes
// results JSON, a markdown table and SVG plots. It is a stand-in until
// `fanwire bench` exists; both call package bench.
//
//	go build -o /tmp/bench-bin/fanwire ./cmd/fanwire
//	(cd bench/peers && go build -o /tmp/bench-bin/ ./...)
//	go run ./bench/cmd/fwbench            # 10k idle connections per server
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/bench"
)

func main() {
	d := bench.DefaultDensity()
	fanwire := flag.String("fanwire", "/tmp/bench-bin/fanwire", "fanwire binary")
	peers := flag.String("peers", "/tmp/bench-bin", "directory with the peer binaries (gorillahub, nbiohub, coderhub)")
	servers := flag.String("servers", "fanwire,gorillahub,nbiohub,coderhub", "servers to run, in table order")
	out := flag.String("out", "bench/results", "results directory")
	flag.IntVar(&d.Conns, "conns", d.Conns, "idle connections per server (≤ 19000)")
	flag.IntVar(&d.Steps, "steps", d.Steps, "measuring points up to -conns")
	flag.DurationVar(&d.Settle, "settle", d.Settle, "pause before each sample")
	render := flag.String("render", "", "only re-render the table and plots of this results JSON file")
	flag.Parse()
	if *render != "" {
		r, err := bench.ReadResult(*render)
		if err != nil {
			fatal(err)
		}
		finish(r, filepath.Dir(*render))
		return
	}
	if d.Conns > 19000 {
		fatal(fmt.Errorf("-conns %d: the open-files limit is 20,000 per process; stay ≤ 19,000", d.Conns))
	}
	// No server pings during the run: the idle clients never read.
	common := []string{"--ping-interval", "10m"}
	var list []bench.Server
	for _, name := range strings.Split(*servers, ",") {
		s := bench.Server{Name: name, Path: filepath.Join(*peers, name), Args: common}
		if name == "fanwire" {
			s.Path, s.Subcommand = *fanwire, "serve"
			s.Args = append([]string{"--log-level", "warn"}, common...)
		}
		list = append(list, s)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	finish(bench.RunDensity(ctx, list, d, logf), *out)
}

// finish writes the result files and prints the table.
func finish(r *bench.Result, dir string) {
	paths, err := bench.WriteAll(r, bench.DensityCharts(r), dir)
	if err != nil {
		fatal(err)
	}
	fmt.Print(bench.Markdown(r))
	for _, p := range paths {
		fmt.Println("wrote", p)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "fwbench:", err)
	os.Exit(1)
}
