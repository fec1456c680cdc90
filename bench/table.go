package bench

import (
	"fmt"
	"math"
	"strings"
)

// Markdown renders r as a table: one row per server, one column per metric,
// each followed by the ratio baseline/server (so "0.25" under a memory
// metric means fanwire uses a quarter of that server's memory).
func Markdown(r *Result) string {
	var b strings.Builder
	base := r.Server(r.Baseline)
	b.WriteString("| server |")
	for _, m := range r.Metrics {
		fmt.Fprintf(&b, " %s |", header(m))
		if base != nil && !m.NoRatio {
			fmt.Fprintf(&b, " %s/this |", r.Baseline)
		}
	}
	b.WriteString("\n|---|")
	for _, m := range r.Metrics {
		b.WriteString("---:|")
		if base != nil && !m.NoRatio {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "| %s |", s.Name)
		for _, m := range r.Metrics {
			v, ok := s.Figures[m.Key]
			fmt.Fprintf(&b, " %s |", cell(v, ok))
			if base != nil && !m.NoRatio {
				bv, bok := base.Figures[m.Key]
				fmt.Fprintf(&b, " %s |", ratioCell(bv, v, bok && ok))
			}
		}
		b.WriteString("\n")
	}
	for _, s := range r.Servers {
		if s.Error != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", s.Name, s.Error)
		}
	}
	return b.String()
}

func header(m Metric) string {
	if m.Unit == "" {
		return m.Label
	}
	return m.Label + " (" + m.Unit + ")"
}

// Ratio is a/b, or NaN when b is zero or a figure is missing.
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

func ratioCell(a, b float64, ok bool) string {
	r := Ratio(a, b)
	if !ok || math.IsNaN(r) {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

// cell formats a figure with a precision that suits its size.
func cell(v float64, ok bool) string {
	switch {
	case !ok || math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// groupThousands turns "1234567" into "1,234,567".
func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
