package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

// postOp sends one POST to the public listener and returns the status,
// the JSON answer and the headers.
func postOp(t *testing.T, n *server.Node, path, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+n.WSAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("POST %s: %d %q: %v", path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, m, resp.Header
}

// TestPostPublish: POST /publish on the public listener takes the in-band
// op's body, token and permissions, and answers with the in-band answer.
func TestPostPublish(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) { c.Auth.Namespaces = loadNamespaces(t, publishNamespaces) })
	bob, _, _ := dialToken(t, n, "?topics=chat.room1&token="+publisher(t, "bob"), nil)
	alice := publisher(t, "alice", "chat.room1")

	code, ack, h := postOp(t, n, "/publish", alice, `{"topic":"chat.room1","data":{"text":"hi"},"id":7}`)
	if code != 200 || ack["type"] != "published" || ack["seq"] != float64(1) || ack["id"] != float64(7) || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("publish: %d %v %v", code, ack, h)
	}
	m := expectType(t, bob, "delivery")
	from, _ := m["from"].(map[string]any)
	if m["seq"] != ack["seq"] || from["user"] != "alice" {
		t.Fatalf("delivery %v, ack %v", m, ack)
	}
	// ?token= works like the upgrade's.
	if code, ack, _ := postOp(t, n, "/publish?token="+alice, "", `{"topic":"chat.room1","data":2}`); code != 200 || ack["seq"] != float64(2) {
		t.Fatalf("?token=: %d %v", code, ack)
	}
	expectType(t, bob, "delivery")
	// Anonymous where anonymous_publish is on.
	if code, ack, _ := postOp(t, n, "/publish", "", `{"topic":"open.x","data":1}`); code != 200 || ack["seq"] != float64(1) {
		t.Fatalf("anonymous open: %d %v", code, ack)
	}

	for _, c := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"token does not grant", publisher(t, "bob"), `{"topic":"chat.room1","data":1}`, 403, "forbidden"},
		{"anonymous chat", "", `{"topic":"chat.room1","data":1}`, 403, "forbidden"},
		{"default namespace", alice, `{"topic":"other","data":1}`, 403, "forbidden"},
		{"bad token", "nope", `{"topic":"open.x","data":1}`, 401, "invalid_token"},
		{"bad json", alice, `{"topic":`, 400, "bad_json"},
		{"no data", alice, `{"topic":"chat.room1"}`, 400, "bad_json"},
		{"bad topic", alice, `{"topic":"bad topic","data":1}`, 400, "invalid_topic"},
		{"other op", alice, `{"op":"subscribe","topics":["chat.room1"]}`, 400, "unknown_op"},
		{"namespace max_message", alice, `{"topic":"chat.room1","data":"` + strings.Repeat("x", 300) + `"}`, 413, "too_large"},
		{"node max message", alice, `{"topic":"open.x","data":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large"},
	} {
		code, m, h := postOp(t, n, "/publish", c.token, c.body)
		if code != c.status || m["type"] != "error" || m["code"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.status, c.code)
		}
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	// Nothing refused reached the subscriber: the next delivery is seq 3.
	if _, ack, _ := postOp(t, n, "/publish", alice, `{"topic":"chat.room1","data":3}`); ack["seq"] != float64(3) {
		t.Fatalf("after refusals: %v", ack)
	}
	if m := expectType(t, bob, "delivery"); m["seq"] != float64(3) {
		t.Fatalf("bob: %v", m)
	}
}

// TestPostRequestShape: method, length and preflight, answered precisely.
func TestPostRequestShape(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.HandshakeTimeout = 300 * time.Millisecond
	})
	raw := func(req string) string {
		t.Helper()
		c, err := net.Dial("tcp", n.WSAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil) // the node leaves the hang-up to us
		if err != nil {
			return "no response: " + err.Error()
		}
		defer resp.Body.Close()
		var b strings.Builder
		b.WriteString("HTTP/1.1 " + resp.Status + "\r\n")
		resp.Header.Write(&b) //nolint:errcheck
		b.WriteString("\r\n")
		body, _ := io.ReadAll(resp.Body)
		b.Write(body)
		return b.String()
	}
	for _, c := range []struct{ req, want string }{
		{"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 411 "},
		{"POST /publish HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 411 "},
		{"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", "HTTP/1.1 413 "},
		{"GET /publish HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "},
		{"OPTIONS /publish HTTP/1.1\r\nHost: x\r\nOrigin: http://app\r\nAccess-Control-Request-Method: POST\r\n\r\n", "Access-Control-Allow-Headers: Authorization, Content-Type"},
		{"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n{\"topic\":\"open.x\",\"data\":1234}", `"topic":"open.x","seq":1`},
	} {
		if got := raw(c.req); !strings.Contains(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.req, got, c.want)
		}
	}
	// A body that never arrives is cut at the handshake deadline, not held.
	got := raw("POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
	if !strings.Contains(got, "408") {
		t.Errorf("trickled body: %q", got)
	}
}

// TestPostPresence: POST /presence answers like the in-band presence op.
func TestPostPresence(t *testing.T) {
	n := presenceNode(t, nil)
	dialToken(t, n, "?topics=room.a&token="+hs256(t, func(c *fanwireClaims) { c.Subject = "alice" }, "room.*"), nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, m, _ := postOp(t, n, "/presence", "", `{"topic":"room.a","id":3}`)
		if code != 200 || m["type"] != "presence" || m["id"] != float64(3) {
			t.Fatalf("presence: %d %v", code, m)
		}
		if strings.Contains(mustJSON(m), `"alice"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice never present: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, m, _ := postOp(t, n, "/presence", "", `{"op":"presence_stats","topic":"room.a"}`); code != 200 || m["type"] != "presence_stats" {
		t.Fatalf("stats: %d %v", code, m)
	}
	if code, m, _ := postOp(t, n, "/presence", "", `{"topic":"nopresence"}`); code != 403 || m["code"] != "not_enabled" {
		t.Fatalf("not enabled: %d %v", code, m)
	}
	if code, m, _ := postOp(t, n, "/presence", "", `{"op":"publish","topic":"room.a","data":1}`); code != 400 || m["code"] != "unknown_op" {
		t.Fatalf("publish on /presence: %d %v", code, m)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// asyncPublisher stands for the bus in worker mode: it answers later, from
// another goroutine.
type asyncPublisher struct{ fail bool }

func (p asyncPublisher) Publish(topic string, data, from []byte, ephemeral bool, done func(uint64, error)) {
	go func() {
		time.Sleep(20 * time.Millisecond)
		if p.fail {
			done(0, errors.New("no sequencer"))
			return
		}
		done(42, nil)
	}()
}

// TestPostPublishWorkerMode: the bus's later answer becomes the HTTP answer.
func TestPostPublishWorkerMode(t *testing.T) {
	for _, fail := range []bool{false, true} {
		n := startNode(t, false, func(c *server.Config) {
			c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
			c.ClientPublish = asyncPublisher{fail: fail}
		})
		code, m, h := postOp(t, n, "/publish", "", `{"topic":"open.x","data":1,"id":5}`)
		switch {
		case !fail && (code != 200 || m["seq"] != float64(42) || m["id"] != float64(5)):
			t.Errorf("worker ack: %d %v", code, m)
		case fail && (code != 503 || m["code"] != "bus_unavailable" || h.Get("Retry-After") == ""):
			t.Errorf("worker failure: %d %v %v", code, m, h)
		}
	}
}

// TestPostPublishUserAtLimit: a POST does not count as one of the user's
// connections, so a user at --max-conns-per-user still publishes.
func TestPostPublishUserAtLimit(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.Users.MaxConnsPerUser = 1
	})
	alice := publisher(t, "alice", "chat.room1")
	sub, _, _ := dialToken(t, n, "?topics=chat.room1&token="+alice, nil)
	for i := 1; i <= 3; i++ {
		if code, ack, _ := postOp(t, n, "/publish", alice, `{"topic":"chat.room1","data":1}`); code != 200 || ack["seq"] != float64(i) {
			t.Fatalf("POST %d: %d %v", i, code, ack)
		}
		if m := expectType(t, sub, "delivery"); m["seq"] != float64(i) {
			t.Fatalf("delivery %v", m)
		}
	}
	if _, code, _ := dialToken(t, n, "?topics=chat.room1&token="+alice, nil); code != 429 {
		t.Fatalf("a second connection of alice: %d, want 429", code)
	}
}

// TestPostKeepAliveRateLimit: answers keep the connection, so the
// per-connection publish bucket (--max-client-publish-rate) holds across
// requests on it; a refused body closes it.
func TestPostKeepAliveRateLimit(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.PublishLimits.Rate, c.PublishLimits.Burst = 0.001, 2
	})
	c, err := net.Dial("tcp", n.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	const body = `{"topic":"open.k","data":1}`
	var got []int
	for i := 0; i < 3; i++ {
		if _, err := io.WriteString(c, "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i+1, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("request %d: Connection: close", i+1)
		}
		got = append(got, resp.StatusCode)
		if i == 2 && !strings.Contains(string(raw), `"code":"rate_limited"`) {
			t.Fatalf("third: %s", raw)
		}
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429", got)
	}
}
