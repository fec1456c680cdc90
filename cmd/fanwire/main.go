// Command fanwire runs a fanwire WebSocket fan-out node.
//
//	fanwire serve [flags]   run a node (see fanwire serve --help)
//	fanwire load MODE ...   drive a node: connect, fanout, churn (see fanwire load --help)
//	fanwire soak [flags]    mixed load with faults, then check nothing leaked or was lost
//	fanwire doctor [flags]  what on this host stops N connections, and the fixes
//	fanwire version         print the version
//	fanwire help [command]  print help
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// command is one subcommand. New ones (load, bench) are added to commands.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int // returns the exit code
	usage   func(w io.Writer)                                 // nil: summary only
}

func commands() []command {
	return []command{
		{"serve", "run a node: WebSocket listener, control HTTP API, optional demo feed", runServe, printServeUsage},
		{"load", "load generator: connect, fanout or churn against a node", func(a []string, _, _ io.Writer) int { return loadMain(a) }, printLoadUsage},
		{"bench", "benchmarks against peer servers: density, fan-out, handshakes, slow consumers", func(a []string, _, _ io.Writer) int { return benchMain(a) }, nil},
		{"soak", "30 minutes of mixed load with worker kills and bus restarts; checks memory, goroutines, files and the oracle", soakMain, printSoakUsage},
		{"doctor", "check this host's limits for a target number of connections, say how to fix them", runDoctor, printDoctorUsage},
		{"version", "print the version and exit", runVersion, nil},
		{"help", "print help for fanwire or for one command", runHelp, nil},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run dispatches to a subcommand. Exit codes: 0 ok, 1 runtime failure,
// 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return 0
	case "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	if c, ok := lookup(args[0]); ok {
		return c.run(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "fanwire: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "fanwire is a WebSocket fan-out node: publishers POST JSON to the control API,\n"+
		"every subscriber of the topic receives it.\n\nUsage:\n  fanwire <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun 'fanwire help <command>' or 'fanwire <command> --help' for a command's flags.\n")
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return 0
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "fanwire help: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	if c.usage == nil {
		fmt.Fprintf(stdout, "Usage: fanwire %s\n\n%s\n", c.name, c.summary)
		return 0
	}
	c.usage(stdout)
	return 0
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, versionString())
	return 0
}

// versionString is "fanwire <version> (<vcs revision>, <go version> <os>/<arch>)".
func versionString() string {
	parts := []string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				parts = append(parts, s.Value[:12])
			}
		}
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return "fanwire " + version + " (" + strings.Join(parts, ", ") + ")"
}
