package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Result is everything one scenario run produced: the settings it ran with
// and every server's figures, so a results file can be re-rendered or
// compared later without re-running anything.
type Result struct {
	Scenario string         `json:"scenario"`
	Date     time.Time      `json:"date"`
	Host     Host           `json:"host"`
	Settings map[string]any `json:"settings"`
	Baseline string         `json:"baseline"` // the server the ratios are taken against: "fanwire"
	Metrics  []Metric       `json:"metrics"`  // the figures, in table order
	Servers  []ServerResult `json:"servers"`
	Notes    []string       `json:"notes,omitempty"`
	// StepColumns, when set, add a second table: one row per step (the X
	// of the servers' series, e.g. a publish rate) and server.
	StepColumns []StepColumn `json:"step_columns,omitempty"`
	StepLabel   string       `json:"step_label,omitempty"` // header of the step column
}

// Metric describes one figure every server reports.
type Metric struct {
	Key           string `json:"key"`
	Label         string `json:"label"`
	Unit          string `json:"unit"`
	LowerIsBetter bool   `json:"lower_is_better"`
	NoRatio       bool   `json:"no_ratio,omitempty"` // context figure: no fanwire/peer column
}

// ServerResult is one server's figures (by Metric.Key) and plot series.
type ServerResult struct {
	Name    string             `json:"name"`
	Figures map[string]float64 `json:"figures"`
	Series  []Series           `json:"series,omitempty"`
	Error   string             `json:"error,omitempty"` // set when the run failed; figures may be partial
}

// Series is one line of a plot: Y over X for a named quantity.
type Series struct {
	Name   string    `json:"name"` // e.g. "rss_per_conn"
	XLabel string    `json:"x_label"`
	YLabel string    `json:"y_label"`
	X      []float64 `json:"x"`
	Y      []float64 `json:"y"`
}

// Host records where a result was measured.
type Host struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	OpenFiles uint64 `json:"open_files_limit"`
}

// ThisHost describes the machine the harness runs on.
func ThisHost() Host {
	h := Host{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.OpenFiles = openFilesLimit()
	return h
}

// Server returns the named server's result, or nil.
func (r *Result) Server(name string) *ServerResult {
	for i := range r.Servers {
		if r.Servers[i].Name == name {
			return &r.Servers[i]
		}
	}
	return nil
}

// FileName is "<date>-<scenario>", the stem of every file of this result.
func (r *Result) FileName() string {
	return r.Date.UTC().Format("2006-01-02") + "-" + r.Scenario
}

// WriteJSON writes the result to dir/<date>-<scenario>.json and returns the path.
func (r *Result) WriteJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.FileName()+".json")
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult loads a results file.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
