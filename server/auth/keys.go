package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// key is one verification key. Its type pins the algorithms a token signed
// with it may use: an HMAC secret verifies only HS*, an RSA key only RS*/PS*,
// an ECDSA key only the ES* of its curve, an Ed25519 key only EdDSA. So a
// token that claims "HS256" is never checked against a public key's bytes
// (key confusion), and "none" matches no key at all.
type key struct {
	kid  string   // "" matches a token with any (or no) kid
	algs []string // algorithms this key verifies
	k    any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

var (
	hmacAlgs   = []string{"HS256", "HS384", "HS512"}
	rsaAlgs    = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Alg = []string{"EdDSA"}
)

// MinHMACSecret is the shortest HMAC secret accepted (RFC 7518 3.2: at least
// the hash size; HS256 needs 32 bytes).
const MinHMACSecret = 32

func hmacKey(kid string, secret []byte) (key, error) {
	if len(secret) < MinHMACSecret {
		return key{}, fmt.Errorf("HMAC secret is %d bytes: want at least %d", len(secret), MinHMACSecret)
	}
	return key{kid: kid, algs: hmacAlgs, k: secret}, nil
}

// publicKey wraps a parsed public key with the algorithms its type allows.
func publicKey(kid string, pub any) (key, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return key{}, fmt.Errorf("RSA key of %d bits: want at least 2048", p.N.BitLen())
		}
		return key{kid: kid, algs: rsaAlgs, k: p}, nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return key{kid: kid, algs: []string{"ES256"}, k: p}, nil
		case elliptic.P384():
			return key{kid: kid, algs: []string{"ES384"}, k: p}, nil
		case elliptic.P521():
			return key{kid: kid, algs: []string{"ES512"}, k: p}, nil
		}
		return key{}, errors.New("ECDSA key on an unsupported curve: want P-256, P-384 or P-521")
	case ed25519.PublicKey:
		return key{kid: kid, algs: ed25519Alg, k: p}, nil
	}
	return key{}, fmt.Errorf("unsupported public key type %T: want RSA, ECDSA or Ed25519", pub)
}

// loadPEM reads every public key (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE
// blocks) in a PEM file. A private key in the file is refused: the node only
// needs the public half, and should not hold the other.
func loadPEM(file string) ([]key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var keys []key
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("%s: PEM block %q: want a PUBLIC KEY (never give fanwire a private key)", file, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		k, err := publicKey("", pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM public key found", file)
	}
	return keys, nil
}

func (k *key) allows(alg string) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}
