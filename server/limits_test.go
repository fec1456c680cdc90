package server_test

// Abuse limits and control API keys over real sockets (issue 11).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
)

// dialFrom opens a TCP connection from source address src (127.0.0.2, ...).
func dialFrom(t *testing.T, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

// upgrade sends an upgrade request and returns the status and body.
func (rc *rawConn) upgrade(addr, pathQuery string, extra ...string) (int, http.Header, string) {
	rc.t.Helper()
	rc.write([]byte(upgradeRequest(addr, pathQuery, newKey(), extra)))
	resp := rc.readResponse()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, resp.Header, ""
	}
	body, _ := io.ReadAll(resp.Body) // a reset after the body is fine
	return resp.StatusCode, resp.Header, string(body)
}

// waitConns waits until the node has exactly n TCP connections (it has seen
// every close).
func waitConns(t *testing.T, n *server.Node, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Stats().Conns != want {
		if time.Now().After(deadline) {
			t.Fatalf("node has %d connections, want %d", n.Stats().Conns, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that trickles its upgrade request one byte every 300 ms is
// closed at the handshake timeout counted from accept: every byte no longer
// resets the deadline. Before, it stayed open as long as it kept trickling.
func TestLimitSlowlorisHandshake(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.HandshakeTimeout = time.Second })
	rc := dialTCP(t, n.WSAddr())
	start := time.Now()
	req := []byte(upgradeRequest(n.WSAddr(), "/ws", newKey(), nil)) // ~150 bytes: 45 s at this pace
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, b := range req {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := rc.c.Write([]byte{b}); err != nil {
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(rc.br)
	elapsed := time.Since(start)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("after %v: %v (received %q)", elapsed, err, got)
	}
	// The deadline is 1 s plus at most one sweep tick (250 ms here); the
	// bound is loose for a loaded machine but far below the 45 s trickle.
	if elapsed < 900*time.Millisecond || elapsed > 10*time.Second {
		t.Fatalf("closed after %v, want about 1s (the handshake timeout from accept)", elapsed)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 408 Request Timeout\r\n")) {
		t.Fatalf("answer %q, want a 408", clip(got))
	}
	if s := n.Stats(); s.HandshakeTimeouts != 1 {
		t.Fatalf("handshake_timeouts = %d, want 1", s.HandshakeTimeouts)
	}
}

// A message whose last fragment never comes, and a frame trickled byte by
// byte, are closed with 1008 at --message-timeout from their start, even
// though the client keeps sending pings or bytes meanwhile.
func TestLimitMessageTimeout(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.Limits.MessageTimeout = time.Second })
	addr := n.WSAddr()
	t.Run("fragmented message never finished", func(t *testing.T) {
		rc := dialWS(t, addr, "/ws")
		start := time.Now()
		rc.send(frame(opText, []byte(`{"op":"subscribe",`))) // no FIN
		deadline := time.Now().Add(20 * time.Second)
		for {
			rc.send(pingFrame([]byte("still here")))
			f, err := rc.readFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
			if f.op == opClose {
				checkClose(t, f, 1008, "message timeout")
				break
			}
			if f.op != opPong || time.Now().After(deadline) {
				t.Fatalf("got %v", f)
			}
			time.Sleep(300 * time.Millisecond)
		}
		if el := time.Since(start); el < 900*time.Millisecond || el > 10*time.Second {
			t.Fatalf("closed after %v, want about 1s", el)
		}
		rc.expectEOF("after the message timeout")
	})
	t.Run("frame trickled byte by byte", func(t *testing.T) {
		rc := dialWS(t, addr, "/ws")
		start := time.Now()
		// A ping frame of 100 bytes: incomplete control frames wait in the
		// input buffer, so every byte counts as activity but none completes it.
		for _, b := range pingFrame(bytes.Repeat([]byte("p"), 100)) {
			rc.write([]byte{b})
			_ = rc.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if f, err := rc.readFrame(300 * time.Millisecond); err == nil {
				checkClose(t, f, 1008, "message timeout")
				if el := time.Since(start); el < 900*time.Millisecond || el > 10*time.Second {
					t.Fatalf("closed after %v, want about 1s", el)
				}
				rc.expectEOF("after the message timeout")
				return
			}
		}
		t.Fatalf("still open after %v of trickling", time.Since(start))
	})
	if s := n.Stats(); !t.Failed() && s.MessageTimeouts != 2 {
		t.Fatalf("message_timeouts = %d, want 2", s.MessageTimeouts)
	}
}

func checkClose(t *testing.T, f wsFrame, code uint16, reason string) {
	t.Helper()
	if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != code || !strings.Contains(string(f.payload[2:]), reason) {
		t.Fatalf("got %v, want close %d %q", f, code, reason)
	}
}

// ?topics= with an empty list or an empty name is a 400 like any invalid topic.
func TestLimitEmptyTopicsInURL(t *testing.T) {
	n := startNode(t, false, nil)
	for _, q := range []string{"topics=", "topics=a,,b", "topics=a,", "topics=,a", "topics=a&topics="} {
		rc := dialTCP(t, n.WSAddr())
		status, _, body := rc.upgrade(n.WSAddr(), "/ws?"+q)
		if status != 400 || !strings.Contains(body, "empty topic") {
			t.Errorf("%s: %d %q, want 400 empty topic", q, status, body)
		}
	}
	dialWS(t, n.WSAddr(), "/ws?topics=a,b").closeNormally()
	dialWS(t, n.WSAddr(), "/ws?since=a:1").closeNormally() // no topics at all is fine
}

// --max-conns-per-ip 3: of 5 connections from 127.0.0.1 exactly 3 upgrade
// and 2 get 429; a freed slot is reusable; another address has its own 3.
func TestLimitConnsPerIP(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.Limits.MaxConnsPerIP = 3 })
	addr := n.WSAddr()
	var upgraded []*rawConn
	rejected := 0
	for range 5 {
		rc := dialFrom(t, "127.0.0.1", addr)
		switch status, _, body := rc.upgrade(addr, "/ws"); status {
		case 101:
			upgraded = append(upgraded, rc)
		case 429:
			rejected++
			var e struct{ Error, Message string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Error != "too_many_connections" {
				t.Fatalf("429 body %q", body)
			}
		default:
			t.Fatalf("status %d %q", status, body)
		}
	}
	if len(upgraded) != 3 || rejected != 2 {
		t.Fatalf("%d upgraded, %d rejected; want 3 and 2", len(upgraded), rejected)
	}
	upgraded[0].closeNormally()
	waitConns(t, n, 2)
	if status, _, _ := dialFrom(t, "127.0.0.1", addr).upgrade(addr, "/ws"); status != 101 {
		t.Fatalf("after a close: status %d, want 101", status)
	}
	if status, _, _ := dialFrom(t, "127.0.0.1", addr).upgrade(addr, "/ws"); status != 429 {
		t.Fatalf("4th from 127.0.0.1: status %d, want 429", status)
	}
	for i := range 4 {
		status, _, _ := dialFrom(t, "127.0.0.2", addr).upgrade(addr, "/ws")
		if want := map[bool]int{true: 101, false: 429}[i < 3]; status != want {
			t.Fatalf("127.0.0.2 #%d: status %d, want %d", i+1, status, want)
		}
	}
	if s := n.Stats(); s.RejectedIP != 4 {
		t.Fatalf("rejected_ip = %d, want 4", s.RejectedIP)
	}
}

// --max-conn-rate with a burst of 4 (and a refill of one per 1000 s): of 6
// connections exactly 4 upgrade, 2 get 503 with Retry-After. One loop, so
// the per-loop bucket is the node's.
func TestLimitConnRate(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.Loops = 1
		c.Limits.ConnRate, c.Limits.ConnBurst = 0.001, 4
	})
	addr := n.WSAddr()
	ok, limited := 0, 0
	for range 6 {
		rc := dialTCP(t, addr)
		status, hdr, body := rc.upgrade(addr, "/ws")
		switch status {
		case 101:
			ok++
		case 503:
			limited++
			if hdr.Get("Retry-After") != "1" || hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error":"rate_limited"`) {
				t.Fatalf("503 headers %v body %q", hdr, body)
			}
		default:
			t.Fatalf("status %d %q", status, body)
		}
	}
	if ok != 4 || limited != 2 {
		t.Fatalf("%d upgraded, %d limited; want 4 and 2", ok, limited)
	}
	if s := n.Stats(); s.RejectedRate != 2 || s.RejectedIP != 0 {
		t.Fatalf("rejected_rate = %d, rejected_ip = %d; want 2, 0", s.RejectedRate, s.RejectedIP)
	}
}

// --max-client-rate with a burst of 5: 5 messages are served, the 6th gets
// a rate_limited error, the 7th closes with 1008. Pings count too.
func TestLimitClientRate(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.Limits.ClientRate, c.Limits.ClientBurst = 0.001, 5
	})
	rc := dialWS(t, n.WSAddr(), "/ws")
	var msgs [][]byte
	for i := range 7 {
		msgs = append(msgs, textFrame(`{"op":"subscribe","topics":["t`+string(rune('a'+i))+`"]}`))
	}
	rc.send(msgs...)
	for i := range 5 {
		if _, m := rc.readMessage("ack", frameTimeout); !strings.HasPrefix(string(m), `{"type":"subscribed"`) {
			t.Fatalf("message %d: %q", i+1, m)
		}
	}
	var r reply
	if _, m := rc.readMessage("rate_limited error", frameTimeout); json.Unmarshal(m, &r) != nil || r.Type != "error" || r.Code != "rate_limited" {
		t.Fatalf("6th: %q", m)
	}
	rc.expectCloseFrame(1008)

	pings := dialWS(t, n.WSAddr(), "/ws")
	for range 5 {
		pings.send(pingFrame([]byte("x")))
		pings.expectPong([]byte("x"))
	}
	pings.send(pingFrame([]byte("x")), pingFrame([]byte("y")))
	if _, m := pings.readMessage("rate_limited error", frameTimeout); !strings.Contains(string(m), `"rate_limited"`) {
		t.Fatalf("6th ping: %q", m)
	}
	pings.expectCloseFrame(1008)
	if s := n.Stats(); s.RateLimited != 2 || s.RateClosed != 2 {
		t.Fatalf("rate_limited %d, rate_closed %d; want 2, 2", s.RateLimited, s.RateClosed)
	}
}

// The bucket refills over time, and a full bucket forgives the warning.
func TestLimitClientRateRefills(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.HandshakeTimeout = 400 * time.Millisecond // sweeps every 100 ms
		c.Limits.ClientRate, c.Limits.ClientBurst = 20, 2
	})
	rc := dialWS(t, n.WSAddr(), "/ws")
	sub := textFrame(`{"op":"subscribe","topics":["a"]}`)
	for round := range 2 {
		rc.send(sub, sub, sub)
		rc.readMessage("ack", frameTimeout)
		rc.readMessage("ack", frameTimeout)
		if _, m := rc.readMessage("rate_limited error", frameTimeout); !strings.Contains(string(m), `"rate_limited"`) {
			t.Fatalf("round %d: %q", round, m)
		}
		time.Sleep(1500 * time.Millisecond) // 30 tokens' worth: full again
	}
	if s := n.Stats(); s.RateLimited != 2 || s.RateClosed != 0 {
		t.Fatalf("rate_limited %d, rate_closed %d; want 2, 0", s.RateLimited, s.RateClosed)
	}
	rc.closeNormally()
}

// --allowed-origins: listed origins (exact or *.domain) and requests
// without Origin upgrade; any other Origin gets 403.
func TestLimitAllowedOrigins(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.Limits.AllowedOrigins = "https://app.example.com, https://*.example.org"
	})
	addr := n.WSAddr()
	for origin, want := range map[string]int{
		"":                        101,
		"https://app.example.com": 101,
		"HTTPS://App.Example.com": 101,
		"https://a.b.example.org": 101,
		"https://example.org":     403,
		"http://app.example.com":  403,
		"https://evil.com":        403,
		"https://evilexample.org": 403,
		"null":                    403,
	} {
		var extra []string
		if origin != "" {
			extra = []string{"Origin: " + origin}
		}
		status, hdr, body := dialTCP(t, addr).upgrade(addr, "/ws", extra...)
		if status != want {
			t.Errorf("Origin %q: %d %q, want %d", origin, status, body, want)
		}
		if status == 403 && (hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error":"origin_not_allowed"`)) {
			t.Errorf("403 %v %q", hdr, body)
		}
	}
	if s := n.Stats(); s.RejectedOrigin != 5 {
		t.Fatalf("rejected_origin = %d, want 5", s.RejectedOrigin)
	}
}

// Publishing needs an API key once one is set; /stats an admin key. The
// node warns when its control API is open beyond loopback, without the key.
func TestLimitAPIKeysOnNode(t *testing.T) {
	var logs syncLog
	n := startNode(t, false, func(c *server.Config) {
		c.HTTPListen = "0.0.0.0:0"
		c.Limits.APIKeys = api.Keys{"s3cret-publish"}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	port := n.HTTPAddr()[strings.LastIndex(n.HTTPAddr(), ":"):]
	url := "http://127.0.0.1" + port
	post := func(key string) int {
		req, _ := http.NewRequest("POST", url+"/publish/t", strings.NewReader(`1`))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b, c := post(""), post("wrong"), post("s3cret-publish"); a != 401 || b != 401 || c != 200 {
		t.Fatalf("no key %d, wrong key %d, right key %d; want 401 401 200", a, b, c)
	}
	out := logs.String()
	if !strings.Contains(out, "no --admin-key") || strings.Contains(out, "no --api-key") || strings.Contains(out, "s3cret") {
		t.Fatalf("logs:\n%s", out)
	}
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
