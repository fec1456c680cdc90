package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanwire/fanwire/loadtest"
	"github.com/fanwire/fanwire/server"
)

func TestCentrifugoConfigMatchesFanwireHistory(t *testing.T) {
	if fanwireHistory != server.DefaultHistory || fanwireHistoryTTL != server.DefaultHistoryTTL {
		t.Fatalf("fanwire's history defaults are %d, %v now", server.DefaultHistory, server.DefaultHistoryTTL)
	}
	raw, err := centrifugoConfig("127.0.0.1:8000", "127.0.0.1:9000", "k")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		HTTPServer struct {
			Port         int    `json:"port"`
			InternalPort string `json:"internal_port"`
		} `json:"http_server"`
		API struct {
			Key string `json:"key"`
		} `json:"http_api"`
		Channel struct {
			WithoutNamespace struct {
				HistorySize int    `json:"history_size"`
				HistoryTTL  string `json:"history_ttl"`
				Presence    bool   `json:"presence"`
			} `json:"without_namespace"`
		} `json:"channel"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	ns := c.Channel.WithoutNamespace
	if ns.HistorySize != 100 || ns.HistoryTTL != "5m0s" || ns.Presence || c.API.Key != "k" || c.HTTPServer.Port != 8000 || c.HTTPServer.InternalPort != "9000" {
		t.Fatalf("config: %s", raw)
	}
}

func TestDialectPath(t *testing.T) {
	if got := dialectPath(loadtest.DialectCentrifugo, "/ws?topics=a.1"); got != "/connection/websocket?topics=a.1" {
		t.Fatal(got)
	}
	if got := dialectPath("", "/ws?topics=a"); got != "/ws?topics=a" {
		t.Fatal(got)
	}
}

// The publisher speaks Centrifugo's HTTP API: the key header, /api/publish
// for one message, /api/batch for several, Expect per message counted.
func TestPublisherCentrifugoAPI(t *testing.T) {
	var single, batch atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-API-Key") != "secret" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/publish":
			if !strings.HasPrefix(string(body), `{"channel":"c.0","data":{"t":`) {
				t.Errorf("publish body %s", body)
			}
			single.Add(1)
			io.WriteString(w, `{"result":{"offset":1,"epoch":"x"}}`)
		case "/api/batch":
			var b struct {
				Commands []struct {
					Publish struct {
						Channel string          `json:"channel"`
						Data    json.RawMessage `json:"data"`
					} `json:"publish"`
				} `json:"commands"`
			}
			if err := json.Unmarshal(body, &b); err != nil || len(b.Commands) < 2 {
				t.Errorf("batch body %s: %v", body, err)
			}
			batch.Add(1)
			io.WriteString(w, `{"replies":[{"publish":{}},{"publish":{}}]}`)
		}
	}))
	defer srv.Close()
	p := &Publisher{API: srv.URL, Topics: []string{"c.0"}, Size: 100, APIKey: "secret", Expect: 10}
	defer p.Close()
	st := p.Run(context.Background(), 20, 200*time.Millisecond)
	if st.Errors != 0 || st.Published != 4 || st.Expected != 40 || single.Load() != 4 {
		t.Fatalf("single: %+v (%d requests)", st, single.Load())
	}
	p.Topics, p.MaxPosts = []string{"c.0", "c.1"}, 10
	st = p.Run(context.Background(), 40, 200*time.Millisecond)
	if st.Errors != 0 || batch.Load() == 0 || st.Expected != 10*st.Published {
		t.Fatalf("batch: %+v (%d requests)", st, batch.Load())
	}
}

func TestCentrifugoServerEntry(t *testing.T) {
	if err := CheckServerName("centrifugo"); err != nil {
		t.Fatal(err)
	}
	l := ServerList([]string{"fanwire", "centrifugo"}, "/bin/fw", "/peers")
	if c := l[1]; c.Dialect != loadtest.DialectCentrifugo || c.Launch == nil || c.Subcommand != "" || IsFanwire(c.Name) || !IsCentrifugo(c.Name) {
		t.Fatalf("centrifugo entry: %+v", c)
	}
	args, cleanup, err := l[1].Launch(&l[1], "127.0.0.1:1", "127.0.0.1:2")
	if err != nil || len(args) != 2 || args[0] != "--config" || l[1].APIKey == "" {
		t.Fatalf("launch: %v %v key %q", args, err, l[1].APIKey)
	}
	cleanup()
}

// Against the real Centrifugo (FANWIRE_BENCH_CENTRIFUGO=1; installs it into
// the cache the first time, minutes): subscribers over the dialect, a
// burst through the HTTP API, every delivery in offset order.
func TestCentrifugoLive(t *testing.T) {
	if os.Getenv("FANWIRE_BENCH_CENTRIFUGO") == "" {
		t.Skip("set FANWIRE_BENCH_CENTRIFUGO=1 to run against a real Centrifugo v6.9.1")
	}
	list := ServerList([]string{"centrifugo"}, "", "")
	ctx := context.Background()
	if err := PrepareCentrifugo(ctx, list, t.Logf); err != nil {
		t.Fatal(err)
	}
	p, err := Start(ctx, list[0], 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	topics := []string{"live.0", "live.1"}
	fleet, err := startFleet(ctx, FleetConfig{WSAddr: p.WSAddr, Paths: []string{"/ws?topics=live.0", "/ws?topics=live.1"},
		Conns: 100, Rate: 1000, Loops: 2, Ramp: 20 * time.Second, Dialect: p.Server.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	defer stopFleet(fleet)
	var idle IdleClients
	defer idle.Close()
	if err := idle.Open(ctx, IdleConfig{Addr: p.WSAddr, Path: "/ws?topics=live.0", Workers: 2, Dialect: p.Server.Dialect}, 10); err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{API: "http://" + p.HTTPAddr, Topics: topics, Size: 100, Workers: 2, APIKey: p.Server.APIKey, Expect: 50}
	defer pub.Close()
	ps := pub.Run(ctx, 50, time.Second)
	if ps.Errors > 0 || ps.Published != 50 {
		t.Fatalf("publish: %+v", ps)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fleet.Counters().Messages < ps.Expected && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c := fleet.Counters()
	if c.Messages != ps.Expected || c.Gaps != 0 || c.Dups != 0 || c.ClosedByServer != 0 {
		t.Fatalf("deliveries %d of %d, gaps %d dups %d closed %d", c.Messages, ps.Expected, c.Gaps, c.Dups, c.ClosedByServer)
	}
	if idle.Alive() != 10 {
		t.Fatalf("idle clients alive %d of 10", idle.Alive())
	}
}
