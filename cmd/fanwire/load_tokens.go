package main

import (
	"flag"

	"github.com/fanwire/fanwire/loadtest"
)

// loadTokenFlags adds the token flags of `fanwire load` (every mode).
func loadTokenFlags(fs *flag.FlagSet, cfg *loadtest.Config) {
	fs.StringVar(&cfg.Token, "token", "", "the same `JWT` for every connection (?token= in the upgrade URL)")
	fs.StringVar(&cfg.TokenSecretFile, "token-hmac-secret-file", "", "sign one HS256 token per connection with the secret in this `file` (first line); or set $"+loadtest.EnvTokenSecret)
	fs.StringVar(&cfg.TokenSecret, "token-hmac-secret", "", "HMAC `secret` to sign per-connection tokens with; shows in ps: prefer --token-hmac-secret-file or $"+loadtest.EnvTokenSecret)
	fs.StringVar(&cfg.TokenSub, "token-sub", cfg.TokenSub, "sub `pattern` of the signed tokens: %d is the connection's index (user-%d: one user per connection; alice: all one user)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "exp of the signed tokens, from the start of the run; 0 = no exp")
	fs.StringVar(&cfg.TokenSubscribe, "token-subscribe", cfg.TokenSubscribe, "comma-separated fanwire.subscribe topic `patterns` of the signed tokens")
}
