package server

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkIdleConnMemoryTokens is BenchmarkIdleConnMemory with a token per
// connection: "shared" (every connection presents the same token, so they
// share one Identity) and "distinct" (one user each: an Identity and a
// verified-token cache entry per connection).
// Run: go test -run '^$' -bench IdleConnMemoryTokens -benchtime 1x ./server/
func BenchmarkIdleConnMemoryTokens(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		name := "shared"
		if distinct {
			name = "distinct"
		}
		b.Run(name, func(b *testing.B) { benchTokenConns(b, distinct) })
	}
}

func benchTokenConns(b *testing.B, distinct bool) {
	const conns = 5000
	secret := []byte("bench-secret-bench-secret-bench-secret")
	n := startRawNode(b, func(cfg *Config) {
		cfg.Auth.Mode = AuthRequired
		cfg.Auth.Keys.HMACSecrets = [][]byte{secret}
		cfg.Users.MaxConnsPerUser = -1 // "shared" is one user with every connection
		cfg.Limits.MaxConnsPerIP = 0   // all from 127.0.0.1
	})
	reqs := make([][]byte, conns)
	for j := range reqs {
		user := "user-1"
		if distinct {
			user = "user-" + strconv.Itoa(j)
		}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": user, "exp": time.Now().Add(time.Hour).Unix(),
			"fanwire": map[string]any{"subscribe": []string{"prices.*"}, "info": map[string]string{"name": user}},
		}).SignedString(secret)
		reqs[j] = []byte("GET /ws?topics=prices.BTC-USD&token=" + tok + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	}
	idleHeapPerConn(b, n, conns, func(j int) []byte { return reqs[j] }, func(resp []byte) error {
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
			return errors.New("handshake failed")
		}
		return nil
	})
}
