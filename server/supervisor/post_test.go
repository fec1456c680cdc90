package supervisor_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWorkersPostPublish: with --workers 2 a POST /publish on the public
// listener (as fanwire.js sends over SSE/long-poll) waits for the
// sequencer's answer: each ack's seq is the seq subscribers on both workers get.
func TestWorkersPostPublish(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(cfg, []byte(publishConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "--workers", "2", "--auth", "namespace", "--token-hmac-secret", publishSecret, "--config", cfg)
	const topic = "chat.post"
	alice := chatToken(t, "alice", "chat.*")
	var subs []*websocket.Conn
	for i := 0; i < 8; i++ {
		c := dialRaw(t, n.ws+"?token="+alice)
		sendOp(t, c, `{"op":"subscribe","topics":["`+topic+`"]}`)
		if m := readAny(t, c); m["type"] != "subscribed" {
			t.Fatalf("subscribe: %v", m)
		}
		subs = append(subs, c)
	}
	eventually(t, "clients on both workers", func() bool {
		ws := n.workers()
		return len(ws) == 2 && ws[0].Node != nil && ws[1].Node != nil && ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0
	})
	u, _ := url.Parse(n.ws)
	client := http.Client{Timeout: 10 * time.Second}
	post := func(token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+u.Host+"/publish", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	for i := 1; i <= 4; i++ { // new connections: both workers take some
		code, ack := post(alice, `{"topic":"`+topic+`","data":{"i":`+ftoa(float64(i))+`}}`)
		seq, _ := ack["seq"].(float64)
		if code != 200 || ack["type"] != "published" || seq == 0 {
			t.Fatalf("POST %d: %d %v", i, code, ack)
		}
		for j, c := range subs {
			if m := readAny(t, c); m["seq"] != seq || m["from"].(map[string]any)["user"] != "alice" {
				t.Fatalf("subscriber %d: %v, want seq %v from alice", j, m, seq)
			}
		}
	}
	if code, m := post(chatToken(t, "bob"), `{"topic":"`+topic+`","data":1}`); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("bob: %d %v", code, m)
	}
}
