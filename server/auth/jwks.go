package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// JWKSMaxAge: keys older than this are re-fetched in the background (so a
// key the issuer removed stops working without a restart).
const JWKSMaxAge = 10 * time.Minute

// maxKeyWaiters bounds the handshakes parked on one JWKS fetch.
const maxKeyWaiters = 10000

// jwksSource holds the keys of a JWKS document. A URL is fetched at start
// and again, in the background, when a token names an unknown kid or the keys
// are older than JWKSMaxAge, at most once per minGap: a flood of tokens
// with made-up kids costs one request per minGap to the key server.
type jwksSource struct {
	url      string
	client   *http.Client
	minGap   time.Duration
	onChange func()

	keys    atomic.Pointer[[]key]
	fetched atomic.Int64  // unix ns of the last successful fetch
	gen     atomic.Uint64 // bumped after every fetch attempt

	mu        sync.Mutex
	fetching  bool
	lastStart time.Time
	waiters   []func()
	ctx       context.Context
	cancel    context.CancelFunc
	fileKeys  []key
	log       *slog.Logger
}

func newJWKSSource(opts Options, onChange func()) (*jwksSource, error) {
	s := &jwksSource{url: opts.JWKSURL, client: opts.HTTPClient, minGap: opts.JWKSRefetch, onChange: onChange, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.minGap <= 0 {
		s.minGap = DefaultJWKSRefetch
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: JWKSTimeout}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var keys []key
	if opts.JWKSFile != "" {
		data, err := os.ReadFile(opts.JWKSFile)
		if err != nil {
			return nil, err
		}
		if keys, err = parseJWKS(data); err != nil {
			return nil, fmt.Errorf("%s: %w", opts.JWKSFile, err)
		}
	}
	s.fileKeys = keys // kept on every re-fetch
	if s.url != "" {
		fetched, err := s.fetch()
		if err != nil {
			return nil, fmt.Errorf("JWKS %s: %w", s.url, err)
		}
		s.lastStart = time.Now()
		keys = append(append([]key(nil), keys...), fetched...)
	}
	s.keys.Store(&keys)
	s.fetched.Store(time.Now().UnixNano())
	return s, nil
}

func (s *jwksSource) close() { s.cancel() }

// current is the key set now; stale keys trigger a background re-fetch.
func (s *jwksSource) current() []key {
	if s.url != "" && time.Since(time.Unix(0, s.fetched.Load())) > JWKSMaxAge {
		s.refetchSoon()
	}
	return *s.keys.Load()
}

// refetchSoon starts a background fetch unless one runs or ran within minGap.
func (s *jwksSource) refetchSoon() {
	if s.url == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetching || time.Since(s.lastStart) < s.minGap {
		return
	}
	s.fetching, s.lastStart = true, time.Now()
	go s.refetch()
}

func (s *jwksSource) refetch() {
	keys, err := s.fetch()
	if err == nil {
		keys = append(append([]key(nil), s.fileKeys...), keys...)
		s.keys.Store(&keys)
		s.fetched.Store(time.Now().UnixNano())
		s.onChange()
		s.log.Info("JWKS re-fetched", "url", s.url, "keys", len(keys))
	} else if s.ctx.Err() == nil {
		s.log.Warn("JWKS re-fetch failed: keeping the previous keys", "url", s.url, "err", err)
	}
	s.mu.Lock()
	s.fetching = false
	waiters := s.waiters
	s.waiters = nil
	s.gen.Add(1)
	s.mu.Unlock()
	for _, w := range waiters {
		w()
	}
}

// await calls wake once the keys have been re-fetched after generation gen
// (at once if that already happened). It reports false when no fetch is
// coming (too soon after the last one) or too many wait already.
func (s *jwksSource) await(gen uint64, wake func()) bool {
	s.mu.Lock()
	if s.gen.Load() != gen {
		s.mu.Unlock()
		wake()
		return true
	}
	if !s.fetching || len(s.waiters) >= maxKeyWaiters {
		s.mu.Unlock()
		return false
	}
	s.waiters = append(s.waiters, wake)
	s.mu.Unlock()
	return true
}

// fetch GETs the JWKS document: bounded in time (client timeout) and size.
func (s *jwksSource) fetch() ([]key, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("JWKS document larger than %d bytes", MaxJWKSSize)
	}
	return parseJWKS(data)
}

// jwk is one key of a JWKS document (RFC 7517); only public signing keys are used.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads the signing keys of a JWKS document. Keys for encryption
// (use "enc"), symmetric keys (kty "oct") and unknown types are skipped; a
// document without one usable key is an error.
func parseJWKS(data []byte) ([]key, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS is not JSON {\"keys\":[...]}: %w", err)
	}
	var keys []key
	var errs []error
	for i, j := range doc.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, err := j.publicKey()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		if pub == nil {
			continue
		}
		k, err := publicKey(j.Kid, pub)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		if j.Alg != "" { // the document pins the alg of this key
			if !k.allows(j.Alg) {
				errs = append(errs, fmt.Errorf("key %d (kid %q): alg %s does not fit a %s key", i, j.Kid, j.Alg, j.Kty))
				continue
			}
			k.algs = []string{j.Alg}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.Join(append([]error{errors.New("no usable signing key in JWKS")}, errs...)...)
	}
	return keys, nil
}

func (j *jwk) publicKey() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err1 := b64int(j.N)
		e, err2 := b64int(j.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err1 := base64.RawURLEncoding.DecodeString(j.X)
		y, err2 := base64.RawURLEncoding.DecodeString(j.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC point size")
		}
		// Validate the point via the uncompressed encoding.
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, err
		}
		return pub, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	case "oct":
		return nil, nil // secrets do not belong in a published JWKS
	}
	return nil, nil // unknown kty: skipped
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}
