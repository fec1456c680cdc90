package loadtest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

const loadSecret = "load-test-secret-load-test-secret-0123"

func startAuthNode(t *testing.T, perUser int) *server.Node {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Auth = server.AuthConfig{Mode: server.AuthRequired}
	cfg.Auth.Keys.HMACSecrets = [][]byte{[]byte(loadSecret)}
	cfg.Users.MaxConnsPerUser = perUser
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

func tokenRun(t *testing.T, n *server.Node, edit func(*Config)) *Report {
	t.Helper()
	cfg := DefaultConfig("connect")
	cfg.URL = "ws://" + n.WSAddr() + "/ws?topics=tok"
	cfg.Conns = 300
	cfg.Rate = 10000
	cfg.Hold = 200 * time.Millisecond
	cfg.Duration = 30 * time.Second
	cfg.Workers = 1
	cfg.Loops = 2
	cfg.MeasureMemory = false
	relaxTimeouts(&cfg)
	edit(&cfg)
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Per-connection HS256 tokens against a node that requires them: all
// connect, one user per connection.
func TestLoadSignedTokens(t *testing.T) {
	n := startAuthNode(t, -1)
	r := tokenRun(t, n, func(c *Config) { c.TokenSecret = loadSecret; c.TokenSub = "user-%d" })
	if c := r.Connections; !r.OK || c.Established != 300 || c.Failed != 0 {
		t.Fatalf("ok=%v problems=%v counters=%+v", r.OK, r.Problems, c)
	}
	if r.Settings.Tokens != "hs256" {
		t.Fatalf("settings.tokens = %q", r.Settings.Tokens)
	}
	// Across two worker processes, every connection the same user.
	r = tokenRun(t, n, func(c *Config) { c.TokenSecret = loadSecret; c.TokenSub = "alice"; c.Workers = 2 })
	if c := r.Connections; !r.OK || c.Established != 300 {
		t.Fatalf("two workers: ok=%v problems=%v counters=%+v", r.OK, r.Problems, c)
	}
}

// A wrong secret: every connection fails with 401, none is retried.
func TestLoadWrongSecret(t *testing.T) {
	n := startAuthNode(t, 0)
	r := tokenRun(t, n, func(c *Config) { c.TokenSecret = "another-secret-another-secret-0123456" })
	c := r.Connections
	if r.OK || c.Established != 0 || c.Failed != 300 || c.FailedBy["status_401"] != 300 || c.Retried != 0 {
		t.Fatalf("ok=%v counters=%+v", r.OK, c)
	}
	// No token at all against --auth required: 401 too.
	r = tokenRun(t, n, func(c *Config) {})
	if c := r.Connections; c.FailedBy["status_401"] != 300 {
		t.Fatalf("no token: %+v", c)
	}
	// A fixed token: one user, so the default per-user limit (100) admits
	// exactly 100; the rest get 429 and are not retried.
	tok, err := SignHS256([]byte(loadSecret), "bob", []string{"*"}, time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r = tokenRun(t, n, func(c *Config) { c.Token = tok })
	if c := r.Connections; c.Established != server.DefaultMaxConnsPerUser || c.FailedBy["status_429"] != 300-server.DefaultMaxConnsPerUser || c.Retried != 0 || r.Settings.Tokens != "fixed" {
		t.Fatalf("fixed token: %+v", c)
	}
}
