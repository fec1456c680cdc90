package main

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
)

// Environment variables with comma-separated keys: the way to pass keys
// that never shows in `ps` (like the key files).
const (
	envAPIKeys   = "FANWIRE_API_KEYS"
	envAdminKeys = "FANWIRE_ADMIN_KEYS"
)

// limitOptions is what the limit flags leave for serve beyond the config.
type limitOptions struct {
	keysOnCmdline bool // --api-key or --admin-key given as an argument: visible in ps
}

// secretFlags hold keys or name where they are; workers never get them.
var secretFlags = []string{"api-key", "api-key-file", "admin-key", "admin-key-file", "token-hmac-secret"}

// limitFlags defines the control API key and abuse limit flags.
func limitFlags(fs *flag.FlagSet, opts *serveOptions) {
	d := server.DefaultConfig().Limits
	l := &opts.cfg.Limits
	fs.Var(&keysFlag{keys: &l.APIKeys, cmdline: &opts.limits.keysOnCmdline}, "api-key",
		"`key` that POST /publish* requires (Authorization: Bearer KEY or X-API-Key); repeatable or comma-separated. Visible in ps: prefer --api-key-file or "+envAPIKeys+"; none = publishing is open")
	fs.Var(&keyFileFlag{keys: &l.APIKeys}, "api-key-file", "read publish keys from `file`, one per line (# comments); repeatable")
	fs.Var(&keysFlag{keys: &l.AdminKeys, cmdline: &opts.limits.keysOnCmdline}, "admin-key",
		"`key` that /stats, /debug/*, /admin, /topics and /metrics require; also publishes. Prefer --admin-key-file or "+envAdminKeys+"; none = open")
	fs.Var(&keyFileFlag{keys: &l.AdminKeys}, "admin-key-file", "read admin keys from `file`, one per line; repeatable")
	fs.DurationVar(&l.MessageTimeout, "message-timeout", d.MessageTimeout, "close (1008) a connection whose frame or fragmented message stays incomplete this long")
	fs.IntVar(&l.MaxConnsPerIP, "max-conns-per-ip", d.MaxConnsPerIP, "open connections per client IP (IPv6: per /64) per process, 0 = unlimited (HTTP 429 above it)")
	fs.Float64Var(&l.ConnRate, "max-conn-rate", d.ConnRate, "new connections per second for the node (split over loops and workers), 0 = unlimited (HTTP 503 with Retry-After above it)")
	fs.IntVar(&l.ConnBurst, "max-conn-burst", d.ConnBurst, "new connections accepted at once before --max-conn-rate applies, 0 = one second's worth")
	fs.Float64Var(&l.ClientRate, "max-client-rate", d.ClientRate, "client messages (and pings) per second per connection, 0 = unlimited (a rate_limited error, then close 1008)")
	fs.IntVar(&l.ClientBurst, "max-client-burst", d.ClientBurst, "client messages accepted at once before --max-client-rate applies, 0 = one second's worth (max 65535)")
	fs.StringVar(&l.AllowedOrigins, "allowed-origins", d.AllowedOrigins, "comma-separated browser `origins` allowed to connect (https://app.example.com, https://*.example.com); \"\" = any; requests without Origin are always allowed (HTTP 403 otherwise)")
}

// finishLimitFlags adds the keys from the environment and checks values.
func finishLimitFlags(opts *serveOptions) error {
	l := &opts.cfg.Limits
	l.APIKeys = append(l.APIKeys, splitKeys(os.Getenv(envAPIKeys))...)
	l.AdminKeys = append(l.AdminKeys, splitKeys(os.Getenv(envAdminKeys))...)
	switch {
	case l.MaxConnsPerIP < 0:
		return fmt.Errorf("--max-conns-per-ip %d: want 0 (unlimited) or more", l.MaxConnsPerIP)
	case l.ConnRate < 0 || l.ClientRate < 0 || math.IsNaN(l.ConnRate) || math.IsNaN(l.ClientRate):
		return fmt.Errorf("--max-conn-rate and --max-client-rate: want 0 (unlimited) or more")
	case l.ConnBurst < 0 || l.ClientBurst < 0 || l.ClientBurst > math.MaxUint16:
		return fmt.Errorf("--max-conn-burst / --max-client-burst: want 0 or more (client burst at most %d)", math.MaxUint16)
	}
	return nil
}

// logLimitWarnings says what is insecure about the key setup; never the keys.
func logLimitWarnings(log *slog.Logger, opts serveOptions) {
	if opts.limits.keysOnCmdline {
		log.Warn("API keys given with --api-key/--admin-key are visible to every local user in ps; use --api-key-file, --admin-key-file or " + envAPIKeys + "/" + envAdminKeys)
	}
}

// workerLimitArgs are the limit flags a worker gets after the user's: the
// node-wide connection rate is split over the workers.
func workerLimitArgs(opts serveOptions) []string {
	l, n := opts.cfg.Limits, float64(opts.workers)
	if l.ConnRate <= 0 || opts.workers <= 1 {
		return nil
	}
	burst := l.ConnBurst
	if burst == 0 {
		burst = int(math.Ceil(l.ConnRate))
	}
	return []string{
		"--max-conn-rate=" + strconv.FormatFloat(l.ConnRate/n, 'f', -1, 64),
		"--max-conn-burst=" + strconv.Itoa(max(1, int(math.Ceil(float64(burst)/n)))),
	}
}

// withoutSecrets drops the key flags (and their values) from serve
// arguments, so worker processes, which serve no HTTP, never have them on
// their command line. Flags are recognised like package flag does: -x,
// --x, -x=v, --x=v, and a non-boolean flag's value in the next argument.
func withoutSecrets(args []string) []string {
	fs, _, _ := newServeFlags(&serveOptions{})
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			out = append(out, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		takesNext := f != nil && !hasValue && !isBoolFlag(f)
		secret := f != nil && contains(secretFlags, name)
		if !secret {
			out = append(out, a)
			if takesNext && i+1 < len(args) {
				out = append(out, args[i+1])
			}
		}
		if takesNext {
			i++
		}
	}
	return out
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keysFlag collects keys from repeated or comma-separated values. It prints
// as a count, so --help and errors never show a key.
type keysFlag struct {
	keys    *api.Keys
	cmdline *bool
}

func (f *keysFlag) String() string {
	if f.keys == nil || len(*f.keys) == 0 {
		return "none"
	}
	return f.keys.String()
}

func (f *keysFlag) Set(s string) error {
	keys := splitKeys(s)
	if len(keys) == 0 {
		return fmt.Errorf("empty key")
	}
	*f.keys = append(*f.keys, keys...)
	*f.cmdline = true
	return nil
}

// keyFileFlag reads keys from a file when the flag is parsed.
type keyFileFlag struct{ keys *api.Keys }

func (f *keyFileFlag) String() string { return "none" }

func (f *keyFileFlag) Set(path string) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	n := 0
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		*f.keys = append(*f.keys, line)
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%s holds no key", path)
	}
	return nil
}

func splitKeys(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}
