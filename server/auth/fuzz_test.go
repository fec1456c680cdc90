package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: hostile tokens are rejected with a code and a message, never
// a panic, and only a token signed with the secret is accepted.
// Run: go test -run '^$' -fuzz FuzzVerify -fuzztime 30s ./server/auth/
func FuzzVerify(f *testing.F) {
	good := sign(f, jwt.SigningMethodHS256, secret, "", time.Hour)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("....")
	f.Add(`eyJhbGciOiJIUzI1NiIsImtpZCI6WzFdfQ.eyJzdWIiOiJ4IiwiZmFud2lyZSI6eyJzdWJzY3JpYmUiOlsiWyJdfX0.x`)
	v, err := NewVerifier(Options{HMACSecrets: [][]byte{secret}, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, e := v.Verify(tok)
		if e != nil {
			if e.Code == "" || e.Message == "" || id != nil {
				t.Fatalf("rejection without code/message: %+v", e)
			}
			return
		}
		if id == nil || id.User == "" {
			t.Fatalf("accepted %q without a user", tok)
		}
	})
}
