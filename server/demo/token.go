package demo

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenLifetime is how long a demo token is valid: short, so the demo page
// shows a refresh ({"op":"refresh"}) before it expires.
const TokenLifetime = 10 * time.Minute

// TokenMinter hands out demo tokens: HS256, signed with a secret made up
// at start and never shown, granting the demo topics. Only for --demo: it
// gives a token to anyone who asks.
type TokenMinter struct {
	secret []byte
}

// NewTokenMinter makes a minter with a fresh random secret.
func NewTokenMinter() *TokenMinter {
	m := &TokenMinter{secret: make([]byte, 32)}
	_, _ = rand.Read(m.secret) // crypto/rand never fails on Linux
	return m
}

// Secret is the HMAC secret the node must verify demo tokens with.
func (m *TokenMinter) Secret() []byte { return m.secret }

var demoUser = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// ServeHTTP is GET /demo/token?user=NAME: {"token":..., "user":..., "exp":...}.
func (m *TokenMinter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Method != http.MethodGet {
		writeJSON(http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": "use GET /demo/token?user=NAME"})
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		user = "guest"
	}
	if !demoUser.MatchString(user) {
		writeJSON(http.StatusBadRequest, map[string]string{"error": "bad_user", "message": "user: 1-32 characters of [A-Za-z0-9_.-]"})
		return
	}
	now := time.Now()
	exp := now.Add(TokenLifetime)
	tok, err := m.Mint(user, now, exp)
	if err != nil {
		writeJSON(http.StatusInternalServerError, map[string]string{"error": "internal", "message": err.Error()})
		return
	}
	writeJSON(http.StatusOK, map[string]any{"token": tok, "user": user, "exp": exp.Unix()})
}

// Mint signs a demo token for user, valid from now until exp.
func (m *TokenMinter) Mint(user string, now, exp time.Time) (string, error) {
	claims := struct {
		jwt.RegisteredClaims
		Fanwire map[string]any `json:"fanwire"`
	}{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)},
		Fanwire: map[string]any{
			"subscribe": []string{"scores.*", "prices.*", "hello", ChatTopic},
			"publish":   []string{ChatTopic},
			"info":      map[string]string{"name": user},
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.secret)
}
