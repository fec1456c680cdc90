package api

import (
	"net/http"
	"net/http/pprof"
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
		pprof.Cmdline(w, r)
	default:
		pprof.Index(w, r) // the index and named profiles: heap, goroutine, allocs, ...
	}
}
