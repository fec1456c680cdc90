package supervisor_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// TestWorkersVerifyTokens: an HMAC secret given on the supervisor's command
// line reaches every worker (through the environment), is on no worker's
// command line, and the workers enforce --auth required.
func TestWorkersVerifyTokens(t *testing.T) {
	const secret = "supervisor-secret-supervisor-secret-42"
	n := startNode(t, "--workers", "2", "--auth", "required", "--token-hmac-secret", secret)
	ws := n.ws
	if _, resp, err := websocket.DefaultDialer.Dial(ws+"?topics=a", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous: %v %v, want 401", err, resp)
	}
	for _, w := range n.workers() {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(w.PID) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cmdline), secret) || !strings.Contains(string(cmdline), "required") {
			t.Fatalf("worker %d command line %q", w.ID, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "dave", "exp": time.Now().Add(time.Hour).Unix(), "fanwire": map[string]any{"subscribe": []string{"a"}},
	}).SignedString([]byte(secret))
	// Several connections, so both workers (SO_REUSEPORT) see tokens.
	clients := make([]*client, 6)
	for i := range clients {
		clients[i] = dial(t, ws, "a&token="+tok)
	}
	primeAll(t, "a", clients, n)
	seq := n.publish("a", `"hi"`)
	expect(t, clients, message{Topic: "a", Seq: seq, Data: []byte(`"hi"`)})
}
