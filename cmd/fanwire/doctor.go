package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fanwire/fanwire/server/doctor"
)

func printDoctorUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: fanwire doctor [flags]

Reads this host's limits (open files, fs.nr_open, fs.file-max, listen and
SYN backlogs, local port range, conntrack, memory, systemd's LimitNOFILE)
and says what would stop a node from holding --conns connections, how to
fix it, and how many --workers it needs with the current limit. It changes
nothing unless --apply is given (which writes the sysctls it can, as root).

Flags:
`)
	fs, _ := newDoctorFlags()
	printFlags(w, fs)
}

type doctorOptions struct {
	target      doctor.Target
	json, apply bool
	root, unit  string
}

func newDoctorFlags() (*flag.FlagSet, *doctorOptions) {
	o := &doctorOptions{}
	fs := flag.NewFlagSet("fanwire doctor", flag.ContinueOnError)
	fs.IntVar(&o.target.Conns, "conns", 1_000_000, "target number of connections")
	fs.BoolVar(&o.target.LoadHere, "load-here", false, "the load generator (fanwire load) runs on this host too: count its sockets and memory")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.apply, "apply", false, "write the sysctls the report asks for (raises only; needs root) and print each")
	fs.StringVar(&o.unit, "unit", "fanwire.service", "systemd `unit` whose LimitNOFILE to read")
	fs.StringVar(&o.root, "root", "/", "read /proc (and write sysctls) under this `dir`ectory (for tests)")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs, o
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs, o := newDoctorFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printDoctorUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "fanwire doctor: %v\nRun 'fanwire doctor --help' for the flags.\n", err)
		return 2
	}
	if fs.NArg() > 0 || o.target.Conns <= 0 {
		fmt.Fprintln(stderr, "fanwire doctor: want --conns N > 0 and no arguments")
		return 2
	}
	host := doctor.Host{Root: o.root, Unit: o.unit}
	r, err := host.Read()
	if err != nil {
		fmt.Fprintf(stderr, "fanwire doctor: %v\n", err)
		return 1
	}
	rep := doctor.Evaluate(r, o.target)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printDoctorReport(stdout, rep)
	}
	if !o.apply {
		return 0
	}
	out := stdout
	if o.json {
		out = stderr // keep stdout valid JSON
	}
	fmt.Fprintln(out, "\napplying:")
	if err := host.Apply(rep, out); err != nil {
		return 1
	}
	return 0
}

func printDoctorReport(w io.Writer, rep doctor.Report) {
	fmt.Fprintf(w, "fanwire doctor: can this host hold %s connections?", group(rep.Target.Conns))
	if rep.Target.LoadHere {
		fmt.Fprint(w, " (load generator on this host too)")
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tNOW\tNEEDED\tSTATUS")
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Now, c.Needed, strings.ToUpper(string(c.Status)))
	}
	tw.Flush()
	fixes := 0
	for _, c := range rep.Checks {
		if c.Fix == "" || c.Status == doctor.OK && c.Sysctl == "" && !strings.HasPrefix(c.Name, "memory") {
			continue
		}
		if fixes == 0 {
			fmt.Fprintln(w, "\nFixes and notes:")
		}
		fixes++
		fmt.Fprintf(w, "  - %s: %s\n", c.Name, c.Fix)
	}
	fmt.Fprintf(w, "\n%s.\n", rep.Summary)
	if conf := doctor.SysctlConf(rep); strings.Count(conf, "\n") > 1 {
		fmt.Fprintf(w, "\n'fanwire doctor --apply' (root) sets these now; to keep them after a reboot:\n\n%s", conf)
	}
}

func group(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
