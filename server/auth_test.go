package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

var testSecret = []byte("test-secret-test-secret-test-secret!")

// fanwireClaims are the token claims a backend mints (see README, Authentication).
type fanwireClaims struct {
	jwt.RegisteredClaims
	Fanwire map[string]any `json:"fanwire,omitempty"`
}

// mint signs claims for user with method and key; sub patterns may subscribe.
func mint(t testing.TB, method jwt.SigningMethod, key any, edit func(*fanwireClaims), subscribe ...string) string {
	t.Helper()
	now := time.Now()
	c := fanwireClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
		Fanwire:          map[string]any{"subscribe": subscribe, "info": map[string]any{"name": "Alice"}},
	}
	if edit != nil {
		edit(&c)
	}
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hs256(t testing.TB, edit func(*fanwireClaims), subscribe ...string) string {
	return mint(t, jwt.SigningMethodHS256, testSecret, edit, subscribe...)
}

// startAuthNode runs a node with mode and the test HMAC secret.
func startAuthNode(t *testing.T, mode server.AuthMode, edit func(*server.Config)) *server.Node {
	return startNode(t, false, func(c *server.Config) {
		c.Auth.Mode = mode
		c.Auth.Keys.HMACSecrets = [][]byte{testSecret}
		if edit != nil {
			edit(c)
		}
	})
}

// dialToken upgrades with gorilla; on failure it returns the HTTP status and JSON error code.
func dialToken(t *testing.T, n *server.Node, query string, header http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+n.WSAddr()+"/ws"+query, header)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		return c, 101, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct{ Error, Message string }
	if jerr := json.Unmarshal(body, &e); jerr != nil || e.Message == "" {
		t.Fatalf("dial %s: status %d, body %q is not a JSON error", query, resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return nil, resp.StatusCode, e.Error
}

// readJSON reads one text message into a map.
func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	return m
}

func TestAuthUpgradeTokens(t *testing.T) {
	n := startAuthNode(t, server.AuthRequired, func(c *server.Config) { c.Auth.Keys.Audience = "fanwire" })
	aud := func(c *fanwireClaims) { c.Audience = jwt.ClaimStrings{"fanwire"} }
	now := time.Now()
	cases := []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"valid", hs256(t, aud, "prices.*"), 101, ""},
		{"no token", "", 401, auth.CodeTokenRequired},
		{"expired", hs256(t, func(c *fanwireClaims) { aud(c); c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) }), 401, auth.CodeTokenExpired},
		{"not yet valid", hs256(t, func(c *fanwireClaims) { aud(c); c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), 401, auth.CodeInvalidToken},
		{"issued in the future", hs256(t, func(c *fanwireClaims) { aud(c); c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }), 401, auth.CodeInvalidToken},
		{"wrong audience", hs256(t, func(c *fanwireClaims) { c.Audience = jwt.ClaimStrings{"other"} }), 401, auth.CodeInvalidToken},
		{"no audience", hs256(t, nil), 401, auth.CodeInvalidToken},
		{"no sub", hs256(t, func(c *fanwireClaims) { aud(c); c.Subject = "" }), 401, auth.CodeInvalidToken},
		{"wrong key", mint(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-1234"), aud), 401, auth.CodeInvalidToken},
		{"alg none", mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, aud), 401, auth.CodeInvalidToken},
		{"garbage", "not.a.jwt", 401, auth.CodeInvalidToken},
		{"bad pattern", hs256(t, aud, "[a-"), 401, auth.CodeInvalidToken},
	}
	for _, tc := range cases {
		q := "?topics=prices.BTC-USD"
		if tc.token != "" {
			q += "&token=" + tc.token
		}
		_, status, code := dialToken(t, n, q, nil)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, status, code, tc.status, tc.code)
		}
	}
	// Authorization: Bearer works for clients that can set headers.
	good := hs256(t, aud, "prices.*")
	for _, hc := range []struct {
		query, header string
		status        int
		code          string
	}{
		{"", "Bearer " + good, 101, ""},
		{"", "bearer  " + good, 101, ""},
		{"", "Basic dXNlcjpwYXNz", 401, auth.CodeTokenRequired},
		{"", "Bearer", 401, auth.CodeTokenRequired},
		{"", "Bearer garbage", 401, auth.CodeInvalidToken},
		{"&token=" + good, "Bearer garbage", 101, ""}, // ?token= wins
		{"&token=" + good + "&token=garbage", "", 101, ""},
	} {
		h := http.Header{"Authorization": {hc.header}}
		if _, status, code := dialToken(t, n, "?topics=prices.BTC-USD"+hc.query, h); status != hc.status || code != hc.code {
			t.Errorf("Authorization %.20q query %.20q: %d %q, want %d %q", hc.header, hc.query, status, code, hc.status, hc.code)
		}
	}
}

func TestAuthForbiddenSubscribe(t *testing.T) {
	n := startAuthNode(t, server.AuthRequired, nil)
	tok := hs256(t, nil, "prices.*", "chat.room1")
	if _, status, code := dialToken(t, n, "?topics=prices.BTC-USD,secret.x&token="+tok, nil); status != 403 || code != "forbidden" {
		t.Fatalf("URL subscription of a forbidden topic: %d %q, want 403 forbidden", status, code)
	}
	c, status, _ := dialToken(t, n, "?topics=prices.BTC-USD&token="+tok, nil)
	if status != 101 {
		t.Fatalf("status %d", status)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["chat.room1","chat.room2"]}`))
	if m := readJSON(t, c); m["type"] != "error" || m["code"] != "forbidden" || !strings.Contains(m["message"].(string), "chat.room2") {
		t.Fatalf("in-band forbidden: %v", m)
	}
	// The connection stays open and allowed topics work.
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["chat.room1"]}`))
	if m := readJSON(t, c); m["type"] != "subscribed" {
		t.Fatalf("allowed subscribe: %v", m)
	}
	if _, _, err := n.Publish("chat.room1", []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, c); m["topic"] != "chat.room1" || m["data"] != "hi" {
		t.Fatalf("delivery: %v", m)
	}
}

// TestAuthOffAcceptsAnonymousAndTokens: --auth off keeps today's behaviour
// for anonymous clients; a token, if sent, must still be valid.
func TestAuthOffAcceptsAnonymousAndTokens(t *testing.T) {
	n := startAuthNode(t, server.AuthOff, nil)
	if _, status, _ := dialToken(t, n, "?topics=anything", nil); status != 101 {
		t.Fatalf("anonymous: %d", status)
	}
	if _, status, _ := dialToken(t, n, "?topics=anything&token="+hs256(t, nil), nil); status != 101 {
		t.Fatalf("valid token: %d", status)
	}
	if _, status, code := dialToken(t, n, "?topics=anything&token=bad", nil); status != 401 || code != auth.CodeInvalidToken {
		t.Fatalf("bad token: %d %q", status, code)
	}
}

// TestAuthRefreshAndExpiry: a refresh before exp keeps the connection; a
// connection whose token expires without one is closed with 4001 by the sweep.
func TestAuthRefreshAndExpiry(t *testing.T) {
	n := startAuthNode(t, server.AuthRequired, nil)
	short := func(c *fanwireClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * time.Second)) }

	kept, status, _ := dialToken(t, n, "?topics=prices.BTC-USD&token="+hs256(t, short, "prices.*"), nil)
	expiring, status2, _ := dialToken(t, n, "?topics=prices.BTC-USD&token="+hs256(t, short, "prices.*"), nil)
	if status != 101 || status2 != 101 {
		t.Fatalf("status %d %d", status, status2)
	}
	start := time.Now()

	// Bad refreshes answer invalid_token and keep the connection.
	for _, bad := range []string{
		`{"op":"refresh","token":"garbage"}`,
		`{"op":"refresh","token":"` + hs256(t, func(c *fanwireClaims) { c.Subject = "mallory" }, "*") + `"}`,
		`{"op":"refresh"}`,
	} {
		kept.WriteMessage(websocket.TextMessage, []byte(bad))
		if m := readJSON(t, kept); m["type"] != "error" || m["code"] != auth.CodeInvalidToken {
			t.Fatalf("%s: %v", bad, m)
		}
	}
	exp := time.Now().Add(time.Hour).Unix()
	kept.WriteMessage(websocket.TextMessage, []byte(`{"op":"refresh","token":"`+hs256(t, nil, "prices.*")+`"}`))
	if m := readJSON(t, kept); m["type"] != "refreshed" || int64(m["exp"].(float64)) < exp-5 {
		t.Fatalf("refresh: %v", m)
	}

	// The other connection is closed with 4001 once its exp passes.
	expiring.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, _, err := expiring.ReadMessage()
	var ce *websocket.CloseError
	if !errorsAs(err, &ce) || ce.Code != 4001 || ce.Text != "token expired" {
		t.Fatalf("expiring conn: %v, want close 4001 \"token expired\"", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("closed after %v, before its exp", el)
	}

	// Well past the old exp, the refreshed connection still gets deliveries.
	time.Sleep(time.Until(start.Add(3 * time.Second)))
	if _, _, err := n.Publish("prices.BTC-USD", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, kept); m["topic"] != "prices.BTC-USD" {
		t.Fatalf("after refresh: %v", m)
	}
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

// TestAuthPythonClient: an independent client (Python websockets) gets
// 401 for a bad token, refreshes in-band, and sees close 4001 "token
// expired" when a short token runs out.
func TestAuthPythonClient(t *testing.T) {
	requireClient(t, pythonMissing())
	n := startAuthNode(t, server.AuthRequired, nil)
	py := []string{debianPython, filepath.Join("testdata", "pyauth.py")}
	url := "ws://" + n.WSAddr() + "/ws?topics=prices.BTC-USD&token="

	s := startScript(t, "pyauth.py", append(py, url+"bad", "-")...)
	if sum := s.event("summary", 30*time.Second); sum["status"] != float64(401) {
		t.Fatalf("bad token: %v", sum)
	}
	// The short token is minted once Python is up (interpreter and imports
	// can take seconds on a loaded machine), so its lifetime covers only
	// connecting and one refresh round trip, with room to spare.
	// An os.Pipe is handed to Python as is: no copying goroutine that
	// cmd.Wait would wait for if the script died early.
	urlIn, urlOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { urlIn.Close(); urlOut.Close() })
	s = startScriptStdin(t, "pyauth.py", urlIn, append(py, "-", hs256(t, func(c *fanwireClaims) { c.Subject = "bob" }))...)
	s.event("ready", 30*time.Second)
	short := hs256(t, func(c *fanwireClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(5 * time.Second)) }, "prices.*")
	fmt.Fprintln(urlOut, url+short)
	urlOut.Close()
	if m := s.event("reply", 30*time.Second)["msg"].(map[string]any); m["code"] != auth.CodeInvalidToken {
		t.Fatalf("refresh for another user: %v", m)
	}
	sum := s.event("summary", 30*time.Second)
	if sum["code"] != float64(4001) || sum["reason"] != "token expired" {
		t.Fatalf("expiry: %v, want close 4001 \"token expired\"", sum)
	}
	s.checkSummary(sum)
}
