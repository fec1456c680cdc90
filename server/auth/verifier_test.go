package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("unit-secret-unit-secret-unit-secret!")

type testClaims struct {
	jwt.RegisteredClaims
	Fanwire map[string]any `json:"fanwire,omitempty"`
}

func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, exp time.Duration) string {
	tb.Helper()
	now := time.Now()
	c := testClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "bob", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(exp))},
		Fanwire: map[string]any{"subscribe": []string{"prices.*"}, "publish": []string{"chat.*"}, "info": map[string]any{"name": "Bob"}}}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func writePEM(tb testing.TB, pub any) (string, []byte) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f := filepath.Join(tb.TempDir(), "key.pem")
	os.WriteFile(f, data, 0o600)
	return f, data
}

type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func genKeys() testKeys {
	keysOnce.Do(func() {
		keys.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
		keys.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, keys.ed, _ = ed25519.GenerateKey(rand.Reader)
	})
	return keys
}

func TestVerifyKeyTypes(t *testing.T) {
	k := genKeys()
	rsaFile, rsaPEM := writePEM(t, &k.rsa.PublicKey)
	ecFile, _ := writePEM(t, &k.ec.PublicKey)
	edFile, _ := writePEM(t, k.ed.Public())
	v, err := NewVerifier(Options{HMACSecrets: [][]byte{secret}, PEMFiles: []string{rsaFile, ecFile, edFile}})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"HS256": sign(t, jwt.SigningMethodHS256, secret, "", time.Hour),
		"HS512": sign(t, jwt.SigningMethodHS512, secret, "", time.Hour),
		"RS256": sign(t, jwt.SigningMethodRS256, k.rsa, "", time.Hour),
		"PS256": sign(t, jwt.SigningMethodPS256, k.rsa, "", time.Hour),
		"ES256": sign(t, jwt.SigningMethodES256, k.ec, "", time.Hour),
		"EdDSA": sign(t, jwt.SigningMethodEdDSA, k.ed, "", time.Hour),
	}
	for name, tok := range good {
		id, e := v.Verify(tok)
		if e != nil {
			t.Errorf("%s: %v", name, e)
			continue
		}
		if id.User != "bob" || string(id.Info) != `{"name":"Bob"}` || !id.CanSubscribe("prices.BTC-USD") || id.CanSubscribe("chat.x") ||
			!id.CanPublish("chat.x") || id.CanPublish("prices.x") || id.Expires == 0 {
			t.Errorf("%s: identity %+v", name, id)
		}
	}
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	bad := map[string]string{
		// Key confusion: HS256 "signed" with the RSA public key's PEM bytes.
		"HS256 with the public key as secret": sign(t, jwt.SigningMethodHS256, rsaPEM, "", time.Hour),
		"alg none":                            sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", time.Hour),
		"RS256 by another key":                sign(t, jwt.SigningMethodRS256, otherRSA, "", time.Hour),
		"expired ES256":                       sign(t, jwt.SigningMethodES256, k.ec, "", -time.Minute),
	}
	for name, tok := range bad {
		if id, e := v.Verify(tok); e == nil {
			t.Errorf("%s: accepted as %+v", name, id)
		}
	}
	if _, e := v.Verify(bad["expired ES256"]); e.Code != CodeTokenExpired {
		t.Errorf("expired: code %q", e.Code)
	}
}

// TestKeyConfusionWithoutHMAC: a node with only a public key never treats
// its bytes as an HMAC secret.
func TestKeyConfusionWithoutHMAC(t *testing.T) {
	k := genKeys()
	rsaFile, rsaPEM := writePEM(t, &k.rsa.PublicKey)
	v, err := NewVerifier(Options{PEMFiles: []string{rsaFile}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		if _, e := v.Verify(sign(t, m, rsaPEM, "", time.Hour)); e == nil || e.Code != CodeInvalidToken {
			t.Errorf("%s with the PEM bytes: %v", m.Alg(), e)
		}
	}
}

func TestRejectsBadKeys(t *testing.T) {
	if _, err := NewVerifier(Options{HMACSecrets: [][]byte{[]byte("short")}}); err == nil {
		t.Error("short HMAC secret accepted")
	}
	k := genKeys()
	der, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	f := filepath.Join(t.TempDir(), "private.pem")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := NewVerifier(Options{PEMFiles: []string{f}}); err == nil {
		t.Error("private key file accepted")
	}
	if _, err := NewVerifier(Options{}); err == nil {
		t.Error("no keys accepted")
	}
}

func TestCacheSharesIdentity(t *testing.T) {
	v, _ := NewVerifier(Options{HMACSecrets: [][]byte{secret}})
	tok := sign(t, jwt.SigningMethodHS256, secret, "", time.Hour)
	a, _ := v.Verify(tok)
	b, _ := v.Verify(tok)
	if a != b || v.Verified.Load() != 1 || v.Cached.Load() != 1 {
		t.Fatalf("cache: %p %p verified %d cached %d", a, b, v.Verified.Load(), v.Cached.Load())
	}
	c := newTokenCache(8)
	for i := 0; i < 100; i++ {
		c.put(string(rune('a'+i%26))+string(rune(i)), &Identity{}, 0)
		if len(c.m) > 8 {
			t.Fatalf("cache grew to %d", len(c.m))
		}
	}
}

// jwksDoc is a JWKS with the public halves of keys, by kid.
func jwksDoc(tb testing.TB, keys map[string]any) []byte {
	b64 := base64.RawURLEncoding.EncodeToString
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			doc.Keys = append(doc.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			raw, _ := k.Bytes()
			doc.Keys = append(doc.Keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])})
		case ed25519.PublicKey:
			doc.Keys = append(doc.Keys, map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k)})
		}
	}
	doc.Keys = append(doc.Keys, map[string]string{"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}) // skipped
	b, _ := json.Marshal(doc)
	return b
}

// TestJWKSRotationAndRateLimit: a token with a new kid waits for one
// re-fetch; a flood of unknown kids costs at most one fetch per interval.
func TestJWKSRotationAndRateLimit(t *testing.T) {
	k := genKeys()
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var doc atomic.Pointer[[]byte]
	first := jwksDoc(t, map[string]any{"k1": &k.ec.PublicKey, "r1": &k.rsa.PublicKey, "e1": k.ed.Public()})
	doc.Store(&first)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(*doc.Load())
	}))
	defer srv.Close()
	v, err := NewVerifier(Options{JWKSURL: srv.URL, JWKSRefetch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, tok := range []string{sign(t, jwt.SigningMethodES256, k.ec, "k1", time.Hour), sign(t, jwt.SigningMethodRS256, k.rsa, "r1", time.Hour), sign(t, jwt.SigningMethodEdDSA, k.ed, "e1", time.Hour)} {
		if _, e := v.Verify(tok); e != nil {
			t.Fatal(e)
		}
	}
	// RS256 by the RSA key but naming the EC key's kid: no key fits.
	if _, e := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "k1", time.Hour)); e == nil {
		t.Fatal("kid of another key type accepted")
	}
	// Flood of unknown kids: within the interval no fetch happens at all.
	for i := 0; i < 100; i++ {
		if _, e := v.Verify(sign(t, jwt.SigningMethodES256, ec2, "bogus"+string(rune('a'+i%26)), time.Hour)); e == nil || !e.UnknownKey() {
			t.Fatalf("unknown kid: %v", e)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if h := hits.Load(); h != 1 {
		t.Fatalf("key server hit %d times, want 1 (start only)", h)
	}

	// Rotation: with a short interval, the new kid is fetched once and waited for.
	v2, err := NewVerifier(Options{JWKSURL: srv.URL, JWKSRefetch: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	rotated := jwksDoc(t, map[string]any{"k2": &ec2.PublicKey})
	doc.Store(&rotated)
	time.Sleep(5 * time.Millisecond)
	tok := sign(t, jwt.SigningMethodES256, ec2, "k2", time.Hour)
	_, e := v2.Verify(tok)
	if e == nil || !e.UnknownKey() {
		t.Fatalf("new kid before re-fetch: %v", e)
	}
	woke := make(chan struct{})
	if !v2.AwaitKeys(e, func() { close(woke) }) {
		t.Fatal("AwaitKeys: no fetch coming")
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake after re-fetch")
	}
	if _, e := v2.Verify(tok); e != nil {
		t.Fatalf("after rotation: %v", e)
	}
	if _, e := v2.Verify(sign(t, jwt.SigningMethodES256, k.ec, "k1", time.Hour)); e == nil {
		t.Fatal("rotated-out key still accepted")
	}
}

func TestJWKSLimits(t *testing.T) {
	big := make([]byte, MaxJWKSSize+10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	defer srv.Close()
	if _, err := NewVerifier(Options{JWKSURL: srv.URL}); err == nil {
		t.Fatal("oversized JWKS accepted")
	}
	if _, err := parseJWKS([]byte(`{"keys":[{"kty":"oct","k":"eA"}]}`)); err == nil {
		t.Fatal("JWKS without a signing key accepted")
	}
}

// TestLeeway: a few seconds of clock skew are forgiven on iat and nbf,
// never on exp (the sweep closes connections at exp exactly).
func TestLeeway(t *testing.T) {
	v, _ := NewVerifier(Options{HMACSecrets: [][]byte{secret}})
	now := time.Now()
	mk := func(iat, nbf, exp time.Time) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "x",
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(nbf), ExpiresAt: jwt.NewNumericDate(exp)}).SignedString(secret)
		return s
	}
	if _, e := v.Verify(mk(now.Add(2*time.Second), now.Add(2*time.Second), now.Add(time.Hour))); e != nil {
		t.Errorf("iat/nbf 2 s ahead: %v", e)
	}
	if _, e := v.Verify(mk(now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-2*time.Second))); e == nil || e.Code != CodeTokenExpired {
		t.Errorf("expired 2 s ago: %v", e)
	}
	if _, e := v.Verify(mk(now.Add(time.Minute), now, now.Add(time.Hour))); e == nil {
		t.Error("iat a minute ahead accepted")
	}
}

func TestJWKSFile(t *testing.T) {
	k := genKeys()
	f := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(f, jwksDoc(t, map[string]any{"r": &k.rsa.PublicKey}), 0o600)
	v, err := NewVerifier(Options{JWKSFile: f})
	if err != nil {
		t.Fatal(err)
	}
	if _, e := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "r", time.Hour)); e != nil {
		t.Fatal(e)
	}
	// alg is pinned by the document: the same RSA key may not verify PS256.
	if _, e := v.Verify(sign(t, jwt.SigningMethodPS256, k.rsa, "r", time.Hour)); e == nil {
		t.Fatal("PS256 accepted by a key pinned to RS256")
	}
	// A file never triggers fetches.
	if _, e := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "other", time.Hour)); e == nil || v.AwaitKeys(e, func() {}) {
		t.Fatalf("unknown kid with a file: %v", e)
	}
}
