package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/demo"
	"github.com/fanwire/fanwire/server/namespace"
)

// envHMACSecret holds HMAC secrets (one per line) out of the command line,
// so they do not show in ps. Workers get command-line secrets this way too.
const envHMACSecret = "FANWIRE_TOKEN_HMAC_SECRET"

// authFlags are the serve flags of identity and permissions.
type authFlags struct {
	mode        string
	secrets     listFlag // --token-hmac-secret (visible in ps: prefer the file or the env var)
	secretFiles listFlag
	publicKeys  listFlag
	jwks        string
	config      string // --config: namespaces file
	checkConfig bool
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
func (l *listFlag) Get() any           { return l.String() }

// defineAuthFlags adds the auth flags to fs (called from newServeFlags).
func defineAuthFlags(fs *flag.FlagSet, opts *serveOptions) {
	a, k := &opts.auth, &opts.cfg.Auth.Keys
	fs.StringVar(&a.mode, "auth", "auto", "token `policy`: off (tokens optional, nothing checked), required (every connection needs a valid token), namespace (per --config namespace); auto = required if a token key is configured, else off")
	fs.Var(&a.secrets, "token-hmac-secret", "HMAC `secret` (HS256/384/512, at least 32 bytes), repeatable for rotation; shows in ps: prefer --token-hmac-secret-file or $"+envHMACSecret)
	fs.Var(&a.secretFiles, "token-hmac-secret-file", "`file` of HMAC secrets, one per line, repeatable")
	fs.Var(&a.publicKeys, "token-public-key", "PEM `file` of RSA, ECDSA or Ed25519 public keys (RS*/PS*, ES*, EdDSA tokens), repeatable")
	fs.StringVar(&a.jwks, "token-jwks", "", "JWKS `url` (http/https: cached, re-fetched on an unknown kid at most every 10s) or file")
	fs.StringVar(&k.Audience, "token-audience", "", "if set, a token's aud must contain this `value`")
	fs.StringVar(&k.Issuer, "token-issuer", "", "if set, a token's iss must be this `value`")
	fs.StringVar(&a.config, "config", "", "namespaces `file` (TOML, see README): per topic pattern who may subscribe, last value, history, max message; its [default] overrides --last-value, --history, --history-ttl")
	fs.BoolVar(&a.checkConfig, "check-config", false, "validate the flags, --config and the token keys, print the namespaces, and exit (0: valid)")
}

// finishAuthFlags reads the secrets and resolves the policy (called from parseServeFlags).
func finishAuthFlags(opts *serveOptions) error {
	a, k := &opts.auth, &opts.cfg.Auth.Keys
	for _, s := range a.secrets {
		k.HMACSecrets = append(k.HMACSecrets, []byte(s))
	}
	for _, f := range a.secretFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--token-hmac-secret-file: %w", err)
		}
		k.HMACSecrets = append(k.HMACSecrets, secretLines(string(data))...)
	}
	k.HMACSecrets = append(k.HMACSecrets, secretLines(os.Getenv(envHMACSecret))...)
	k.PEMFiles = a.publicKeys
	if strings.HasPrefix(a.jwks, "http://") || strings.HasPrefix(a.jwks, "https://") {
		k.JWKSURL = a.jwks
	} else {
		k.JWKSFile = a.jwks
	}
	if a.config != "" {
		set, err := namespace.Load(a.config, namespace.Defaults{LastValue: opts.cfg.LastValue, History: opts.cfg.History, HistoryTTL: opts.cfg.HistoryTTL})
		if err != nil {
			return err
		}
		opts.cfg.Auth.Namespaces = set
	}
	switch a.mode {
	case "auto":
		opts.cfg.Auth.Mode = server.AuthOff
		if k.HasKeys() {
			opts.cfg.Auth.Mode = server.AuthRequired
		}
	default:
		m, err := server.ParseAuthMode(a.mode)
		if err != nil {
			return fmt.Errorf("--auth: %w", err)
		}
		opts.cfg.Auth.Mode = m
	}
	if opts.cfg.Auth.Mode != server.AuthOff && !k.HasKeys() {
		return fmt.Errorf("--auth %s needs a token key: --token-hmac-secret-file, $%s, --token-public-key or --token-jwks", opts.cfg.Auth.Mode, envHMACSecret)
	}
	return nil
}

// secretLines splits a secrets file or variable: one secret per line, blank lines ignored.
func secretLines(s string) [][]byte {
	var out [][]byte
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimRight(line, "\r \t"); line != "" {
			out = append(out, []byte(line))
		}
	}
	return out
}

// workerArgs are the serve args for workers: HMAC secrets given on the
// command line move to the environment, so workers do not show them in ps.
func workerArgs(opts *serveOptions) []string {
	if len(opts.auth.secrets) > 0 {
		all := append([]string(nil), opts.auth.secrets...)
		if env := os.Getenv(envHMACSecret); env != "" {
			all = append(all, env)
		}
		os.Setenv(envHMACSecret, strings.Join(all, "\n")) // inherited by the workers
	}
	return withoutSecrets(opts.args)
}

// warnIfExposed says loudly when the WebSocket listener is reachable beyond
// this machine and anyone may subscribe to anything.
func warnIfExposed(cfg *server.Config, log *slog.Logger) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if cfg.Auth.Mode == server.AuthOff && cfg.Auth.Namespaces != nil && len(cfg.Auth.Namespaces.List) > 0 {
		log.Warn("--auth off: the subscribe rules of --config namespaces are not enforced (use --auth namespace or required)")
	}
	if loopback || cfg.Auth.Mode != server.AuthOff {
		return
	}
	for _, line := range []string{
		"*** NO AUTHENTICATION: fanwire listens on " + cfg.Listen + ", beyond loopback, with --auth off ***",
		"*** anyone who can reach it may subscribe to every topic ***",
		"*** configure a token key (--token-hmac-secret-file, --token-public-key or --token-jwks) with --auth required or namespace, ***",
		"*** or bind --listen to 127.0.0.1 behind a proxy that authenticates ***",
	} {
		log.Warn(line)
	}
}

// checkConfig is --check-config: everything NewNode checks (flags,
// namespaces, token keys; a JWKS URL is fetched), without listening.
func checkConfig(opts serveOptions, stdout, stderr io.Writer) int {
	cfg := opts.cfg
	cfg.Logger = slog.New(slog.DiscardHandler)
	if _, err := server.NewNode(cfg); err != nil {
		fmt.Fprintf(stderr, "fanwire serve: invalid configuration: %v\n", err)
		return 1
	}
	src := "flags"
	if opts.auth.config != "" {
		src = opts.auth.config
	}
	fmt.Fprintf(stdout, "configuration OK (%s): auth %s, token keys: %v\n", src, cfg.Auth.Mode, cfg.Auth.Keys.HasKeys())
	if set := cfg.Auth.Namespaces; set != nil {
		for _, ns := range append(append([]*namespace.Namespace(nil), set.List...), set.Default) {
			fmt.Fprintf(stdout, "  namespace %-10s topics %v anonymous_subscribe=%v token_required=%v history=%d history_ttl=%v max_message=%d\n",
				ns.Name, ns.Topics, ns.AnonymousSubscribe, ns.TokenRequired, ns.History, ns.HistoryTTL, ns.MaxMessage)
		}
	}
	return 0
}

// demoTokens (--demo only) serves GET /demo/token on the control listener
// and makes the node accept its tokens: the secret is random per process,
// and --auth is not changed (make run stays --auth off).
func demoTokens(cfg *server.Config, on bool) {
	if !on || cfg.HTTPListen == "" {
		return
	}
	m := demo.NewTokenMinter()
	cfg.Auth.Keys.HMACSecrets = append(cfg.Auth.Keys.HMACSecrets, m.Secret())
	cfg.Auth.DemoToken = m
	// The demo page's chat room (client publish, presence) comes first.
	set := cfg.Auth.Namespaces
	if set == nil {
		var err error
		if set, err = namespace.FromFlags(namespace.Defaults{LastValue: cfg.LastValue, History: cfg.History, HistoryTTL: cfg.HistoryTTL}); err != nil {
			return // normalize reports the bad flag
		}
	}
	set.List = append([]*namespace.Namespace{demo.ChatNamespace()}, set.List...)
	cfg.Auth.Namespaces = set
}
