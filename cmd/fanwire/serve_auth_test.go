package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fanwire/fanwire/server"
)

// authFlagNames are the serve flags of serve_auth.go (documented in README).
var authFlagNames = []string{"auth", "token-hmac-secret", "token-hmac-secret-file", "token-public-key", "token-jwks", "token-audience", "token-issuer", "config", "check-config"}

func TestAuthFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("0123456789abcdef0123456789abcdef\n\nfedcba9876543210fedcba9876543210\n"), 0o600)
	t.Setenv(envHMACSecret, "from-the-environment-32-bytes-long!")

	opts, err := parseServeFlags([]string{"--token-hmac-secret-file", secretFile, "--token-audience", "fw", "--token-jwks", "https://idp.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	k := opts.cfg.Auth.Keys
	want := [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210"), []byte("from-the-environment-32-bytes-long!")}
	if !reflect.DeepEqual(k.HMACSecrets, want) || k.Audience != "fw" || k.JWKSURL != "https://idp.example/jwks" || k.JWKSFile != "" {
		t.Fatalf("keys = %+v", k)
	}
	if opts.cfg.Auth.Mode != server.AuthRequired {
		t.Fatalf("auto with keys: mode %q, want required", opts.cfg.Auth.Mode)
	}

	t.Setenv(envHMACSecret, "")
	if opts, err = parseServeFlags(nil); err != nil || opts.cfg.Auth.Mode != server.AuthOff {
		t.Fatalf("auto without keys: mode %q err %v, want off", opts.cfg.Auth.Mode, err)
	}
	for _, bad := range [][]string{{"--auth", "required"}, {"--auth", "maybe"}, {"--token-hmac-secret-file", filepath.Join(dir, "missing")}} {
		if _, err := parseServeFlags(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestWorkerArgsHideSecrets: a secret given on the command line reaches the
// workers through the environment, never on their command line.
func TestWorkerArgsHideSecrets(t *testing.T) {
	t.Setenv(envHMACSecret, "")
	args := []string{"--workers", "2", "--token-hmac-secret", "s3cret-one-s3cret-one-s3cret-one!", "--token-hmac-secret=s3cret-two-s3cret-two-s3cret-two!", "--auth", "required"}
	opts, err := parseServeFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	got := workerArgs(&opts)
	if !slices.Equal(got, []string{"--workers", "2", "--auth", "required"}) {
		t.Fatalf("worker args %q", got)
	}
	if env := os.Getenv(envHMACSecret); env != "s3cret-one-s3cret-one-s3cret-one!\ns3cret-two-s3cret-two-s3cret-two!" {
		t.Fatalf("env %q", env)
	}
	worker, err := parseServeFlags(got)
	if err != nil || len(worker.cfg.Auth.Keys.HMACSecrets) != 2 {
		t.Fatalf("worker keys %v err %v", worker.cfg.Auth.Keys.HMACSecrets, err)
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runServe([]string{"--config", "../../server/namespace/testdata/example.toml", "--check-config"}, &out, &errOut); code != 0 {
		t.Fatalf("example: exit %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "namespace chat") || !strings.Contains(out.String(), "configuration OK") {
		t.Fatalf("output: %s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[namespace]]\nname = \"x\"\ntopics = [\"x.*\"]\nhistory = \"lots\"\n"), 0o600)
	out.Reset()
	errOut.Reset()
	if code := runServe([]string{"--config", bad, "--check-config"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), bad) {
		t.Fatalf("bad file: exit %d: %s", code, errOut.String())
	}
	// The key files are checked too.
	errOut.Reset()
	if code := runServe([]string{"--auth", "required", "--token-public-key", bad, "--check-config"}, &out, &errOut); code == 0 {
		t.Fatalf("bad key file accepted: %s", errOut.String())
	}
}

// TestReadmeConfigExample: the namespaces example in README.md is the
// tested file, and --check-config accepts it.
func TestReadmeConfigExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../server/namespace/testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```toml\n"+string(example)+"```")) {
		t.Fatal("README.md must quote server/namespace/testdata/example.toml verbatim in a ```toml block")
	}
}
