package supervisor_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestWorkersPostPublish: with --workers 2 a POST /publish on the public
// listener (as fanwire.js sends over SSE/long-poll) waits for the
// sequencer's answer: each ack's seq is the seq subscribers on both workers get.
func TestWorkersPostPublish(t *testing.T) {
	const topic = "chat.post"
	n, alice, subs := workersWithSubscribers(t, topic, 8)
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
