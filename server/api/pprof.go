package api

import (
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
)

// servePprof serves the standard Go profiles under /debug/pprof/ (e.g.
// `go tool pprof http://127.0.0.1:8081/debug/pprof/profile?seconds=10`).
func servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		serveCmdline(w) // pprof.Cmdline would show --api-key values
	default:
		pprof.Index(w, r) // the index and named profiles: heap, goroutine, allocs, ...
	}
}

// serveCmdline is pprof's cmdline endpoint with key values redacted.
func serveCmdline(w http.ResponseWriter) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strings.Join(redactKeys(os.Args), "\x00")) //nolint:errcheck // the client is gone
}

// redactKeys replaces the values of --api-key and --admin-key (-x v, -x=v).
func redactKeys(args []string) []string {
	out := append([]string(nil), args...)
	isKey := func(name string) bool { return name == "api-key" || name == "admin-key" }
	for i := 0; i < len(out); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		if !strings.HasPrefix(out[i], "-") || !isKey(name) {
			continue
		}
		if hasValue {
			out[i] = out[i][:strings.Index(out[i], "=")+1] + "REDACTED"
		} else if i+1 < len(out) {
			out[i+1] = "REDACTED"
			i++
		}
	}
	return out
}
