package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart is a small line chart rendered to standalone SVG. It is hand-made
// on purpose: gonum/plot pulls in a font and image stack and go-echarts
// renders with JavaScript in a browser; a results plot needs neither.
type Chart struct {
	Title, XLabel, YLabel string
	Lines                 []Line
	Marks                 []Mark // optional vertical event markers
}

// Mark is a dashed vertical line at X with a short label (e.g. "kill").
type Mark struct {
	X     float64
	Label string
	Color string // default grey
}

// Line is one named series; X and Y have the same length.
type Line struct {
	Name string
	X, Y []float64
}

// palette: fanwire first, in a colour that stands out.
var palette = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"}

const (
	chartW, chartH           = 720, 420
	padL, padR, padT, padB   = 80, 170, 44, 56
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	tickCount                = 5
	legendX, legendY, legend = chartW - padR + 16, padT + 8, 20
)

// SVG renders the chart. Axes start at zero when every value is
// non-negative, so per-connection figures are not visually exaggerated.
func (c Chart) SVG() []byte {
	xmin, xmax, ymin, ymax := c.bounds()
	xt, yt := niceTicks(xmin, xmax), niceTicks(ymin, ymax)
	xmin, xmax = xt[0], xt[len(xt)-1]
	ymin, ymax = yt[0], yt[len(yt)-1]
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	py := func(y float64) float64 { return padT + plotH - (y-ymin)/(ymax-ymin)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.Title))
	for _, y := range yt {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, py(y), padL+plotW, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-6, py(y), tickLabel(y))
	}
	for _, x := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", px(x), padT+plotH, px(x), padT+plotH+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), padT+plotH+18, tickLabel(x))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", padL, padT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, chartH-12, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(c.YLabel))
	for _, m := range c.Marks {
		if m.X < xmin || m.X > xmax {
			continue
		}
		color := m.Color
		if color == "" {
			color = "#888"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 3"/>`+"\n", px(m.X), padT, px(m.X), padT+plotH, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9" fill="%s" transform="rotate(-90 %.1f %d)" text-anchor="end">%s</text>`+"\n", px(m.X)+3, padT+4, color, px(m.X)+3, padT+4, esc(m.Label))
	}
	for i, l := range c.Lines {
		color := palette[i%len(palette)]
		var pts []string
		for j := range min(len(l.X), len(l.Y)) {
			if math.IsNaN(l.X[j]) || math.IsNaN(l.Y[j]) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.X[j]), py(l.Y[j])))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		for _, p := range pts {
			xy := strings.SplitN(p, ",", 2)
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
		y := legendY + i*legend
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", legendX, y, legendX+22, y, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", legendX+28, y, esc(l.Name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// bounds is the data range, widened to include zero for non-negative data
// and to a non-empty interval.
func (c Chart) bounds() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, l := range c.Lines {
		for j := range min(len(l.X), len(l.Y)) {
			x, y := l.X[j], l.Y[j]
			if math.IsNaN(x) || math.IsNaN(y) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(xmin, 1) { // no data
		return 0, 1, 0, 1
	}
	xmin, ymin = math.Min(xmin, 0), math.Min(ymin, 0)
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	return xmin, xmax, ymin, ymax
}

// niceTicks returns about tickCount round tick values covering [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	raw := (hi - lo) / tickCount
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	var ticks []float64
	for v := start; v < hi+step*0.999; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return ticks
}

// tickLabel prints 12000 as "12k" and 2500000 as "2.5M".
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

func esc(s string) string { return html.EscapeString(s) }

// StackSVG renders charts one above the other in one SVG document, so one
// results file can show quantities of different units over the same time.
func StackSVG(charts ...Chart) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", chartW, chartH*len(charts), chartW, chartH*len(charts))
	for i, c := range charts {
		inner := strings.Replace(string(c.SVG()), "<svg ", fmt.Sprintf(`<svg y="%d" `, i*chartH), 1)
		b.WriteString(inner)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
