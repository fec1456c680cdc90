package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Error codes of a rejected token, in HTTP error bodies (401) and in-band
// {"type":"error","code":...} replies.
const (
	CodeInvalidToken  = "invalid_token"  // malformed, bad signature, wrong audience/issuer, not yet valid, unknown key
	CodeTokenExpired  = "token_expired"  // exp has passed: get a new token
	CodeTokenRequired = "token_required" // no token, and this node or topic needs one
)

// Error is a rejected token: the code and a message safe to show the client
// (it never echoes the token).
type Error struct {
	Code    string
	Message string
	// unknownKid: no key has the token's kid; a JWKS re-fetch may find it.
	unknownKid bool
	gen        uint64 // JWKS generation the token was checked against
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// UnknownKey reports whether the token names a kid no key has (yet).
func (e *Error) UnknownKey() bool { return e.unknownKid }

// Options are the keys and claim checks of a Verifier. Several keys may be
// given at once (rotation): a token verifies if one key whose type fits its
// alg (and whose kid matches, when both have one) accepts it.
type Options struct {
	HMACSecrets [][]byte      // shared secrets (HS256/384/512), each at least 32 bytes
	PEMFiles    []string      // files of PEM public keys (RSA, ECDSA, Ed25519)
	JWKSURL     string        // a JWKS document fetched over HTTP(S), cached, re-fetched on an unknown kid
	JWKSFile    string        // a JWKS document on disk (read once at start)
	Audience    string        // if set, aud must contain it
	Issuer      string        // if set, iss must equal it
	Leeway      time.Duration // clock skew allowed for nbf and iat (0: DefaultLeeway; exp is always exact)
	CacheSize   int           // verified tokens kept until their exp (0: DefaultCacheSize; <0: no cache)
	JWKSRefetch time.Duration // minimum time between JWKS fetches (0: DefaultJWKSRefetch)
	HTTPClient  *http.Client  // for JWKSURL (nil: a client with JWKSTimeout)
	Now         func() time.Time
	Logger      *slog.Logger // JWKS re-fetch outcomes (nil: discard)
}

// Defaults.
const (
	DefaultCacheSize   = 16384
	DefaultLeeway      = 5 * time.Second
	DefaultJWKSRefetch = 10 * time.Second
	JWKSTimeout        = 5 * time.Second
	MaxJWKSSize        = 1 << 20
	MaxTokenSize       = 8 << 10
)

// HasKeys reports whether any key is configured.
func (o *Options) HasKeys() bool {
	return len(o.HMACSecrets) > 0 || len(o.PEMFiles) > 0 || o.JWKSURL != "" || o.JWKSFile != ""
}

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	static []key
	jwks   *jwksSource // nil without a JWKS
	parser *jwt.Parser
	now    func() time.Time
	cache  *tokenCache

	Verified atomic.Uint64 // tokens checked cryptographically
	Cached   atomic.Uint64 // tokens answered from the cache
	Rejected atomic.Uint64
}

// NewVerifier loads the keys of opts. A JWKS URL is fetched once now, so a
// node does not start without its keys.
func NewVerifier(opts Options) (*Verifier, error) {
	if !opts.HasKeys() {
		return nil, errors.New("no token key configured")
	}
	v := &Verifier{now: opts.Now}
	if v.now == nil {
		v.now = time.Now
	}
	for i, s := range opts.HMACSecrets {
		k, err := hmacKey("", s)
		if err != nil {
			return nil, fmt.Errorf("HMAC secret %d: %w", i+1, err)
		}
		v.static = append(v.static, k)
	}
	for _, f := range opts.PEMFiles {
		keys, err := loadPEM(f)
		if err != nil {
			return nil, err
		}
		v.static = append(v.static, keys...)
	}
	if opts.JWKSURL != "" || opts.JWKSFile != "" {
		src, err := newJWKSSource(opts, v.onKeysChanged)
		if err != nil {
			return nil, err
		}
		v.jwks = src
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(allAlgs()),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway), // a backend clock slightly ahead must not make fresh tokens "issued in the future"
		jwt.WithTimeFunc(v.now),
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	v.parser = jwt.NewParser(popts...)
	if opts.CacheSize >= 0 {
		size := opts.CacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		v.cache = newTokenCache(size)
	}
	return v, nil
}

func allAlgs() []string {
	algs := append([]string(nil), hmacAlgs...)
	algs = append(algs, rsaAlgs...)
	return append(algs, "ES256", "ES384", "ES512", "EdDSA")
}

// Close stops background work (JWKS fetches).
func (v *Verifier) Close() {
	if v.jwks != nil {
		v.jwks.close()
	}
}

// claims is the token payload fanwire reads.
type claims struct {
	jwt.RegisteredClaims
	Fanwire *struct {
		Subscribe []string        `json:"subscribe"`
		Publish   []string        `json:"publish"`
		Info      json.RawMessage `json:"info"`
	} `json:"fanwire,omitempty"`
}

// Verify checks token and returns its identity. The result of a good token
// is cached until its exp, so a client reconnecting with the same token costs
// a map lookup instead of a signature check.
func (v *Verifier) Verify(token string) (*Identity, *Error) {
	if token == "" {
		return nil, &Error{Code: CodeTokenRequired, Message: "a token is required"}
	}
	if len(token) > MaxTokenSize {
		v.Rejected.Add(1)
		return nil, &Error{Code: CodeInvalidToken, Message: "token longer than 8 KiB"}
	}
	now := v.now()
	if v.cache != nil {
		if id := v.cache.get(token, now.Unix()); id != nil {
			v.Cached.Add(1)
			return id, nil
		}
	}
	id, err := v.verify(token)
	if err != nil {
		v.Rejected.Add(1)
		return nil, err
	}
	v.Verified.Add(1)
	if v.cache != nil {
		v.cache.put(token, id, now.Unix())
	}
	return id, nil
}

func (v *Verifier) verify(token string) (*Identity, *Error) {
	var c claims
	var unknownKid bool
	var gen uint64
	if v.jwks != nil {
		gen = v.jwks.gen.Load()
	}
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		k, unknown := v.keyFor(t)
		unknownKid = unknown
		return k, nil
	})
	if err != nil {
		e := tokenError(err, unknownKid)
		e.gen = gen
		return nil, e
	}
	if c.Subject == "" {
		return nil, &Error{Code: CodeInvalidToken, Message: "token has no sub (the user id)"}
	}
	id := &Identity{User: c.Subject}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Unix()
		// exp is exact, as the sweep that closes expired connections is:
		// the leeway only forgives clock skew on nbf and iat.
		if id.ExpiredAt(v.now().Unix()) {
			return nil, &Error{Code: CodeTokenExpired, Message: "token expired: get a new token and reconnect"}
		}
	}
	if f := c.Fanwire; f != nil {
		if err := ValidPatterns(f.Subscribe); err != nil {
			return nil, &Error{Code: CodeInvalidToken, Message: "fanwire.subscribe: " + err.Error()}
		}
		if err := ValidPatterns(f.Publish); err != nil {
			return nil, &Error{Code: CodeInvalidToken, Message: "fanwire.publish: " + err.Error()}
		}
		id.Subscribe, id.Publish = f.Subscribe, f.Publish
		if len(f.Info) > 0 && string(f.Info) != "null" {
			// Compact: info is stamped on client publications and travels
			// in a one-line NATS header in worker mode.
			var b bytes.Buffer
			if json.Compact(&b, f.Info) == nil {
				id.Info = b.Bytes()
			}
		}
	}
	return id, nil
}

// keyFor picks the keys that may verify t: of a type that fits its alg,
// with its kid if both name one. Returns an empty set (the parser then
// fails) and unknown=true when the kid is nowhere.
func (v *Verifier) keyFor(t *jwt.Token) (any, bool) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	kidSeen := false
	add := func(keys []key) {
		for i := range keys {
			k := &keys[i]
			if kid != "" && k.kid != "" {
				if k.kid != kid {
					continue
				}
				kidSeen = true
			}
			if k.allows(alg) {
				set.Keys = append(set.Keys, k.k)
			}
		}
	}
	add(v.static)
	if v.jwks != nil {
		add(v.jwks.current())
	}
	unknown := kid != "" && !kidSeen && len(set.Keys) == 0 && v.jwks != nil
	if unknown {
		v.jwks.refetchSoon()
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], unknown
	}
	return set, unknown
}

// tokenError turns a jwt error into a message a client developer can act on.
func tokenError(err error, unknownKid bool) *Error {
	e := &Error{Code: CodeInvalidToken, unknownKid: unknownKid}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		e.Code, e.Message = CodeTokenExpired, "token expired: get a new token and reconnect"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		e.Message = "token not valid yet (nbf is in the future)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		e.Message = "token issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		e.Message = "token audience (aud) is not this node's"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		e.Message = "token issuer (iss) is not the configured one"
	case unknownKid:
		e.Message = "no key with the token's kid"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		e.Message = "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		e.Message = "token is malformed: want a JWS compact serialization (header.payload.signature)"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		e.Message = "token cannot be verified: its alg is not allowed or no configured key fits it"
	default:
		msg := err.Error()
		if i := strings.Index(msg, ": "); i > 0 && len(msg) > 200 {
			msg = msg[:200]
		}
		e.Message = "token rejected: " + msg
	}
	return e
}

// AwaitKeys is for a token rejected with UnknownKey: it calls wake (on the
// fetching goroutine) once the JWKS has been re-fetched, so the caller can
// verify again, and reports false if no re-fetch is coming (rate limit) or
// too many already wait. wake may run before AwaitKeys returns.
func (v *Verifier) AwaitKeys(e *Error, wake func()) bool {
	if v.jwks == nil || !e.unknownKid {
		return false
	}
	return v.jwks.await(e.gen, wake)
}

func (v *Verifier) onKeysChanged() {
	if v.cache != nil {
		v.cache.clear() // a removed key must not live on in cached results
	}
}

// tokenCache maps a verified token to its identity until the token's exp.
// It is bounded: when full, expired entries go first, then arbitrary ones.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*Identity
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[string]*Identity)}
}

func (c *tokenCache) get(token string, now int64) *Identity {
	c.mu.Lock()
	id := c.m[token]
	if id != nil && id.ExpiredAt(now) {
		delete(c.m, token)
		id = nil
	}
	c.mu.Unlock()
	return id
}

func (c *tokenCache) put(token string, id *Identity, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for t, x := range c.m {
			if x.ExpiredAt(now) {
				delete(c.m, t)
			}
		}
		for t := range c.m { // map order is random: evicts arbitrary entries
			if len(c.m) < c.max*7/8 {
				break
			}
			delete(c.m, t)
		}
	}
	c.m[token] = id
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
