package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteAll writes a result's JSON, its markdown table and its SVG charts to
// dir (<date>-<scenario>.json, .md, -<chart>.svg) and returns the paths.
func WriteAll(r *Result, charts map[string]Chart, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	jsonPath, err := r.WriteJSON(dir)
	if err != nil {
		return nil, err
	}
	paths := []string{jsonPath}
	names := make([]string, 0, len(charts))
	for name := range charts {
		names = append(names, name)
	}
	sort.Strings(names)
	var md strings.Builder
	fmt.Fprintf(&md, "## %s (%s)\n\n", r.Scenario, r.Date.UTC().Format("2006-01-02"))
	md.WriteString(Markdown(r))
	md.WriteString("\n")
	if st := StepMarkdown(r); st != "" {
		md.WriteString("Per step:\n\n" + st + "\n")
	}
	for _, n := range r.Notes {
		md.WriteString("- " + n + "\n")
	}
	fmt.Fprintf(&md, "\nSettings: %v. Host: %d CPUs, Linux %s, %s.\n", r.Settings, r.Host.CPUs, r.Host.Kernel, r.Host.GoVersion)
	for _, name := range names {
		file := r.FileName() + "-" + name + ".svg"
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, charts[name].SVG(), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
		fmt.Fprintf(&md, "\n![%s](%s)\n", charts[name].Title, file)
	}
	mdPath := filepath.Join(dir, r.FileName()+".md")
	if err := os.WriteFile(mdPath, []byte(md.String()), 0o644); err != nil {
		return paths, err
	}
	return append(paths, mdPath), nil
}
