package server

import (
	"fmt"
	"net/http"

	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/namespace"
)

// AuthMode is the token policy of a node (--auth).
type AuthMode string

const (
	AuthOff       AuthMode = "off"       // tokens are optional: a valid one gives the connection an identity, nothing is checked
	AuthRequired  AuthMode = "required"  // every connection needs a valid token; topics as its claims allow
	AuthNamespace AuthMode = "namespace" // anonymous connections allowed; each namespace says who may subscribe
)

// AuthConfig is the identity and permission part of Config.
type AuthConfig struct {
	Mode AuthMode     // "" = AuthOff
	Keys auth.Options // token keys and claim checks; ignored if Verifier is set
	// Verifier, if set, is used instead of one built from Keys (the node
	// does not close it).
	Verifier *auth.Verifier
	// Namespaces (--config) set per topic pattern who may subscribe and what
	// topics keep. nil: one default namespace from LastValue, History and
	// HistoryTTL.
	Namespaces *namespace.Set
	// DemoToken, if set, is served at GET /demo/token on the control
	// listener (--demo only: it hands out tokens to anyone who asks).
	DemoToken http.Handler
}

func (a *AuthConfig) controlRoutes() map[string]http.Handler {
	if a.DemoToken == nil {
		return nil
	}
	return map[string]http.Handler{"/demo/token": a.DemoToken}
}

// ParseAuthMode reads an --auth value.
func ParseAuthMode(s string) (AuthMode, error) {
	switch m := AuthMode(s); m {
	case AuthOff, AuthRequired, AuthNamespace:
		return m, nil
	}
	return "", fmt.Errorf("auth mode %q: want off, required or namespace", s)
}

func (a *AuthConfig) normalize(c *Config) error {
	if a.Mode == "" {
		a.Mode = AuthOff
	}
	if _, err := ParseAuthMode(string(a.Mode)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if a.Namespaces == nil {
		set, err := namespace.FromFlags(namespace.Defaults{LastValue: c.LastValue, History: c.History, HistoryTTL: c.HistoryTTL})
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		a.Namespaces = set
	}
	if a.Mode != AuthOff && a.Verifier == nil && !a.Keys.HasKeys() {
		return fmt.Errorf("config: --auth %s needs a token key (--token-hmac-secret-file, --token-public-key or --token-jwks)", a.Mode)
	}
	return nil
}

// hasKeys reports whether tokens can be verified at all.
func (a *AuthConfig) hasKeys() bool { return a.Verifier != nil || a.Keys.HasKeys() }
