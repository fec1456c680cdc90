package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token variants of fanwire for the handshake scenario: the same server
// with --auth required and a key, every connection presenting its own
// token (sub bench-<i>) signed by the harness before the storm.
const (
	serverHS256 = "fanwire-hs256"
	serverES256 = "fanwire-es256"
)

// tokenAlg is the JWT algorithm of a token variant ("" for any other server).
func tokenAlg(name string) string {
	switch name {
	case serverHS256:
		return "HS256"
	case serverES256:
		return "ES256"
	}
	return ""
}

// tokenServer gives s the key flags of its variant and returns n tokens
// for it, one per connection; cleanup removes the key files.
func tokenServer(s Server, n int) (Server, []string, func(), error) {
	alg := tokenAlg(s.Name)
	if alg == "" {
		return s, nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "fanwire-bench-keys-")
	if err != nil {
		return s, nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	var method jwt.SigningMethod
	var key any
	args := []string{"--auth", "required", "--max-conns-per-user", "0"}
	switch alg {
	case "HS256":
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		hexSecret := fmt.Sprintf("%x", secret)
		file := filepath.Join(dir, "hmac-secret")
		if err := os.WriteFile(file, []byte(hexSecret+"\n"), 0o600); err != nil {
			cleanup()
			return s, nil, nil, err
		}
		method, key = jwt.SigningMethodHS256, []byte(hexSecret)
		args = append(args, "--token-hmac-secret-file", file)
	case "ES256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			cleanup()
			return s, nil, nil, err
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			cleanup()
			return s, nil, nil, err
		}
		file := filepath.Join(dir, "es256.pem")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			cleanup()
			return s, nil, nil, err
		}
		method, key = jwt.SigningMethodES256, priv
		args = append(args, "--token-public-key", file)
	}
	s.Args = append(append([]string(nil), s.Args...), args...)
	now := time.Now()
	tokens := make([]string, n)
	for i := range tokens {
		claims := jwt.MapClaims{"sub": fmt.Sprintf("bench-%d", i), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"fanwire": map[string]any{"subscribe": []string{"*"}}}
		if tokens[i], err = jwt.NewWithClaims(method, claims).SignedString(key); err != nil {
			cleanup()
			return s, nil, nil, err
		}
	}
	return s, tokens, cleanup, nil
}

// isTokenVariant reports whether name is a token variant of fanwire.
func isTokenVariant(name string) bool {
	return strings.HasPrefix(name, "fanwire-") && tokenAlg(name) != ""
}
