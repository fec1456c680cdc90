package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/golang-jwt/jwt/v5"
)

// ecJWKS is a JWKS document with one P-256 key.
func ecJWKS(kid string, k *ecdsa.PublicKey) []byte {
	raw, _ := k.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}}})
	return b
}

func es256(t *testing.T, k *ecdsa.PrivateKey, kid string, subscribe ...string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, fanwireClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "carol", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
		Fanwire:          map[string]any{"subscribe": subscribe},
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthJWKSRotation: the key server rotates its key; the first upgrade
// with the new kid waits for one re-fetch and succeeds, the old kid stops
// working, and a flood of made-up kids does not hammer the key server.
func TestAuthJWKSRotation(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var doc atomic.Pointer[[]byte]
	d1 := ecJWKS("k1", &k1.PublicKey)
	doc.Store(&d1)
	var hits atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(*doc.Load())
	}))
	defer keys.Close()
	n := startNode(t, false, func(c *server.Config) {
		c.Auth.Mode = server.AuthRequired
		c.Auth.Keys.JWKSURL = keys.URL
		c.Auth.Keys.JWKSRefetch = 300 * time.Millisecond
	})
	if _, status, code := dialToken(t, n, "?topics=a&token="+es256(t, k1, "k1", "a"), nil); status != 101 {
		t.Fatalf("k1: %d %q", status, code)
	}
	d2 := ecJWKS("k2", &k2.PublicKey)
	doc.Store(&d2)
	time.Sleep(400 * time.Millisecond) // past the re-fetch interval since the start-up fetch
	before := hits.Load()
	if _, status, code := dialToken(t, n, "?topics=a&token="+es256(t, k2, "k2", "a"), nil); status != 101 {
		t.Fatalf("k2 after rotation: %d %q", status, code)
	}
	if got := hits.Load() - before; got != 1 {
		t.Fatalf("rotation cost %d fetches, want 1", got)
	}
	if _, status, _ := dialToken(t, n, "?topics=a&token="+es256(t, k1, "k1", "a"), nil); status != 401 {
		t.Fatalf("k1 after rotation: %d, want 401", status)
	}
	// A flood of unknown kids: at most one fetch per interval.
	time.Sleep(400 * time.Millisecond)
	before = hits.Load()
	start := time.Now()
	for i := 0; i < 30; i++ {
		if _, status, _ := dialToken(t, n, "?topics=a&token="+es256(t, k2, "bogus-"+string(rune('a'+i)), "a"), nil); status != 401 {
			t.Fatalf("bogus kid: %d", status)
		}
	}
	intervals := int32(time.Since(start)/(300*time.Millisecond)) + 1
	if got := hits.Load() - before; got > intervals {
		t.Fatalf("%d bogus kids cost %d fetches in %v, want at most %d", 30, got, time.Since(start), intervals)
	}
}
