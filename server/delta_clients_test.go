package server_test

// Fossil deltas over real sockets: gorilla clients reconstruct every
// message from the deltas they receive (fdelta.Apply) and compare it with
// what was published, in seq order.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/fdelta"
	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/gorilla/websocket"
)

// priceTick is a price board whose one moving row changes per tick, with
// bytes that need escaping in the delta string (quotes, backslash, UTF-8).
func priceTick(i int) []byte {
	b := []byte(`{"venue":"demo \"quoted\" \\ é","board":[`)
	for k := 0; k < 8; k++ {
		p := 64000 + k*1000
		if k == i%8 {
			p += i
		}
		b = fmt.Appendf(b, `{"symbol":"SYM-%d","price":%d.%02d,"note":"ü%d","ts":1732500000000},`, k, p, i%100, i%3)
	}
	return append(b[:len(b)-1], "]}"...)
}

// deltaClient is what fanwire.js does: keep each topic's previous data and
// apply deltas to it.
type deltaClient struct {
	t       *testing.T
	ws      *websocket.Conn
	prev    map[string][]byte
	lastSeq map[string]uint64
	full    int // full deliveries
	deltas  int // delta deliveries
}

func dialDelta(t *testing.T, n *server.Node, query string, compress bool) *deltaClient {
	t.Helper()
	d := websocket.Dialer{EnableCompression: compress}
	ws, _, err := d.Dial("ws://"+n.WSAddr()+"/ws"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &deltaClient{t: t, ws: ws, prev: map[string][]byte{}, lastSeq: map[string]uint64{}}
}

// readRaw returns the next message's fields.
func (dc *deltaClient) readRaw() map[string]json.RawMessage {
	dc.t.Helper()
	_ = dc.ws.SetReadDeadline(time.Now().Add(frameTimeout))
	_, msg, err := dc.ws.ReadMessage()
	if err != nil {
		dc.t.Fatalf("read: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		dc.t.Fatalf("%q: %v", clip(msg), err)
	}
	return m
}

// next reads a delivery and returns its topic, seq and reconstructed data.
func (dc *deltaClient) next() (string, uint64, []byte) {
	dc.t.Helper()
	m := dc.readRaw()
	var topic string
	var seq uint64
	_ = json.Unmarshal(m["topic"], &topic)
	_ = json.Unmarshal(m["seq"], &seq)
	data := []byte(m["data"])
	if m["delta"] != nil {
		if string(m["delta"]) != `"fossil"` {
			dc.t.Fatalf("delta %s", m["delta"])
		}
		var s string
		if err := json.Unmarshal(m["data"], &s); err != nil {
			dc.t.Fatalf("delta data %s: %v", m["data"], err)
		}
		patch := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				dc.t.Fatalf("delta string has U+%04X: want one byte per character", r)
			}
			patch = append(patch, byte(r))
		}
		if dc.lastSeq[topic]+1 != seq {
			dc.t.Fatalf("delta for seq %d of %s, but the client holds seq %d", seq, topic, dc.lastSeq[topic])
		}
		var err error
		if data, err = fdelta.Apply(dc.prev[topic], patch); err != nil {
			dc.t.Fatalf("seq %d of %s: apply: %v", seq, topic, err)
		}
		dc.deltas++
	} else {
		dc.full++
	}
	dc.prev[topic], dc.lastSeq[topic] = data, seq
	return topic, seq, data
}

func (dc *deltaClient) subscribe(op string) map[string]json.RawMessage {
	dc.t.Helper()
	if err := dc.ws.WriteMessage(websocket.TextMessage, []byte(op)); err != nil {
		dc.t.Fatal(err)
	}
	return dc.readRaw()
}

func deltaNode(t *testing.T, edit func(*server.Config)) *server.Node {
	return startNode(t, false, func(c *server.Config) {
		c.Delta.Topics = "prices.*"
		if edit != nil {
			edit(c)
		}
	})
}

// TestDeltaSubscribers: two delta subscribers (op and URL) and one plain one
// on the same topic; deltas reconstruct every message, the first delivery
// is full, the plain subscriber never sees a delta.
func TestDeltaSubscribers(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", compress), func(t *testing.T) {
			n := deltaNode(t, func(c *server.Config) { c.Compression.MinSize = 1; c.LastValue = ""; c.History = 0 })
			byOp := dialDelta(t, n, "", compress)
			ack := byOp.subscribe(`{"op":"subscribe","topics":["prices.BTC","news"],"delta":"fossil"}`)
			if string(ack["delta"]) != `["prices.BTC"]` {
				t.Fatalf("ack delta %s, want [\"prices.BTC\"] (news is not allowed deltas)", ack["delta"])
			}
			byURL := dialDelta(t, n, "?topics=prices.BTC&delta=fossil", compress)
			plain := dialDelta(t, n, "?topics=prices.BTC", compress)
			time.Sleep(50 * time.Millisecond) // the URL subscriptions are in place before the 101; nothing else to wait for
			const count = 60
			for i := 1; i <= count; i++ {
				if _, _, err := n.Publish("prices.BTC", priceTick(i)); err != nil {
					t.Fatal(err)
				}
				if i%10 == 5 {
					_, _, _ = n.Publish("news", priceTick(i))
				}
			}
			for _, dc := range []*deltaClient{byOp, byURL, plain} {
				for i := 1; i <= count; i++ {
					topic, seq, data := dc.next()
					if topic == "news" {
						i--
						continue
					}
					if seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
						t.Fatalf("seq %d: got seq %d data %q, want %q", i, seq, data, priceTick(i))
					}
				}
			}
			if byOp.full != 1+count/10 || byOp.deltas != count-1 {
				t.Errorf("op subscriber: %d full, %d deltas; want the first and news full, %d deltas", byOp.full, byOp.deltas, count-1)
			}
			if byURL.full != 1 || byURL.deltas != count-1 {
				t.Errorf("URL subscriber: %d full, %d deltas; want 1 full, %d deltas", byURL.full, byURL.deltas, count-1)
			}
			if plain.deltas != 0 {
				t.Errorf("plain subscriber got %d deltas", plain.deltas)
			}
		})
	}
}

// TestDeltaAfterCatchUp: a snapshot (last value) is followed by a full
// message, then deltas; a resubscribe without delta turns them off.
func TestDeltaAfterCatchUp(t *testing.T) {
	n := deltaNode(t, nil) // default config: prices.* keep a last value, history on
	for i := 1; i <= 3; i++ {
		_, _, _ = n.Publish("prices.ETH", priceTick(i))
	}
	dc := dialDelta(t, n, "", false)
	if ack := dc.subscribe(`{"op":"subscribe","topics":["prices.ETH"],"delta":"fossil"}`); string(ack["delta"]) != `["prices.ETH"]` {
		t.Fatalf("ack %v", ack)
	}
	m := dc.readRaw()
	if string(m["snapshot"]) != "true" || m["delta"] != nil {
		t.Fatalf("want the snapshot in full, got %v", m)
	}
	dc.prev["prices.ETH"], dc.lastSeq["prices.ETH"] = m["data"], 3
	for i := 4; i <= 8; i++ {
		_, _, _ = n.Publish("prices.ETH", priceTick(i))
	}
	for i := 4; i <= 8; i++ {
		if _, seq, data := dc.next(); seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
			t.Fatalf("seq %d: %d %q", i, seq, data)
		}
	}
	if dc.full != 1 || dc.deltas != 4 {
		t.Errorf("after the snapshot: %d full, %d deltas; want 1 full then 4 deltas", dc.full, dc.deltas)
	}
	// Resume with since: the replay is full, the first live message too.
	dc2 := dialDelta(t, n, "?topics=prices.ETH&since=prices.ETH:5&delta=fossil", false)
	for i := 9; i <= 10; i++ {
		_, _, _ = n.Publish("prices.ETH", priceTick(i))
	}
	for i := 6; i <= 10; i++ {
		if _, seq, data := dc2.next(); seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
			t.Fatalf("resumed seq %d: %d %q", i, seq, data)
		}
	}
	if dc2.full != 4 || dc2.deltas != 1 {
		t.Errorf("resumed: %d full, %d deltas; want the 3 replayed and the first live full, then 1 delta", dc2.full, dc2.deltas)
	}
	for i := 9; i <= 10; i++ { // sent to dc meanwhile
		if _, seq, data := dc.next(); seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
			t.Fatalf("seq %d: %d %q", i, seq, data)
		}
	}
	// Subscribing again without "delta" switches deltas off.
	if ack := dc.subscribe(`{"op":"subscribe","topics":["prices.ETH"]}`); ack["delta"] != nil {
		t.Fatalf("ack %v", ack)
	}
	dc.full, dc.deltas = 0, 0
	_, _, _ = n.Publish("prices.ETH", priceTick(11))
	_, _, _ = n.Publish("prices.ETH", priceTick(12))
	for i := 11; i <= 12; i++ {
		if _, seq, data := dc.next(); seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
			t.Fatalf("seq %d: %d %q", i, seq, data)
		}
	}
	if dc.deltas != 0 {
		t.Errorf("deltas switched off, still got %d", dc.deltas)
	}
}

// TestDeltaRefused: a node without --delta, and an unknown encoding.
func TestDeltaRefused(t *testing.T) {
	n := startNode(t, false, nil)
	dc := dialDelta(t, n, "", false)
	if ack := dc.subscribe(`{"op":"subscribe","topics":["prices.BTC"],"delta":"fossil"}`); string(ack["delta"]) != `[]` {
		t.Fatalf("ack %v, want \"delta\":[]", ack)
	}
	if e := dc.subscribe(`{"op":"subscribe","topics":["prices.BTC"],"delta":"xdelta"}`); string(e["code"]) != `"bad_delta"` {
		t.Fatalf("reply %v, want bad_delta", e)
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+n.WSAddr()+"/ws?topics=a&delta=zstd", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("?delta=zstd: %v %v, want 400", resp, err)
	}
}

// TestDeltaFanwireJS: fanwire.js (in Node, over npm ws with
// permessage-deflate) asks for deltas and its app sees every published
// message intact, in order, while most raw messages were deltas.
func TestDeltaFanwireJS(t *testing.T) {
	requireClient(t, nodeMissing())
	n := deltaNode(t, func(c *server.Config) { c.Compression.MinSize = 1 })
	src, _ := filepath.Abs(filepath.Join("js", "fanwire.js"))
	const count = 40
	s := startScript(t, "fwdelta.mjs", "node", filepath.Join("testdata", "fwdelta.mjs"), src, "ws://"+n.WSAddr()+"/ws", "prices.js", fmt.Sprint(count))
	if sub := s.event("subscribed", 20*time.Second); sub["delta"] != true {
		t.Fatalf("subscribed %v, want delta true", sub)
	}
	for i := 1; i <= count; i++ {
		if _, _, err := n.Publish("prices.js", priceTick(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= count; i++ {
		m := s.event("msg", 20*time.Second)
		want, _ := json.Marshal(json.RawMessage(priceTick(i)))
		got, _ := json.Marshal(m["data"])
		var wantV any
		_ = json.Unmarshal(want, &wantV)
		wantJSON, _ := json.Marshal(wantV)
		if m["seq"] != float64(i) || !bytes.Equal(got, wantJSON) {
			t.Fatalf("message %d: seq %v data %s, want %s", i, m["seq"], got, wantJSON)
		}
	}
	sum := s.event("summary", 20*time.Second)
	if sum["deltas"] != float64(count-1) {
		t.Errorf("%v of %d raw messages were deltas, want %d", sum["deltas"], sum["raw"], count-1)
	}
	checkNegotiated(t, "ws", sum["extensions"])
	s.checkSummary(sum)
}

// deltaBrowserPage imports fanwire.js from the node, subscribes to ?topic=
// with delta: true and records what the app gets; a WebSocket subclass
// counts the raw delta frames.
const deltaBrowserPage = `<!doctype html>
<meta charset="utf-8"><title>fanwire.js delta test</title>
<script type="module">
const p = new URLSearchParams(location.search);
Object.assign(window, { __log: [], __errors: [], __deltas: 0, __subscribed: null });
class CountingWS extends WebSocket {
  constructor(u) {
    super(u);
    this.addEventListener("message", (e) => { if (String(e.data).includes('"delta":"fossil"')) window.__deltas++; });
  }
}
try {
  const { Fanwire } = await import(p.get("src"));
  const fw = new Fanwire(p.get("ws"), { env: { WebSocket: CountingWS } });
  fw.on("error", (e) => __errors.push(e));
  fw.subscribe(p.get("topic"), {
    delta: true,
    onSubscribed: (s) => { window.__subscribed = s; },
    onMessage: (data, m) => __log.push({ seq: m.seq, data }),
  });
} catch (e) {
  window.__loadError = String(e);
}
</script>`

// TestDeltaBrowser: headless Chromium (which always negotiates
// permessage-deflate) gets compressed deltas, and its app every message intact.
func TestDeltaBrowser(t *testing.T) {
	chromium := requireChromium(t)
	n := deltaNode(t, func(c *server.Config) { c.Compression.MinSize = 1 })
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, deltaBrowserPage) //nolint:errcheck
	}))
	defer pages.Close()
	ctx := newBrowser(t, chromium, 2*time.Minute)
	q := url.Values{"src": {"http://" + n.WSAddr() + "/fanwire.js"}, "ws": {"ws://" + n.WSAddr() + "/ws"}, "topic": {"prices.web"}}
	if err := chromedp.Run(ctx, chromedp.Navigate(pages.URL+"/?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	p := &browserPage{t: t, ctx: ctx}
	p.waitUntil("subscribed", "window.__loadError || window.__subscribed", 60*time.Second)
	var sub string
	p.eval("JSON.stringify(window.__subscribed) + (window.__loadError || '')", &sub)
	if !strings.Contains(sub, `"delta":true`) {
		t.Fatalf("subscribed %s", sub)
	}
	const count = 30
	for i := 1; i <= count; i++ {
		if _, _, err := n.Publish("prices.web", priceTick(i)); err != nil {
			t.Fatal(err)
		}
	}
	p.waitUntil("all messages", fmt.Sprintf("window.__log.length >= %d", count), 60*time.Second)
	var logJSON string
	var deltas int
	p.eval("JSON.stringify(window.__log)", &logJSON)
	p.eval("window.__deltas", &deltas)
	var got []struct {
		Seq  uint64
		Data json.RawMessage
	}
	if err := json.Unmarshal([]byte(logJSON), &got); err != nil {
		t.Fatal(err)
	}
	for i, d := range got {
		var a, b any
		_ = json.Unmarshal(d.Data, &a)
		_ = json.Unmarshal(priceTick(i+1), &b)
		if d.Seq != uint64(i+1) || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("message %d: seq %d data %s", i+1, d.Seq, d.Data)
		}
	}
	if deltas != count-1 || p.errors() != "[]" {
		t.Errorf("%d raw deltas (want %d), errors %s", deltas, count-1, p.errors())
	}
}

// TestDeltaNamespace: a --config namespace with delta = true allows deltas
// on its topics without --delta; other namespaces' topics get full messages.
func TestDeltaNamespace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ns.toml")
	if err := os.WriteFile(file, []byte("[[namespace]]\nname = \"scores\"\ntopics = [\"scores.*\"]\ndelta = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := namespace.Load(file, namespace.Defaults{History: 100, HistoryTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, false, func(c *server.Config) { c.Auth.Namespaces = set })
	dc := dialDelta(t, n, "", false)
	if ack := dc.subscribe(`{"op":"subscribe","topics":["scores.x","prices.x"],"delta":"fossil"}`); string(ack["delta"]) != `["scores.x"]` {
		t.Fatalf("ack delta %s, want [\"scores.x\"]", ack["delta"])
	}
	for i := 1; i <= 5; i++ {
		_, _, _ = n.Publish("scores.x", priceTick(i))
	}
	for i := 1; i <= 5; i++ {
		if _, seq, data := dc.next(); seq != uint64(i) || !bytes.Equal(data, priceTick(i)) {
			t.Fatalf("seq %d: %d %q", i, seq, data)
		}
	}
	if dc.deltas != 4 {
		t.Errorf("%d deltas, want 4", dc.deltas)
	}
}
