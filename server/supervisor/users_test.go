package supervisor_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const usersSecret = "users-test-secret-users-test-secret-0123"

func userToken(t *testing.T, user string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix(), "fanwire": map[string]any{"subscribe": []string{"*"}}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(usersSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// control calls the supervisor's control API and decodes its JSON answer.
func (n *node) call(method, path, body string) (int, map[string]any) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.control+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		n.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// TestDisconnectUserAcrossWorkers: the clients of one user, spread over two
// worker processes, all get 4005 from one POST /disconnect to the
// supervisor; anonymous clients on the same workers stay connected.
func TestDisconnectUserAcrossWorkers(t *testing.T) {
	n := startNode(t, "--workers", "2", "--auth", "off", "--token-hmac-secret", usersSecret)
	tok := userToken(t, "alice")
	var alice, anon []*client
	for range 16 {
		alice = append(alice, dial(t, n.ws, "room&token="+tok))
		anon = append(anon, dial(t, n.ws, "room"))
	}
	// Both workers hold some of alice's connections (SO_REUSEPORT spreads them).
	eventually(t, "alice on both workers", func() bool {
		ws := n.workers()
		for _, w := range ws {
			if w.Node == nil || w.Node.Stats.Users != 1 {
				return false
			}
		}
		return len(ws) == 2
	})
	if st, m := n.call("GET", "/users/alice", ""); st != 200 || m["connections"] != 16.0 || m["workers"] != 2.0 {
		t.Fatalf("GET /users/alice: %d %v", st, m)
	}
	if st, m := n.call("POST", "/unsubscribe", `{"user":"alice","topic":"room"}`); st != 200 || m["unsubscribed"] != 16.0 || m["workers"] != 2.0 {
		t.Fatalf("POST /unsubscribe: %d %v", st, m)
	}
	st, m := n.call("POST", "/disconnect", `{"user":"alice","reason":"logged out","reconnect_ms":250}`)
	if st != 200 || m["disconnected"] != 16.0 || m["workers"] != 2.0 {
		t.Fatalf("POST /disconnect: %d %v", st, m)
	}
	for i, c := range alice {
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("alice client %d still open", i)
		}
		ce, ok := c.err.(*websocket.CloseError)
		if !ok || ce.Code != 4005 || ce.Text != "logged out; reconnect in 250ms" {
			t.Fatalf("alice client %d: %v, want 4005 \"logged out; reconnect in 250ms\"", i, c.err)
		}
	}
	for i, c := range anon {
		if c.closed() {
			t.Fatalf("anonymous client %d closed: %v", i, c.err)
		}
	}
	eventually(t, "alice gone", func() bool {
		_, m := n.call("GET", "/users/alice", "")
		return m["connections"] == 0.0
	})
	if st, m := n.call("POST", "/unsubscribe", `{"user":"alice","topic":"room"}`); st != 200 || m["unsubscribed"] != 0.0 {
		t.Fatalf("POST /unsubscribe: %d %v", st, m)
	}
}
