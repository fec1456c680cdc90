package server_test

// Independent clients negotiating permessage-deflate: each must receive the
// shared compressed frames intact (the raw-socket tests in deflate_test.go
// check that those frames really are compressed).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

// compressAll makes every delivery and echo eligible for compression.
func compressAll(c *server.Config) { c.Compression.MinSize = 1 }

func checkNegotiated(t *testing.T, who string, ext any) {
	t.Helper()
	if s, _ := ext.(string); !strings.Contains(s, "permessage-deflate") {
		t.Errorf("%s negotiated extensions %q, want permessage-deflate", who, ext)
	}
}

func runCompressedScripts(t *testing.T, name string, argv ...string) {
	t.Run("subscribe", func(t *testing.T) {
		ready := runSubscribeScriptOn(t, startNode(t, false, compressAll), name, argv...)
		checkNegotiated(t, name, ready["extensions"])
	})
	t.Run("echo 1 MiB and ping", func(t *testing.T) {
		n := startNode(t, true, compressAll)
		s := startScript(t, name, append(argv, "echo", "ws://"+n.WSAddr()+"/ws", fmt.Sprint(1<<20))...)
		sum := s.event("summary", 60*time.Second)
		for _, k := range []string{"text_ok", "binary_ok", "pong_ok"} {
			if sum[k] != true {
				t.Errorf("%s: %s = %v", name, k, sum[k])
			}
		}
		checkNegotiated(t, name, sum["extensions"])
		s.checkSummary(sum)
	})
}

func TestClientsDeflatePython(t *testing.T) {
	requireClient(t, pythonMissing())
	runCompressedScripts(t, "pyclient.py", debianPython, filepath.Join("testdata", "pyclient.py"))
}

func TestClientsDeflateNodeWS(t *testing.T) {
	requireClient(t, nodeMissing())
	runCompressedScripts(t, "wsclient.js", "node", filepath.Join("testdata", "wsclient.js"))
}

// TestClientsDeflateGorilla: gorilla with EnableCompression (it offers
// client_no_context_takeover and server_no_context_takeover) subscribes,
// receives compressed publishes, and has compressed echoes answered.
func TestClientsDeflateGorilla(t *testing.T) {
	n := startNode(t, false, compressAll)
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial("ws://"+n.WSAddr()+"/ws?topics=gz", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkNegotiated(t, "gorilla", resp.Header.Get("Sec-WebSocket-Extensions"))
	c.EnableWriteCompression(true)
	// An in-band subscribe, compressed by gorilla, inflated by the server.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["gz2"]}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(frameTimeout))
	if _, msg, err := c.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"subscribed"`)) {
		t.Fatalf("ack: %q, %v", msg, err)
	}
	for i := 1; i <= 50; i++ {
		data := clientData(i)
		for _, topic := range []string{"gz", "gz2"} {
			publishHTTP(t, n, topic, data)
			_ = c.SetReadDeadline(time.Now().Add(frameTimeout))
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("message %d on %s: %v", i, topic, err)
			}
			if want := fmt.Sprintf(`{"topic":%q,"seq":%d,"data":%s}`, topic, i, data); string(msg) != want {
				t.Fatalf("message %d on %s: %q, want %q", i, topic, clip(msg), want)
			}
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
}

// TestClientsDeflateChromium: headless Chromium (which always offers
// permessage-deflate) subscribes from a page and receives 2 KB publishes,
// compressed, intact.
func TestClientsDeflateChromium(t *testing.T) {
	chromium := requireChromium(t)
	n := startNode(t, false, nil)
	ctx := newBrowser(t, chromium, 60*time.Second)

	const count = 20
	open := fmt.Sprintf(`new Promise((resolve, reject) => {
		const ws = new WebSocket("ws://%s/ws");
		window.fw = {msgs: [], ext: ""};
		ws.onerror = () => reject("websocket error");
		ws.onopen = () => { window.fw.ext = ws.extensions; ws.send(JSON.stringify({op: "subscribe", topics: ["big"]})); };
		ws.onmessage = (e) => {
			const m = JSON.parse(e.data);
			if (m.type === "subscribed") { resolve(ws.extensions); return; }
			window.fw.msgs.push(e.data);
		};
	})`, n.WSAddr())
	var ext string
	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+n.HTTPAddr()+"/"), // a page of the node: about:blank may not open sockets
		chromedp.Evaluate(open, &ext, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }),
	); err != nil {
		t.Fatalf("page did not subscribe: %v", err)
	}
	checkNegotiated(t, "chromium", ext)
	var want []string
	for i := 1; i <= count; i++ {
		data := fmt.Appendf(nil, `{"i":%d,"rows":"%s"}`, i, strings.Repeat("BTC-USD 64012.25 ", 120))
		publishHTTP(t, n, "big", data)
		want = append(want, fmt.Sprintf(`{"topic":"big","seq":%d,"data":%s}`, i, data))
	}
	var got []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var raw string
		if err := chromedp.Run(ctx, chromedp.Evaluate(`JSON.stringify(window.fw.msgs)`, &raw)); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) >= count {
			break
		}
	}
	if len(got) != count {
		t.Fatalf("chromium received %d messages, want %d", len(got), count)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: %q, want %q", i+1, clip([]byte(got[i])), clip([]byte(want[i])))
		}
	}
}
