package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteSoak writes <dir>/<name>.json, .md and .svg (RSS and connections
// over time, faults marked) and returns the paths.
func WriteSoak(r *SoakResult, dir, name string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, name)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := []string{base + ".json", base + ".md", base + ".svg"}
	for i, data := range [][]byte{append(b, '\n'), []byte(SoakMarkdown(r, name+".svg")), SoakSVG(r)} {
		if err := os.WriteFile(paths[i], data, 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// SoakSVG is two charts over the same minutes: the node's summed RSS (and
// the bus's), then open connections; worker kills and bus restarts are
// dashed lines.
func SoakSVG(r *SoakResult) []byte {
	var marks []Mark
	for _, e := range r.Events {
		m := Mark{X: e.T / 60, Label: e.Kind, Color: "#888"}
		if e.Kind == "bus-restart" {
			m.Color = "#9467bd"
		}
		marks = append(marks, m)
	}
	rss := Line{Name: "node RSS"}
	pss := Line{Name: "node PSS"}
	bus := Line{Name: "nats-server RSS"}
	conns := Line{Name: "connections"}
	for _, s := range r.Samples {
		if s.Phase == "baseline" {
			continue
		}
		x := s.T / 60
		rss.X, rss.Y = append(rss.X, x), append(rss.Y, float64(s.RSS)/(1<<20))
		pss.X, pss.Y = append(pss.X, x), append(pss.Y, float64(s.PSS)/(1<<20))
		bus.X, bus.Y = append(bus.X, x), append(bus.Y, float64(s.BusRSS)/(1<<20))
		c := float64(s.Conns)
		if s.Conns < 0 {
			c = math.NaN() // a worker did not answer (bus down)
		}
		conns.X, conns.Y = append(conns.X, x), append(conns.Y, c)
	}
	return StackSVG(
		Chart{Title: "Soak: memory (supervisor + workers)", XLabel: "minutes since the load started", YLabel: "MiB", Lines: []Line{rss, pss, bus}, Marks: marks},
		Chart{Title: "Soak: open connections (all workers)", XLabel: "minutes since the load started", YLabel: "connections", Lines: []Line{conns}, Marks: marks},
	)
}

// SoakMarkdown is the human-readable results file.
func SoakMarkdown(r *SoakResult, svg string) string {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# Soak, %s: %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"), verdict)
	repro := fmt.Sprintf("make soak SOAK_DURATION=%v", r.Settings["duration"])
	if r.Settings["kill_in_outage"] == true {
		repro = fmt.Sprintf("fanwire soak --duration %v --kill-in-outage", r.Settings["duration"])
	}
	fmt.Fprintf(&b, "Host: %s/%s, %d CPUs, kernel %s, %s. Reproduce: `%s`.\n\n",
		r.Host.GOOS, r.Host.GOARCH, r.Host.CPUs, r.Host.Kernel, r.Host.GoVersion, repro)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	fmt.Fprintf(&b, "\n![RSS and connections over time](%s)\n\n## Checks\n\n| check | baseline | end | limit | ok |\n|---|---:|---:|---|---|\n", svg)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "| %s | %g | %g | %s | %s |\n", c.Name, c.Baseline, c.End, c.Limit, yesNo(c.OK))
	}
	fmt.Fprintf(&b, "\nSettled after %.0f s. Peak RSS under load %.1f MiB at %.1f min; idle before the load %.1f MiB. Supervisor RSS trend under load after the warm-up: %+.1f MiB/h (informative, not a check).\n",
		r.SettleS, mib(r.Peak.RSS), r.Peak.T/60, mib(r.Baseline.RSS), r.SupervisorTrend)
	b.WriteString("\n## Oracle (fan-out with resume)\n\n")
	if d := r.Oracle; d != nil {
		fmt.Fprintf(&b, "| published | publish errors | expected | delivered | lost | announced by reset | resets | silent gaps | dup/out of order |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d |\n\n", d.Published, d.PublishErrors, d.Expected, d.Delivered, d.Lost, d.Announced, d.Resets, d.Gaps, d.Dups)
		if len(d.PublishErrBy) > 0 {
			fmt.Fprintf(&b, "Publish errors by kind: %s (expected while the bus is down: 503).\n\n", fmtCounts(d.PublishErrBy))
		}
		c := r.OracleConns
		fmt.Fprintf(&b, "Oracle connections: established %d, failed %d, closed by the server %d (%s), resumed %d.\n\n", c.Established, c.Failed, c.ClosedByServer, fmtCounts(c.ClosedBy), c.Reconnects)
	}
	c := r.Churn
	fmt.Fprintf(&b, "Churn: established %d, failed %d, closed by the server %d (%s).\n\n", c.Established, c.Failed, c.ClosedByServer, fmtCounts(c.ClosedBy))
	fmt.Fprintf(&b, "Slow consumers: %d opened, %d slow-topic publishes (%d errors), closed by the node for being slow (summed over every worker process): %d.\n\n",
		r.Slow.Opened, r.Slow.Published, r.Slow.Errors, r.Slow.Closed)
	fmt.Fprintf(&b, "Worker restarts counted by the supervisor: %d.\n\n", r.Restarts)
	b.WriteString("## Problems\n\n")
	if len(r.Problems) == 0 {
		b.WriteString("None.\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	b.WriteString("\n## Per process (baseline → end)\n\n| process | RSS MiB | open files | goroutines |\n|---|---|---|---|\n")
	for _, e := range r.End.Procs {
		var bp *SoakProcSample
		for i := range r.Baseline.Procs {
			if r.Baseline.Procs[i].Name == e.Name {
				bp = &r.Baseline.Procs[i]
			}
		}
		if bp == nil {
			bp = &SoakProcSample{}
		}
		fmt.Fprintf(&b, "| %s | %.1f → %.1f | %d → %d | %d → %d |\n", e.Name, mib(bp.RSS), mib(e.RSS), bp.FDs, e.FDs, bp.Goroutines, e.Goroutines)
	}
	b.WriteString("\n## Faults\n\n| t | fault |\n|---|---|\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "| %.0f s | %s |\n", e.T, e.Detail)
	}
	return b.String()
}

func mib(v int64) float64 { return float64(v) / (1 << 20) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
