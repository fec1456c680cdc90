package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
)

// Headless Chromium over the fallback transports: a proxy of the test's
// own between the browser and the node refuses WebSocket upgrades (and, in
// case 3, buffers every response until the node ends it, as some
// corporate proxies do with streamed responses).

// fallbackProxy forwards HTTP connections to target, with faults.
type fallbackProxy struct {
	ln            net.Listener
	target        string
	refuseUpgrade bool // answer WebSocket upgrades 403
	buffer        bool // hold each response until the node closes it
	upgrades      atomic.Int64
	requests      sync.Map // path -> *atomic.Int64
}

func startFallbackProxy(t *testing.T, target string, refuseUpgrade, buffer bool) *fallbackProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fallbackProxy{ln: ln, target: target, refuseUpgrade: refuseUpgrade, buffer: buffer}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c, track)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *fallbackProxy) addr() string { return p.ln.Addr().String() }

func (p *fallbackProxy) count(path string) int64 {
	v, ok := p.requests.Load(path)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// serve handles one client connection: one request (the node answers
// every stream and script request with Connection: close).
func (p *fallbackProxy) serve(c net.Conn, track func(net.Conn)) {
	defer c.Close()
	br := bufio.NewReader(c)
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	reqLine, _, _ := strings.Cut(head.String(), "\r\n")
	if parts := strings.Fields(reqLine); len(parts) == 3 {
		path, _, _ := strings.Cut(parts[1], "?")
		v, _ := p.requests.LoadOrStore(path, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	if strings.Contains(strings.ToLower(head.String()), "upgrade: websocket") {
		p.upgrades.Add(1)
		if p.refuseUpgrade {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden") //nolint:errcheck
			return
		}
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	track(up)
	defer up.Close()
	if _, err := up.Write(head.Bytes()); err != nil {
		return
	}
	go func() { _, _ = io.Copy(up, br) }()
	if p.buffer {
		all, _ := io.ReadAll(up) // until the node ends the response
		_, _ = c.Write(all)
		return
	}
	_, _ = io.Copy(c, up)
}

// publishPaced publishes {"i":i} for i in 1..n on each topic, ~every 10 ms.
func publishPaced(t *testing.T, httpAddr string, n int, topics ...string) {
	for i := 1; i <= n; i++ {
		for _, topic := range topics {
			publishI(t, httpAddr, topic, i)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Case 2: the proxy refuses WebSocket upgrades: fanwire.js falls back to
// SSE and receives every message, contiguous.
func TestBrowserClientFallsBackToSSE(t *testing.T) {
	requireChromium(t)
	n := startNode(t, false, func(c *server.Config) { c.History = 1000 })
	proxy := startFallbackProxy(t, n.WSAddr(), true, false)
	p := openClientPageOpts(t, "", "ws://"+proxy.addr()+"/ws", `{"blockedAfter":2}`, "feed.s", "prices.s")
	const msgs = 100
	publishPaced(t, n.HTTPAddr(), msgs, "feed.s", "prices.s")
	p.waitUntil("every message over SSE", fmt.Sprintf("window.__log.length >= %d", 2*msgs), 60*time.Second)
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	log := p.log()
	checkExactlyOnce(t, log, "feed.s", msgs)
	checkExactlyOnce(t, log, "prices.s", msgs)
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	var transport string
	p.eval("window.__fw.transport + ' ' + window.__fw.state", &transport)
	if transport != "sse connected" || proxy.upgrades.Load() < 2 || proxy.count("/sse") != 1 || proxy.count("/poll") != 0 {
		t.Fatalf("transport/state %q after %d refused upgrades, %d SSE and %d poll requests; want sse connected on one stream",
			transport, proxy.upgrades.Load(), proxy.count("/sse"), proxy.count("/poll"))
	}
}

// Case 2b: over SSE (upgrades refused), fw.publish() is a cross-origin
// POST /publish (with its CORS preflight): the page gets the ack and its
// own message arrives on the stream with the ack's seq.
func TestBrowserClientPublishOverSSE(t *testing.T) {
	requireChromium(t)
	n := startNode(t, false, func(c *server.Config) { c.Auth.Namespaces = loadNamespaces(t, publishNamespaces) })
	proxy := startFallbackProxy(t, n.WSAddr(), true, false)
	p := openClientPageOpts(t, "", "ws://"+proxy.addr()+"/ws", `{"blockedAfter":2}`, "open.s")
	p.waitUntil("sse connected", `window.__fw.transport === "sse" && window.__fw.state === "connected"`, 30*time.Second)
	var ok bool
	p.eval(`(window.__fw.publish("open.s", {"i":1}).then((a) => { window.__ack = a }, (e) => { window.__ackErr = String(e) }), true)`, &ok)
	p.waitUntil("the publish ack", "window.__ack || window.__ackErr", 30*time.Second)
	var ack string
	p.eval("JSON.stringify(window.__ack || window.__ackErr)", &ack)
	if !strings.Contains(ack, `"type":"published"`) || !strings.Contains(ack, `"seq":1`) {
		t.Fatalf("publish over SSE answered %s", ack)
	}
	p.waitUntil("the message on the stream", "window.__log.length >= 1", 30*time.Second)
	checkExactlyOnce(t, p.log(), "open.s", 1)
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	if proxy.count("/publish") < 1 || proxy.count("/poll") != 0 {
		t.Fatalf("%d POST /publish requests and %d polls through the proxy", proxy.count("/publish"), proxy.count("/poll"))
	}
}

// Case 3: the proxy also buffers streamed responses: the SSE stream never
// shows an event, and the client ends on long-polling, still contiguous.
func TestBrowserClientFallsBackToPoll(t *testing.T) {
	requireChromium(t)
	n := startNode(t, false, func(c *server.Config) { c.History = 1000 })
	proxy := startFallbackProxy(t, n.WSAddr(), true, true)
	p := openClientPageOpts(t, "", "ws://"+proxy.addr()+"/ws", `{"blockedAfter":2,"streamOpenTimeout":2000}`, "feed.p", "prices.p")
	const msgs = 100
	publishPaced(t, n.HTTPAddr(), msgs, "feed.p", "prices.p")
	p.waitUntil("every message over long-polling", fmt.Sprintf("window.__log.length >= %d", 2*msgs), 90*time.Second)
	time.Sleep(300 * time.Millisecond)
	log := p.log()
	checkExactlyOnce(t, log, "feed.p", msgs)
	checkExactlyOnce(t, log, "prices.p", msgs)
	if errs := p.errors(); errs != "[]" {
		t.Fatalf("client errors: %s", errs)
	}
	var transport string
	p.eval("window.__fw.transport", &transport)
	polls := proxy.count("/poll")
	if transport != "poll" || proxy.count("/sse") < 1 || polls < 2 {
		t.Fatalf("transport %q after %d SSE and %d poll requests; want poll", transport, proxy.count("/sse"), polls)
	}
	t.Logf("%d refused upgrades, %d buffered SSE streams, %d polls for %d messages", proxy.upgrades.Load(), proxy.count("/sse"), polls, 2*msgs)
}

// nativeSSEPage opens an EventSource on ?url= without fanwire.js and
// records every delivery and each event's lastEventId.
const nativeSSEPage = `<!doctype html>
<meta charset="utf-8"><title>native EventSource</title>
<script>
const p = new URLSearchParams(location.search);
Object.assign(window, { __log: [], __opens: 0, __errors: 0 });
const es = new EventSource(p.get("url"));
for (const name of ["message", "snapshot"]) {
  es.addEventListener(name, (e) => { const m = JSON.parse(e.data); __log.push({ topic: m.topic, seq: m.seq, data: m.data }); });
}
es.addEventListener("subscribed", () => __opens++);
es.onerror = () => __errors++;
</script>`

// A native EventSource (no fanwire.js) on a two-topic stream through a
// proxy that cuts the connection now and then: Chromium reconnects by
// itself with Last-Event-ID, and every seq of both topics arrives once.
func TestBrowserNativeEventSourceResumes(t *testing.T) {
	chromium := requireChromium(t)
	n := startNode(t, false, func(c *server.Config) { c.History = 1000 })
	proxy := startCutProxy(t, n.WSAddr())
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, nativeSSEPage) //nolint:errcheck
	}))
	t.Cleanup(pages.Close)
	ctx := newBrowser(t, chromium, 3*time.Minute)
	stream := "http://" + proxy.addr() + "/sse?topics=feed.n1,feed.n2"
	if err := chromedp.Run(ctx, chromedp.Navigate(pages.URL+"/?"+url.Values{"url": {stream}}.Encode())); err != nil {
		t.Fatal(err)
	}
	p := &browserPage{t: t, ctx: ctx}
	p.waitUntil("the stream", "window.__opens >= 1", 60*time.Second)

	const msgs = 120 // per topic, ~4 s, with a cut every ~1.3 s
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(1300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				proxy.cutAll()
			}
		}
	}()
	for i := 1; i <= msgs; i++ {
		publishI(t, n.HTTPAddr(), "feed.n1", i)
		publishI(t, n.HTTPAddr(), "feed.n2", i)
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	<-done
	p.waitUntil("every message after the cuts", fmt.Sprintf("window.__log.length >= %d", 2*msgs), 90*time.Second)
	time.Sleep(500 * time.Millisecond)
	var s string
	p.eval("JSON.stringify(window.__log)", &s)
	var log []delivery
	if err := json.Unmarshal([]byte(s), &log); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, log, "feed.n1", msgs)
	checkExactlyOnce(t, log, "feed.n2", msgs)
	var opens int
	p.eval("window.__opens", &opens)
	if opens < 2 || n.Stats().Replays == 0 {
		t.Fatalf("%d streams, %d replays: the cuts did not make EventSource resume", opens, n.Stats().Replays)
	}
	t.Logf("%d streams (EventSource reconnects), %d proxied connections, %d replays", opens, proxy.accepted.Load(), n.Stats().Replays)
}
