package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/js"
)

// The fanwire.js browser tests: a page of the test's own loads fanwire.js,
// subscribes, and records every delivery (topic, seq, epoch, meta) in
// window.__log; the Go side publishes through the control API and checks
// that the app saw every seq exactly once, in order.

// clientTestPage loads the client from ?src=, connects to ?ws= and subscribes
// to ?topics=. It records everything the app is told.
const clientTestPage = `<!doctype html>
<meta charset="utf-8"><title>fanwire.js test</title>
<script type="module">
const p = new URLSearchParams(location.search);
Object.assign(window, { __log: [], __resets: [], __errors: [], __states: [], __subscribed: [] });
try {
  const { Fanwire } = await import(p.get("src"));
  const fw = new Fanwire(p.get("ws"), { backoffBase: 200, backoffCap: 2000, hintJitter: 50, ...JSON.parse(p.get("opts") || "{}") });
  fw.on("state", (s) => __states.push(s));
  fw.on("error", (e) => __errors.push(e));
  for (const topic of p.get("topics").split(",")) {
    fw.subscribe(topic, {
      onMessage: (data, m) => __log.push({ topic: m.topic, seq: m.seq, epoch: m.epoch, snapshot: m.snapshot, conflated: m.conflated, data }),
      onReset: (r) => __resets.push(r),
      onSubscribed: (s) => __subscribed.push(s),
    });
  }
  window.__fw = fw;
} catch (e) {
  window.__loadError = String(e);
}
</script>`

// delivery is one entry of window.__log.
type delivery struct {
	Topic    string          `json:"topic"`
	Seq      uint64          `json:"seq"`
	Epoch    string          `json:"epoch"`
	Snapshot bool            `json:"snapshot"`
	Data     json.RawMessage `json:"data"`
}

type resetInfo struct {
	Topic         string `json:"topic"`
	From          uint64 `json:"from"`
	Epoch         string `json:"epoch"`
	PreviousEpoch string `json:"previousEpoch"`
	LastSeq       uint64 `json:"lastSeq"`
}

// browserPage is a headless Chromium tab on the test page.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

// openClientPage serves the test page (and a copy of fanwire.js at
// /fanwire.js) from a server of its own and opens it with the given query.
func openClientPage(t *testing.T, src, wsURL string, topics ...string) *browserPage {
	t.Helper()
	return openClientPageOpts(t, src, wsURL, "", topics...)
}

// openClientPageOpts is openClientPage with Fanwire options (JSON) of its own.
func openClientPageOpts(t *testing.T, src, wsURL, fwOpts string, topics ...string) *browserPage {
	t.Helper()
	chromium := requireChromium(t)
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == js.Path {
			w.Header().Set("Content-Type", js.ContentType)
			w.Write(js.Source) //nolint:errcheck
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, clientTestPage) //nolint:errcheck
	}))
	t.Cleanup(pages.Close)
	if src == "" {
		src = pages.URL + js.Path
	}
	ctx := newBrowser(t, chromium, 3*time.Minute)
	q := url.Values{"src": {src}, "ws": {wsURL}, "topics": {strings.Join(topics, ",")}, "opts": {fwOpts}}
	if err := chromedp.Run(ctx, chromedp.Navigate(pages.URL+"/?"+q.Encode())); err != nil {
		t.Fatalf("open test page: %v", err)
	}
	p := &browserPage{t: t, ctx: ctx}
	p.waitUntil("all topics subscribed", fmt.Sprintf("window.__loadError || window.__subscribed.length >= %d", len(topics)), 60*time.Second)
	var loadErr string
	p.eval("window.__loadError || ''", &loadErr)
	if loadErr != "" {
		t.Fatalf("fanwire.js did not load from %s: %s", src, loadErr)
	}
	return p
}

func (p *browserPage) eval(expr string, out any) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, chromedp.Evaluate(expr, out)); err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// waitUntil polls a JavaScript condition; generous timeouts, no timing asserts.
func (p *browserPage) waitUntil(what, cond string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		p.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var states, errs string
			p.eval("JSON.stringify(window.__states.slice(-10))", &states)
			p.eval("JSON.stringify(window.__errors.slice(-10))", &errs)
			p.t.Fatalf("timed out after %v waiting for %s (%s); last states %s; errors %s", timeout, what, cond, states, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *browserPage) log() []delivery {
	var s string
	p.eval("JSON.stringify(window.__log)", &s)
	var out []delivery
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		p.t.Fatal(err)
	}
	return out
}

func (p *browserPage) errors() string {
	var s string
	p.eval("JSON.stringify(window.__errors)", &s)
	return s
}

// publishHTTP publishes {"i":i} through the control API.
func publishI(t *testing.T, httpAddr, topic string, i int) uint64 {
	resp, err := http.Post("http://"+httpAddr+"/publish/"+topic, "application/json", strings.NewReader(`{"i":`+strconv.Itoa(i)+`}`))
	if err != nil {
		t.Errorf("publish %s %d: %v", topic, i, err)
		return 0
	}
	defer resp.Body.Close()
	var r struct{ Seq uint64 }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Errorf("publish %s %d: status %d, %v", topic, i, resp.StatusCode, err)
	}
	return r.Seq
}

// checkExactlyOnce checks that the app saw seq 1..n of topic, each once, in
// order, with data {"i":seq}, all in one epoch.
func checkExactlyOnce(t *testing.T, log []delivery, topic string, n int) {
	t.Helper()
	var seqs []uint64
	epoch := ""
	for _, d := range log {
		if d.Topic != topic {
			continue
		}
		if epoch == "" {
			epoch = d.Epoch
		}
		if d.Epoch != epoch || string(d.Data) != `{"i":`+strconv.FormatUint(d.Seq, 10)+`}` {
			t.Fatalf("%s seq %d: epoch %q (first %q), data %s", topic, d.Seq, d.Epoch, epoch, d.Data)
		}
		seqs = append(seqs, d.Seq)
	}
	if len(seqs) != n {
		t.Fatalf("%s: the app got %d deliveries, want %d: %v", topic, len(seqs), n, seqs)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("%s: delivery %d has seq %d, want %d (all: %v)", topic, i, s, i+1, seqs)
		}
	}
}

// Case 1: fanwire.js on WebSocket, loaded cross-origin from the WebSocket
// listener itself; every message in order.
func TestBrowserClientInOrder(t *testing.T) {
	requireChromium(t)
	n := startNode(t, false, nil)
	p := openClientPage(t, "http://"+n.WSAddr()+js.Path, "ws://"+n.WSAddr()+"/ws", "feed.a", "prices.a")
	const msgs = 100
	for i := 1; i <= msgs; i++ {
		publishI(t, n.HTTPAddr(), "feed.a", i)
		publishI(t, n.HTTPAddr(), "prices.a", i)
	}
	p.waitUntil("every message", fmt.Sprintf("window.__log.length >= %d", 2*msgs), 60*time.Second)
	log := p.log()
	checkExactlyOnce(t, log, "feed.a", msgs)
	checkExactlyOnce(t, log, "prices.a", msgs)
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	var transport string
	p.eval("window.__fw.transport + ' ' + window.__fw.state", &transport)
	if transport != "websocket connected" {
		t.Fatalf("transport/state %q", transport)
	}
}

// Case 4: a proxy between Chromium and the node cuts every connection every
// ~300 ms while publishing continues; the app sees every seq exactly once.
func TestBrowserClientSurvivesCuts(t *testing.T) {
	requireChromium(t)
	n := startNode(t, false, func(c *server.Config) { c.History = 1000 })
	proxy := startCutProxy(t, n.WSAddr())
	p := openClientPage(t, "http://"+n.HTTPAddr()+js.Path, "ws://"+proxy.addr()+"/ws", "feed.cut", "prices.cut")

	const msgs = 150 // per topic, at ~50/s: 3 s of publishing, about 10 cuts
	stopCuts := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Add(1)
	go func() {
		defer cutter.Done()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopCuts:
				return
			case <-tick.C:
				proxy.cutAll()
			}
		}
	}()
	for i := 1; i <= msgs; i++ {
		publishI(t, n.HTTPAddr(), "feed.cut", i)
		publishI(t, n.HTTPAddr(), "prices.cut", i)
		time.Sleep(20 * time.Millisecond)
	}
	close(stopCuts)
	cutter.Wait()
	p.waitUntil("every message after the cuts", fmt.Sprintf("window.__log.length >= %d", 2*msgs), 90*time.Second)
	time.Sleep(300 * time.Millisecond) // anything extra (a duplicate) would arrive now
	log := p.log()
	checkExactlyOnce(t, log, "feed.cut", msgs)
	checkExactlyOnce(t, log, "prices.cut", msgs)
	var resets string
	p.eval("JSON.stringify(window.__resets)", &resets)
	if resets != "[]" {
		t.Fatalf("resets although history held every missed message: %s", resets)
	}
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	cuts, conns, replays := proxy.cuts.Load(), proxy.accepted.Load(), n.Stats().Replays
	if conns < 4 || replays == 0 {
		t.Fatalf("%d connections through the proxy (%d cut), %d replays: the test did not exercise resumes", conns, cuts, replays)
	}
	t.Logf("%d connections through the proxy, %d cut mid-stream, %d resumes replayed missed messages", conns, cuts, replays)
}

// Case 5: the node is restarted on the same port (new epoch): the app gets
// an honest reset, then the live stream of the new epoch.
func TestBrowserClientNodeRestart(t *testing.T) {
	requireChromium(t)
	newNode := func(listen string) *server.Node {
		cfg := server.DefaultConfig()
		cfg.Listen, cfg.HTTPListen = listen, "127.0.0.1:0"
		cfg.Loops = 2
		cfg.DrainWindow = 300 * time.Millisecond
		cfg.Logger = slog.New(slog.DiscardHandler)
		n, err := server.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	shutdown := func(n *server.Node) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	a := newNode("127.0.0.1:0")
	addr := a.WSAddr()
	p := openClientPage(t, "", "ws://"+addr+"/ws", "feed.r")
	const before, after = 20, 10
	for i := 1; i <= before; i++ {
		publishI(t, a.HTTPAddr(), "feed.r", i)
	}
	p.waitUntil("the first node's messages", fmt.Sprintf("window.__log.length >= %d", before), 60*time.Second)
	shutdown(a)

	b := newNode(addr)
	defer shutdown(b)
	p.waitUntil("a reset from the new node", "window.__resets.length >= 1", 60*time.Second)
	for i := 1; i <= after; i++ {
		publishI(t, b.HTTPAddr(), "feed.r", i)
	}
	p.waitUntil("the new node's messages", fmt.Sprintf("window.__log.length >= %d", before+after), 60*time.Second)
	time.Sleep(300 * time.Millisecond)

	log := p.log()
	checkExactlyOnce(t, log[:before], "feed.r", before)
	checkExactlyOnce(t, log[before:], "feed.r", after)
	oldEpoch, newEpoch := log[0].Epoch, log[before].Epoch
	if oldEpoch == "" || newEpoch == oldEpoch {
		t.Fatalf("epochs %q then %q: want two different ones", oldEpoch, newEpoch)
	}
	var resetsJSON string
	p.eval("JSON.stringify(window.__resets)", &resetsJSON)
	var resets []resetInfo
	if err := json.Unmarshal([]byte(resetsJSON), &resets); err != nil {
		t.Fatal(err)
	}
	want := resetInfo{Topic: "feed.r", From: 1, Epoch: newEpoch, PreviousEpoch: oldEpoch, LastSeq: before}
	if len(resets) != 1 || resets[0] != want {
		t.Fatalf("resets %s, want one %+v", resetsJSON, want)
	}
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	if st := b.Stats(); st.Resets != 1 {
		t.Fatalf("new node counted %d resets, want 1", st.Resets)
	}
}

// cutProxy forwards TCP to target and can cut every connection at once.
type cutProxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted atomic.Int64
	cuts     atomic.Int64
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cutAll() })
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cutAll closes both ends of every proxied connection (mid-stream: no close frame).
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) > 0 {
		p.cuts.Add(int64(len(p.conns) / 2))
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
