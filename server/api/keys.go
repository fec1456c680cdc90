package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Keys is a list of secret API keys. It prints as a count, never the keys,
// so a config dumped with %v or logged with slog does not leak them.
type Keys []string

func (k Keys) String() string       { return fmt.Sprintf("[%d keys]", len(k)) }
func (k Keys) GoString() string     { return k.String() }
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// keySet holds keys as SHA-256 digests: every candidate is hashed to the
// same length and compared with every key in constant time, so neither the
// length nor a prefix of a key leaks through timing.
type keySet struct{ digests [][sha256.Size]byte }

func newKeySet(keys Keys) *keySet {
	if len(keys) == 0 {
		return nil
	}
	s := &keySet{}
	for _, k := range keys {
		s.digests = append(s.digests, sha256.Sum256([]byte(k)))
	}
	return s
}

// match reports whether key is one of the set; it looks at every key.
func (s *keySet) match(key string) bool {
	if s == nil {
		return false
	}
	d := sha256.Sum256([]byte(key))
	ok := 0
	for i := range s.digests {
		ok |= subtle.ConstantTimeCompare(d[:], s.digests[i][:])
	}
	return ok == 1
}

// requestKey is the key a request presents: "Authorization: Bearer KEY" or
// "X-API-Key: KEY".
func requestKey(r *http.Request) (string, bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, key, ok := strings.Cut(a, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key), true
		}
		return "", true // present but not a bearer key: treated as wrong
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	return "", false
}

// isPublishPath is what the API keys protect.
func isPublishPath(path string) bool {
	return path == "/publish" || strings.HasPrefix(path, "/publish/")
}

// isAdminPath is what the admin keys protect: node internals and
// operations, the user actions included. /healthz (load balancers) and / (the demo page) stay open. A
// separate metrics listener, if there is one, does not go through here.
func isAdminPath(path string) bool {
	switch {
	case path == "/stats", path == "/metrics", path == "/topics": // not /admin: the page is static, its data is /admin/data
		return true
	case strings.HasPrefix(path, "/debug/"), strings.HasPrefix(path, "/admin/"), strings.HasPrefix(path, "/topics/"):
		return true
	case isUserPath(path): // users.go: disconnect, unsubscribe, count a user
		return true
	}
	return false
}

// authorize answers 401 and returns false unless r carries a key for its
// path. A path whose key list is empty is open (the node warns at start if
// it listens beyond loopback). Admin keys also authorize publishing.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	var need []*keySet
	switch {
	case isPublishPath(r.URL.Path), strings.HasPrefix(r.URL.Path, "/presence/"): // backends' paths
		if h.apiKeys == nil {
			return true
		}
		need = []*keySet{h.apiKeys, h.adminKeys}
	case isAdminPath(r.URL.Path):
		if h.adminKeys == nil {
			return true
		}
		need = []*keySet{h.adminKeys}
	default:
		return true
	}
	key, present := requestKey(r)
	if present && key != "" {
		for _, s := range need {
			if s.match(key) {
				return true
			}
		}
	}
	msg := "missing API key: send \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\""
	if present {
		msg = "invalid API key"
	}
	if isAdminPath(r.URL.Path) {
		msg += " (this endpoint needs an admin key)"
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="fanwire"`)
	writeError(w, http.StatusUnauthorized, CodeUnauthorized, msg)
	return false
}

// ExposureWarnings says what is open to anyone who can reach addr, a bound
// control listener address, when it is not a loopback address. Callers log
// each line as a warning at start.
func ExposureWarnings(addr string, opts Options) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	var out []string
	if len(opts.APIKeys) == 0 {
		out = append(out, "control API on "+addr+" is reachable beyond loopback and has no --api-key: ANYONE who can reach it can publish")
	}
	if len(opts.AdminKeys) == 0 {
		out = append(out, "control API on "+addr+" is reachable beyond loopback and has no --admin-key: ANYONE who can reach it can read /stats and /debug/pprof")
	}
	return out
}
