package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// StepColumn is one column of a per-step table: the value of a series at
// the step's X, optionally followed by the ratio baseline/this at the same X.
type StepColumn struct {
	Series        string `json:"series"`
	Label         string `json:"label"`
	Unit          string `json:"unit,omitempty"`
	Ratio         bool   `json:"ratio,omitempty"`
	LowerIsBetter bool   `json:"lower_is_better,omitempty"`
	Percent       bool   `json:"percent,omitempty"` // stored as a fraction, shown ×100
}

// StepMarkdown renders one row per (step, server) with r.StepColumns, steps
// in increasing X, servers in result order, so servers compare at the same
// step. It is empty when r has no step columns.
func StepMarkdown(r *Result) string {
	if len(r.StepColumns) == 0 {
		return ""
	}
	var xs []float64
	seen := map[float64]bool{}
	for _, s := range r.Servers {
		for _, se := range s.Series {
			for _, x := range se.X {
				if !seen[x] {
					seen[x] = true
					xs = append(xs, x)
				}
			}
		}
	}
	sort.Float64s(xs)
	base := r.Server(r.Baseline)
	var b strings.Builder
	label := r.StepLabel
	if label == "" {
		label = "step"
	}
	fmt.Fprintf(&b, "| %s | server |", label)
	for _, c := range r.StepColumns {
		fmt.Fprintf(&b, " %s |", header(Metric{Label: c.Label, Unit: c.Unit}))
		if c.Ratio && base != nil {
			fmt.Fprintf(&b, " %s/this |", r.Baseline)
		}
	}
	b.WriteString("\n|---:|---|")
	for _, c := range r.StepColumns {
		b.WriteString("---:|")
		if c.Ratio && base != nil {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, x := range xs {
		for _, s := range r.Servers {
			if _, ok := seriesAt(&s, r.StepColumns[0].Series, x); !ok {
				continue // this server stopped before this step
			}
			fmt.Fprintf(&b, "| %s | %s |", stepCell(x), s.Name)
			for _, c := range r.StepColumns {
				v, ok := seriesAt(&s, c.Series, x)
				shown := v
				if c.Percent {
					shown = 100 * v
				}
				fmt.Fprintf(&b, " %s |", cell(shown, ok))
				if c.Ratio && base != nil {
					bv, bok := seriesAt(base, c.Series, x)
					fmt.Fprintf(&b, " %s |", ratioCell(bv, v, ok && bok))
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// seriesAt is the value of s's series name at x.
func seriesAt(s *ServerResult, name string, x float64) (float64, bool) {
	for _, se := range s.Series {
		if se.Name != name {
			continue
		}
		for i := range min(len(se.X), len(se.Y)) {
			if se.X[i] == x && !math.IsNaN(se.Y[i]) {
				return se.Y[i], true
			}
		}
	}
	return 0, false
}

// FanoutCharts: p99 and efficiency against the publish rate.
func FanoutCharts(r *Result) map[string]Chart {
	return map[string]Chart{
		"p99-vs-rate":     SeriesChart(r, SeriesP99, "p99 delivery latency vs publish rate"),
		"per-cpu-vs-rate": SeriesChart(r, SeriesPerCPU, "Deliveries per server CPU-second vs publish rate"),
	}
}

// stepCell prints a whole step value without decimals ("20", "2,000").
func stepCell(x float64) string {
	if x == math.Trunc(x) {
		return groupThousands(fmt.Sprintf("%.0f", x))
	}
	return cell(x, true)
}
