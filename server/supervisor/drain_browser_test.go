package supervisor_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server/internal/browsertest"
	"github.com/fanwire/fanwire/server/internal/faultproxy"
	"github.com/fanwire/fanwire/server/js"
)

// drainPage runs ?n= Fanwire clients (on ?transport= only) on ?topic= in one
// page, spread over the ?ws= URLs (comma-separated); each records its
// deliveries and the times of its state changes.
const drainPage = `<!doctype html>
<meta charset="utf-8"><title>fanwire.js drain test</title>
<script type="module">
const p = new URLSearchParams(location.search);
window.__clients = [];
try {
  const { Fanwire } = await import(p.get("src"));
  for (let i = 0; i < Number(p.get("n")); i++) {
    const rec = { seqs: [], resets: 0, states: [] };
    const urls = p.get("ws").split(",");
    const fw = new Fanwire(urls[i % urls.length], { transports: [p.get("transport")], backoffBase: 200, backoffCap: 2000 });
    fw.on("state", (s) => rec.states.push({ t: performance.now(), state: s.state, code: s.code, reason: s.reason, delay: s.delay }));
    fw.subscribe(p.get("topic"), { onMessage: (data, m) => rec.seqs.push(m.seq), onReset: () => rec.resets++ });
    __clients.push(rec);
  }
} catch (e) {
  window.__loadError = String(e);
}
</script>`

type drainState struct {
	T      float64 `json:"t"` // ms, performance.now()
	State  string  `json:"state"`
	Code   int     `json:"code"`
	Reason string  `json:"reason"`
	Delay  float64 `json:"delay"`
}

type drainClient struct {
	Seqs   []uint64     `json:"seqs"`
	Resets int          `json:"resets"`
	States []drainState `json:"states"`
}

// Case 6 of issue 13: a worker of a --workers 2 node drains (SIGTERM): its
// fanwire.js clients are closed with 1001 and a hint drawn over the drain
// window, reconnect when told (to the other worker, or the restarted one:
// the supervisor restarts it on the same port), spread over the window, and
// resume without a gap while publishing goes on.
func TestBrowserDrainSpreadsReconnects(t *testing.T) {
	testDrainSpread(t, "websocket")
}

func testDrainSpread(t *testing.T, transport string) {
	chromium := browsertest.RequireChromium(t)
	const (
		clients = 40
		window  = 3 * time.Second
		topic   = "drain.spread"
	)
	n := startNode(t, "--workers", "2", "--drain-window", window.String())
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == js.Path {
			w.Header().Set("Content-Type", js.ContentType)
			w.Write(js.Source) //nolint:errcheck
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, drainPage) //nolint:errcheck
	}))
	defer pages.Close()
	ctx := browsertest.New(t, chromium, 2*time.Minute)
	wsURLs := n.ws
	if transport != "websocket" {
		// Chromium holds at most 6 HTTP/1.1 connections per host:port, and
		// an SSE stream is one: spread the clients over front ports.
		var fronts []string
		for range (clients + 5) / 6 {
			px, err := faultproxy.Start(strings.TrimSuffix(strings.TrimPrefix(n.ws, "ws://"), "/ws"))
			if err != nil {
				t.Fatal(err)
			}
			defer px.Close()
			fronts = append(fronts, "ws://"+px.Addr()+"/ws")
		}
		wsURLs = strings.Join(fronts, ",")
	}
	q := url.Values{"src": {pages.URL + js.Path}, "ws": {wsURLs}, "topic": {topic}, "n": {strconv.Itoa(clients)}, "transport": {transport}}
	if err := chromedp.Run(ctx, chromedp.Navigate(pages.URL+"/?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	read := func() []drainClient {
		var raw string
		if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__loadError ? "" : JSON.stringify(window.__clients)`, &raw)); err != nil {
			t.Fatal(err)
		}
		var cs []drainClient
		if raw == "" || json.Unmarshal([]byte(raw), &cs) != nil {
			t.Fatal("the page did not load fanwire.js")
		}
		return cs
	}
	waitAll := func(what string, timeout time.Duration, ok func(drainClient) bool) []drainClient {
		deadline := time.Now().Add(timeout)
		for {
			cs := read()
			good := 0
			for _, c := range cs {
				if ok(c) {
					good++
				}
			}
			if len(cs) == clients && good == clients {
				return cs
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %d of %d clients", what, good, clients)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Every client subscribed: the first publish reaches all of them.
	var last uint64
	waitAll("first delivery", 60*time.Second, func(c drainClient) bool {
		if len(c.Seqs) == 0 {
			last = n.publish(topic, `{"warmup":true}`)
			return false
		}
		return true
	})
	// The worker with more clients drains.
	var victim workerStatus
	eventually(t, "both workers counting the clients", func() bool {
		ws := n.workers()
		sum := int64(0)
		for _, w := range ws {
			if w.Node != nil {
				sum += w.Node.Stats.Conns
				if victim.Node == nil || w.Node.Stats.Conns > victim.Node.Stats.Conns {
					victim = w
				}
			}
		}
		return sum == clients
	})
	drained := int(victim.Node.Stats.Conns)
	t.Logf("SIGTERM worker %d (pid %d) holding %d of %d clients; drain window %v", victim.ID, victim.PID, drained, clients, window)

	var (
		pubMu   sync.Mutex
		stopPub = make(chan struct{})
		pubDone = make(chan struct{})
	)
	go func() { // publishing goes on through the drain
		defer close(pubDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPub:
				return
			case <-tick.C:
				resp, err := http.Post(n.control+"/publish/"+topic, "application/json", strings.NewReader(`{"during":"drain"}`))
				if err != nil {
					continue
				}
				var r struct{ Seq uint64 }
				if json.NewDecoder(resp.Body).Decode(&r) == nil && resp.StatusCode == 200 {
					pubMu.Lock()
					last = max(last, r.Seq)
					pubMu.Unlock()
				}
				resp.Body.Close()
			}
		}
	}()
	if err := syscall.Kill(victim.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	isDrained := func(c drainClient) bool {
		return slices.ContainsFunc(c.States, func(s drainState) bool { return s.State == "disconnected" && s.Code == 1001 })
	}
	// Every drained client reconnects: after its 1001, a "connected" again.
	deadline := time.Now().Add(window + 30*time.Second)
	var cs []drainClient
	for {
		cs = read()
		k, back := 0, 0
		for _, c := range cs {
			if isDrained(c) {
				k++
				if reconnectedAfterDrain(c) != nil {
					back++
				}
			}
		}
		if k >= drained && back == k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d drained clients back", window+30*time.Second, back, k)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stopPub)
	<-pubDone
	final := n.publish(topic, `{"final":true}`)
	cs = waitAll("every message", 30*time.Second, func(c drainClient) bool { return len(c.Seqs) > 0 && c.Seqs[len(c.Seqs)-1] == final })

	// The spread: when each drained client came back, from the first 1001.
	var t0 float64 = -1
	for _, c := range cs {
		for _, s := range c.States {
			if s.State == "disconnected" && s.Code == 1001 && (t0 < 0 || s.T < t0) {
				t0 = s.T
			}
		}
	}
	hintRe := regexp.MustCompile(`reconnect in (\d+)ms`)
	var back, hints, late []float64
	redrained, failed := 0, 0
	var perClient []string
	for _, c := range cs {
		if !isDrained(c) {
			continue
		}
		r := reconnectedAfterDrain(c)
		m := hintRe.FindStringSubmatch(r.close.Reason)
		if m == nil {
			t.Fatalf("1001 without a reconnect hint: %q", r.close.Reason)
		}
		hint, _ := strconv.ParseFloat(m[1], 64)
		if r.connected.T-r.close.T < hint-5 {
			t.Errorf("a client reconnected after %.0f ms, before its hint of %.0f ms", r.connected.T-r.close.T, hint)
		}
		back = append(back, r.connected.T-t0)
		hints = append(hints, hint)
		late = append(late, r.connected.T-r.close.T-hint)
		redrained += r.extraDrops
		failed += r.failed
		perClient = append(perClient, fmt.Sprintf("hint %4.0f ms, back after %4.0f ms, %d failed attempts first", hint, r.connected.T-r.close.T, r.failed))
	}
	slices.Sort(back)
	slices.Sort(hints)
	slices.Sort(late)
	win := float64(window / time.Millisecond)
	var hist [10]int
	for _, b := range back {
		hist[min(int(10*b/win), 9)]++
	}
	slices.Sort(perClient)
	t.Logf("per drained client:\n%s", strings.Join(perClient, "\n"))
	t.Logf("%d drained clients; reconnect time after the first 1001 (ms): min %.0f p50 %.0f max %.0f (window %.0f); hints: min %.0f p50 %.0f max %.0f; reconnect minus hint: min %.0f p50 %.0f max %.0f; failed attempts before reconnecting: %d; extra drops after a reconnect: %d",
		len(back), back[0], back[len(back)/2], back[len(back)-1], win, hints[0], hints[len(hints)/2], hints[len(hints)-1],
		late[0], late[len(late)/2], late[len(late)-1], failed, redrained)
	var hs []string
	for i, h := range hist {
		hs = append(hs, fmt.Sprintf("%4.0f-%4.0fms %s %d", float64(i)*win/10, float64(i+1)*win/10, strings.Repeat("#", h), h))
	}
	t.Logf("histogram of reconnects over the window:\n%s", strings.Join(hs, "\n"))
	if spread := back[len(back)-1] - back[0]; spread < 0.3*win {
		t.Errorf("reconnects spread over %.0f ms, less than 30%% of the %.0f ms window", spread, win)
	}
	for i, h := range hist {
		if h > max(len(back)/2, 3) {
			t.Errorf("%d of %d reconnects in slice %d of the window (more than half)", h, len(back), i)
		}
	}
	// Every client, drained or not, saw every seq exactly once, in order.
	for i, c := range cs {
		if c.Resets != 0 {
			t.Errorf("client %d: %d resets", i, c.Resets)
		}
		for j := 1; j < len(c.Seqs); j++ {
			if c.Seqs[j] != c.Seqs[j-1]+1 {
				t.Errorf("client %d: seq %d after %d", i, c.Seqs[j], c.Seqs[j-1])
				break
			}
		}
	}
	eventually(t, "the drained worker restarted", func() bool {
		for _, w := range n.workers() {
			if w.ID == victim.ID {
				return w.Ready && w.PID != victim.PID
			}
		}
		return false
	})
}

type drainReturn struct {
	close, connected drainState
	failed           int // connect attempts that failed between the 1001 and the reconnect
	extraDrops       int // disconnects after the first reconnect (e.g. landed on the dying worker)
}

// reconnectedAfterDrain finds a client's 1001 and the first "connected" after it.
func reconnectedAfterDrain(c drainClient) *drainReturn {
	for i, s := range c.States {
		if s.State != "disconnected" || s.Code != 1001 {
			continue
		}
		failed := 0
		for j := i + 1; j < len(c.States); j++ {
			if c.States[j].State == "disconnected" {
				failed++
			}
			if c.States[j].State == "connected" {
				r := &drainReturn{close: s, connected: c.States[j], failed: failed}
				for _, x := range c.States[j+1:] {
					if x.State == "disconnected" {
						r.extraDrops++
					}
				}
				return r
			}
		}
		return nil
	}
	return nil
}

// The same over SSE: the close event's hint spreads the streams' reconnects
// the same way.
func TestBrowserDrainSpreadsReconnectsSSE(t *testing.T) {
	testDrainSpread(t, "sse")
}
