package loadtest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EnvTokenSecret holds the HMAC secret of --token-hmac-secret-file's kind
// out of the command line (ps).
const EnvTokenSecret = "FANWIRE_LOAD_TOKEN_SECRET"

// TokenPlan says which token each connection presents (?token= in its
// upgrade URL): one fixed Token, or an HS256 token signed here per
// connection with the fanwire claim schema, or pre-signed Tokens.
type TokenPlan struct {
	Token      string   `json:"token,omitempty"`       // the same token for every connection
	HMACSecret []byte   `json:"hmac_secret,omitempty"` // sign per connection (HS256); goes to workers over stdin, never argv
	Sub        string   `json:"sub,omitempty"`         // sub pattern: %d is the connection's global index
	Subscribe  []string `json:"subscribe,omitempty"`   // fanwire.subscribe patterns
	Publish    []string `json:"publish,omitempty"`     // fanwire.publish patterns (chat mode)
	Exp        int64    `json:"exp,omitempty"`         // unix seconds; the same for the whole run
	// Tokens, if set, are pre-signed tokens, connection i presenting
	// Tokens[i % len]: in-process fleets only (benchmarks with other algorithms).
	Tokens []string `json:"-"`
}

// tokenClaims is what fanwire reads from a token (server/auth).
type tokenClaims struct {
	jwt.RegisteredClaims
	Fanwire *tokenGrants `json:"fanwire,omitempty"`
}

type tokenGrants struct {
	Subscribe []string `json:"subscribe,omitempty"`
	Publish   []string `json:"publish,omitempty"`
}

// SignHS256 signs a fanwire token for sub with secret.
func SignHS256(secret []byte, sub string, subscribe []string, iat, exp time.Time) (string, error) {
	return signHS256(secret, sub, subscribe, nil, iat, exp)
}

func signHS256(secret []byte, sub string, subscribe, publish []string, iat, exp time.Time) (string, error) {
	c := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(iat)}}
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	if len(subscribe) > 0 || len(publish) > 0 {
		c.Fanwire = &tokenGrants{Subscribe: subscribe, Publish: publish}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// SubFor is the sub of connection i: pattern with %d replaced by i.
func SubFor(pattern string, i int) string {
	if strings.Contains(pattern, "%d") {
		return strings.ReplaceAll(pattern, "%d", fmt.Sprint(i))
	}
	return pattern
}

// forConn is connection i's token.
func (t *TokenPlan) forConn(i int) (string, error) {
	switch {
	case len(t.Tokens) > 0:
		return t.Tokens[i%len(t.Tokens)], nil
	case len(t.HMACSecret) > 0:
		var exp time.Time
		if t.Exp > 0 {
			exp = time.Unix(t.Exp, 0)
		}
		return signHS256(t.HMACSecret, SubFor(t.Sub, i), t.Subscribe, t.Publish, time.Now().Add(-time.Minute), exp)
	}
	return t.Token, nil
}

// perConn says whether each connection has its own token (else one fixed token).
func (t *TokenPlan) perConn() bool { return len(t.Tokens) > 0 || len(t.HMACSecret) > 0 }

// withToken adds token to a path and query.
func withToken(pathQuery, token string) string {
	sep := "?"
	if strings.Contains(pathQuery, "?") {
		sep = "&"
	}
	return pathQuery + sep + "token=" + url.QueryEscape(token)
}

// tokenPaths pre-signs the upgrade path of every connection a loop of the
// fleet dials (global index offset + id + k*loops), before the ramp, so
// signing does not slow the connect rate.
func tokenPaths(t *TokenPlan, base func(global int) string, offset, id, loops, share int) ([]string, error) {
	out := make([]string, share)
	for k := range out {
		g := offset + id + k*loops
		tok, err := t.forConn(g)
		if err != nil {
			return nil, fmt.Errorf("signing token %d: %w", g, err)
		}
		out[k] = withToken(base(g), tok)
	}
	return out, nil
}

// tokenPlan turns the token flags into the run's TokenPlan (nil: no tokens).
func (c *Config) tokenPlan() (*TokenPlan, error) {
	secret := []byte(c.TokenSecret)
	if c.TokenSecretFile != "" {
		b, err := os.ReadFile(c.TokenSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--token-hmac-secret-file: %w", err)
		}
		secret = []byte(strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r \t"))
	}
	if len(secret) == 0 {
		secret = []byte(os.Getenv(EnvTokenSecret))
	}
	if c.Token != "" && len(secret) > 0 {
		return nil, errors.New("--token and an HMAC secret are exclusive: one fixed token, or one signed per connection")
	}
	if c.Token == "" && len(secret) == 0 {
		return nil, nil
	}
	if c.Token != "" {
		return &TokenPlan{Token: c.Token}, nil
	}
	if len(secret) < 32 {
		return nil, errors.New("the HMAC secret must be at least 32 bytes (the server's minimum)")
	}
	p := &TokenPlan{HMACSecret: secret, Sub: c.TokenSub}
	if p.Sub == "" {
		p.Sub = "load-%d"
	}
	for _, s := range strings.Split(c.TokenSubscribe, ",") {
		if s = strings.TrimSpace(s); s != "" {
			p.Subscribe = append(p.Subscribe, s)
		}
	}
	if c.Mode == "chat" {
		for _, s := range strings.Split(c.TokenPublish, ",") {
			if s = strings.TrimSpace(s); s != "" {
				p.Publish = append(p.Publish, s)
			}
		}
	}
	if c.TokenTTL > 0 {
		p.Exp = time.Now().Add(c.TokenTTL).Unix()
	}
	return p, nil
}

// allLoopPaths are the upgrade paths of every loop of a fleet (see
// loopPaths), signed in parallel: about 11 µs and 210 bytes per HS256
// token, so a million connections cost seconds and 200 MB up front.
func allLoopPaths(plan *Plan, tgt *target) ([][]string, bool, error) {
	out := make([][]string, plan.Loops)
	errs := make([]error, plan.Loops)
	var wg sync.WaitGroup
	for i := range out {
		share := plan.Conns / plan.Loops
		if i < plan.Conns%plan.Loops {
			share++
		}
		wg.Go(func() { out[i], _, errs[i] = loopPaths(plan, tgt, i, share) })
	}
	wg.Wait()
	return out, plan.Chat != nil || plan.Auth != nil && plan.Auth.perConn(), errors.Join(errs...)
}

// loopPaths are the upgrade paths of loop id: the plan's (topics) rotation,
// with the token added; perConn when every connection has its own entry
// (signed before the ramp).
func loopPaths(plan *Plan, tgt *target, id, share int) (paths []string, perConn bool, err error) {
	a := plan.Auth
	if plan.Chat != nil {
		return chatPaths(plan, id, share)
	}
	if a == nil {
		return plan.Paths, false, nil
	}
	if !a.perConn() {
		base := plan.Paths
		if len(base) == 0 {
			base = []string{tgt.path}
		}
		for _, p := range base {
			paths = append(paths, withToken(p, a.Token))
		}
		return paths, false, nil
	}
	base := func(g int) string {
		if len(plan.Paths) > 0 {
			return plan.Paths[g%len(plan.Paths)]
		}
		return tgt.path
	}
	paths, err = tokenPaths(a, base, plan.Offset, id, plan.Loops, share)
	return paths, true, err
}

// chatPaths is one upgrade path per user of loop id (chat mode): its
// room's, with its token if any. Connection k of the loop is user k.
func chatPaths(plan *Plan, id, share int) ([]string, bool, error) {
	out := make([]string, share)
	for k := range out {
		g := plan.Offset + id + k*plan.Loops
		out[k] = plan.Paths[plan.Chat.roomOf(g)]
		if a := plan.Auth; a != nil {
			tok, err := a.forConn(g)
			if err != nil {
				return nil, false, fmt.Errorf("signing token %d: %w", g, err)
			}
			out[k] = withToken(out[k], tok)
		}
	}
	return out, true, nil
}
