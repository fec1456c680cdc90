package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify is the cost of one token check at the upgrade, per
// algorithm, without and with the verified-token cache (a client
// reconnecting with the same token, as in a reconnect storm).
// Run: go test -run '^$' -bench Verify -benchmem ./server/auth/
func BenchmarkVerify(b *testing.B) {
	k := genKeys()
	rsaFile, _ := writePEM(b, &k.rsa.PublicKey)
	ecFile, _ := writePEM(b, &k.ec.PublicKey)
	edFile, _ := writePEM(b, k.ed.Public())
	algs := []struct {
		name string
		tok  string
	}{
		{"HS256", sign(b, jwt.SigningMethodHS256, secret, "", time.Hour)},
		{"RS256", sign(b, jwt.SigningMethodRS256, k.rsa, "", time.Hour)},
		{"ES256", sign(b, jwt.SigningMethodES256, k.ec, "", time.Hour)},
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, "", time.Hour)},
	}
	for _, cached := range []bool{false, true} {
		for _, a := range algs {
			name := a.name + "/cache=off"
			size := -1
			if cached {
				name, size = a.name+"/cache=on", 0
			}
			b.Run(name, func(b *testing.B) {
				v, err := NewVerifier(Options{HMACSecrets: [][]byte{secret}, PEMFiles: []string{rsaFile, ecFile, edFile}, CacheSize: size})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, e := v.Verify(a.tok); e != nil {
						b.Fatal(e)
					}
				}
			})
		}
	}
}
