// Command densityplot draws bench/results/density.json (written by
// bench/scripts/density.sh) as an SVG of memory per connection against the
// number of connections.
//
//	go run ./bench/cmd/densityplot bench/results/density.json > bench/results/density.svg
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/fanwire/fanwire/bench"
)

type point struct {
	Connections int     `json:"connections"`
	UserRSS     float64 `json:"user_rss_bytes_per_conn"`
	KernelSlab  float64 `json:"kernel_slab_bytes_per_conn_both_ends"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: densityplot density.json > density.svg")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var doc struct{ Points []point }
	if err := json.Unmarshal(b, &doc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	user := bench.Line{Name: "fanwire user RSS"}
	kernel := bench.Line{Name: "kernel slab (both ends)"}
	for _, p := range doc.Points {
		x := float64(p.Connections) / 1000
		user.X, user.Y = append(user.X, x), append(user.Y, p.UserRSS)
		kernel.X, kernel.Y = append(kernel.X, x), append(kernel.Y, p.KernelSlab)
	}
	c := bench.Chart{
		Title:  "Memory per idle WebSocket connection",
		XLabel: "connections (thousands)",
		YLabel: "bytes per connection",
		Lines:  []bench.Line{user, kernel},
	}
	os.Stdout.Write(c.SVG())
}
