package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/fanwire/fanwire/server"
	"github.com/golang-jwt/jwt/v5"
)

// TestAuthPublicKeys: RS256 and ES256 tokens verify against PEM public
// keys; an HS256 token "signed" with a public key's PEM bytes (key
// confusion) and alg none are refused, over real sockets.
func TestAuthPublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	var files []string
	var rsaPEM []byte
	for i, pub := range []any{&rsaKey.PublicKey, &ecKey.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if i == 0 {
			rsaPEM = data
		}
		f := filepath.Join(dir, []string{"rsa.pem", "ec.pem"}[i])
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	n := startNode(t, false, func(c *server.Config) {
		c.Auth.Mode = server.AuthRequired
		c.Auth.Keys.PEMFiles = files
	})
	for _, c := range []struct {
		name   string
		token  string
		status int
	}{
		{"RS256", mint(t, jwt.SigningMethodRS256, rsaKey, nil, "a"), 101},
		{"PS256", mint(t, jwt.SigningMethodPS256, rsaKey, nil, "a"), 101},
		{"ES256", mint(t, jwt.SigningMethodES256, ecKey, nil, "a"), 101},
		{"HS256 with the RSA public key as secret", mint(t, jwt.SigningMethodHS256, rsaPEM, nil, "a"), 401},
		{"alg none", mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, "a"), 401},
		{"RS256 by another key", func() string {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			return mint(t, jwt.SigningMethodRS256, k, nil, "a")
		}(), 401},
	} {
		if _, status, code := dialToken(t, n, "?topics=a&token="+c.token, nil); status != c.status {
			t.Errorf("%s: %d %q, want %d", c.name, status, code, c.status)
		}
	}
}
