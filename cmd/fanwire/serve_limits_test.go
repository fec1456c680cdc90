package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/api"
)

// limitFlagNames are the flags of serve_limits.go, for the usage test.
var limitFlagNames = []string{"api-key", "api-key-file", "admin-key", "admin-key-file", "message-timeout",
	"max-conns-per-ip", "max-conn-rate", "max-conn-burst", "max-client-rate", "max-client-burst", "allowed-origins"}

func TestLimitFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte("# publishers\nfile-key-1\n\n  file-key-2  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAPIKeys, "env-key")
	t.Setenv(envAdminKeys, "env-admin-1, env-admin-2")
	opts, err := parseServeFlags([]string{"--api-key", "a1,a2", "--api-key=a3", "--api-key-file", file,
		"--admin-key", "adm", "--message-timeout", "3s", "--max-conns-per-ip", "7", "--max-conn-rate", "2.5",
		"--max-conn-burst", "9", "--max-client-rate", "50", "--max-client-burst", "60", "--allowed-origins", "https://*.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	l := opts.cfg.Limits
	if want := (api.Keys{"a1", "a2", "a3", "file-key-1", "file-key-2", "env-key"}); !reflect.DeepEqual(l.APIKeys, want) {
		t.Errorf("api keys %q, want %q", []string(l.APIKeys), []string(want))
	}
	if want := (api.Keys{"adm", "env-admin-1", "env-admin-2"}); !reflect.DeepEqual(l.AdminKeys, want) {
		t.Errorf("admin keys %q, want %q", []string(l.AdminKeys), []string(want))
	}
	if l.MessageTimeout != 3*time.Second || l.MaxConnsPerIP != 7 || l.ConnRate != 2.5 || l.ConnBurst != 9 ||
		l.ClientRate != 50 || l.ClientBurst != 60 || l.AllowedOrigins != "https://*.example.com" || !opts.limits.keysOnCmdline {
		t.Errorf("limits %+v, cmdline %v", l, opts.limits.keysOnCmdline)
	}
	// Keys never print, not even in a %+v of the config.
	for _, s := range []string{l.APIKeys.String(), strings.ReplaceAll(stringOf(opts.cfg), " ", "")} {
		for _, k := range []string{"a1", "file-key-1", "env-key", "adm"} {
			if strings.Contains(s, k) {
				t.Errorf("%q shows key %s", s, k)
			}
		}
	}
	for _, bad := range [][]string{{"--api-key", ""}, {"--api-key-file", filepath.Join(dir, "none")},
		{"--max-conns-per-ip", "-1"}, {"--max-client-burst", "70000"}, {"--max-conn-rate", "-1"}} {
		if _, err := parseServeFlags(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := parseServeFlags([]string{"--admin-key-file", empty}); err == nil {
		t.Error("a key file without keys is accepted")
	}
}

func TestWorkersGetNoSecrets(t *testing.T) {
	args := []string{"--api-key", "s1", "--loops", "2", "-api-key=s2", "--admin-key-file", "/k", "--echo",
		"--last-value", "--api-key", "--admin-key", "s3", "--max-conn-rate", "100"}
	got := withoutSecrets(args)
	want := []string{"--loops", "2", "--echo", "--last-value", "--api-key", "--max-conn-rate", "100"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("withoutSecrets = %q, want %q", got, want)
	}
	opts, err := parseServeFlags([]string{"--workers", "4", "--max-conn-rate", "1000", "--max-conn-burst", "10"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := workerLimitArgs(opts), []string{"--max-conn-rate=250", "--max-conn-burst=3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("worker args %q, want %q", got, want)
	}
}

func stringOf(v any) string { return fmt.Sprintf("%+v %#v", v, v) }
