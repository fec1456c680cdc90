package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/metrics/metricstest"
)

// scrapeUntil scrapes url until ok accepts the scrape (10 s at most).
func scrapeUntil(t testing.TB, url string, what string, ok func(metricstest.Families) bool) metricstest.Families {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := metricstest.Scrape(url)
		if err != nil {
			t.Fatalf("scrape %s: %v", url, err)
		}
		if ok(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape %s: %s never held", url, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getJSON(t testing.TB, url string, wantStatus int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, wantStatus)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %q: %v", url, body, err)
		}
	}
}

// TestMetricsCountConnectionEvents drives a node through real sockets and
// checks the counters of a scrape, on the control listener and on
// --metrics-listen.
func TestMetricsCountConnectionEvents(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	const subs, msgs = 3, 5
	clients := make([]*rawConn, subs)
	for i := range clients {
		clients[i] = dialWS(t, n.WSAddr(), "/ws?topics=m.t")
	}
	bad := dialTCP(t, n.WSAddr())
	bad.write([]byte(upgradeRequest(n.WSAddr(), "/nope", newKey(), nil)))
	if resp := bad.readResponse(); resp.StatusCode != 404 {
		t.Fatalf("upgrade on /nope: %d, want 404", resp.StatusCode)
	}
	script := dialTCP(t, n.WSAddr()) // a plain HTTP request on the WebSocket listener
	script.write([]byte("GET /fanwire.js HTTP/1.1\r\nHost: x\r\n\r\n"))
	if resp := script.readResponse(); resp.StatusCode != 200 {
		t.Fatalf("GET /fanwire.js: %d", resp.StatusCode)
	}
	script.c.Close()
	var frameLen int
	for i := range msgs {
		publishHTTP(t, n, "m.t", []byte(`{"i":`+string(rune('0'+i))+`}`))
		for _, c := range clients {
			_, msg := c.readMessage("delivery", 5*time.Second)
			frameLen += 2 + len(msg) // short frames: a 2-byte header
		}
	}
	clients[0].send(closeFrame(1000, ""))
	clients[0].expectClose(1000)

	url := "http://" + n.MetricsAddr() + "/metrics"
	f := scrapeUntil(t, url, "closed{normal}=1", func(f metricstest.Families) bool {
		return f.Sum("fanwire_connections_closed_total", "reason", "normal") == 1 &&
			f.Sum("fanwire_connections_closed_total", "reason", "handshake_failed") == 1 &&
			f.Sum("fanwire_connections_closed_total", "reason", "http") == 1
	})
	checks := []struct {
		name  string
		match []string
		want  float64
	}{
		{"fanwire_connections_accepted_total", nil, subs + 2},
		{"fanwire_ws_upgrades_total", nil, subs},
		{"fanwire_connections", nil, subs - 1},
		{"fanwire_connections_open", nil, subs - 1},
		{"fanwire_subscriptions", nil, subs - 1},
		{"fanwire_topics", nil, 1},
		{"fanwire_handshake_failures_total", []string{"status", "404"}, 1},
		{"fanwire_handshake_failures_total", nil, 1},
		{"fanwire_handshake_duration_seconds", nil, subs},
		{"fanwire_ws_close_codes_total", []string{"code", "1000"}, 1},
		{"fanwire_publishes_total", []string{"source", "api"}, msgs},
		{"fanwire_publishes_total", []string{"source", "internal"}, 0},
		{"fanwire_publish_duration_seconds", nil, msgs},
		{"fanwire_deliveries_total", nil, subs * msgs},
		{"fanwire_delivered_bytes_total", nil, float64(frameLen)},
		{"fanwire_slow_connections", nil, 0},
	}
	for _, c := range checks {
		if got := f.Sum(c.name, c.match...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	if !f.Has("go_goroutines") || !f.Has("process_open_fds") {
		t.Error("no go_* / process_* metrics")
	}
	// The control listener serves the same; the metrics listener nothing else.
	if g, err := metricstest.Scrape("http://" + n.HTTPAddr() + "/metrics"); err != nil || g.Sum("fanwire_deliveries_total") != subs*msgs {
		t.Fatalf("control /metrics: %v", err)
	}
	getJSON(t, "http://"+n.MetricsAddr()+"/stats", http.StatusNotFound, nil)
}

// TestMetricsCloseReasons checks the reason of server-initiated closes.
func TestMetricsCloseReasons(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) {
		c.MaxMessage = 100
		c.PingInterval = 100 * time.Millisecond
	})
	big := dialWS(t, n.WSAddr(), "/ws")
	big.send(textFrame(strings.Repeat("x", 200)))
	big.expectFail(1009)
	proto := dialWS(t, n.WSAddr(), "/ws")
	proto.send(frame(finBit|0x3, nil)) // reserved opcode
	proto.expectFail(1002)
	idle := dialWS(t, n.WSAddr(), "/ws")
	_ = idle // never answers the pings: closed after two intervals
	scrapeUntil(t, "http://"+n.HTTPAddr()+"/metrics", "too_large, protocol and idle closes", func(f metricstest.Families) bool {
		return f.Sum("fanwire_connections_closed_total", "reason", "too_large") == 1 &&
			f.Sum("fanwire_connections_closed_total", "reason", "protocol") == 1 &&
			f.Sum("fanwire_connections_closed_total", "reason", "idle") == 1 &&
			f.Sum("fanwire_ws_close_codes_total", "code", "1009") == 1 &&
			f.Sum("fanwire_ws_close_codes_total", "code", "1002") == 1 &&
			f.Sum("fanwire_ws_close_codes_total", "code", "1001") == 1
	})
}

// TestMetricsAdminKey: with an admin key, the operator endpoints need it on
// the control listener, the static admin page does not, and
// --metrics-listen serves /metrics without it.
func TestMetricsAdminKey(t *testing.T) {
	const key = "metrics-test-admin-key-0123456789"
	n := startNode(t, false, func(c *server.Config) {
		c.Metrics.Listen = "127.0.0.1:0"
		c.Limits.AdminKeys = api.Keys{key}
	})
	base := "http://" + n.HTTPAddr()
	for _, path := range []string{"/metrics", "/admin/data", "/topics", "/topics/a"} {
		getJSON(t, base+path, http.StatusUnauthorized, nil)
	}
	resp, err := http.Get(base + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/admin page without a key: %d, want 200 (static, no data)", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/admin/data", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/admin/data with the key: %d", resp.StatusCode)
	}
	if _, err := metricstest.Scrape("http://" + n.MetricsAddr() + "/metrics"); err != nil {
		t.Fatalf("--metrics-listen without a key: %v", err)
	}
}
