package server_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/demo"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/gorilla/websocket"
)

// demoChatNode is a node set up as `fanwire serve --demo` (make run) sets
// up its chat: the demo page, demo tokens, the chat.demo namespace first.
func demoChatNode(t *testing.T) (*server.Node, *demo.TokenMinter) {
	t.Helper()
	minter := demo.NewTokenMinter()
	set, err := namespace.FromFlags(namespace.Defaults{HistoryTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	set.List = append([]*namespace.Namespace{demo.ChatNamespace()}, set.List...)
	n := startNode(t, false, func(c *server.Config) {
		c.Page = demo.RenderPage
		c.Auth.Keys.HMACSecrets = [][]byte{minter.Secret()}
		c.Auth.DemoToken = minter
		c.Auth.Namespaces = set
	})
	return n, minter
}

// TestBrowserDemoChat: the demo page's chat in headless Chromium, through
// fanwire.js: the page posts with its demo token (client publish), shows the
// server's sender stamp and the members (presence), and shows another
// client's typing indicator (an ephemeral message).
func TestBrowserDemoChat(t *testing.T) {
	chromium := requireChromium(t)
	n, minter := demoChatNode(t)

	ctx := newBrowser(t, chromium, 60*time.Second)

	var consoleMu sync.Mutex
	var console []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventConsoleAPICalled); ok {
			consoleMu.Lock()
			for _, a := range e.Args {
				console = append(console, string(a.Value)+a.Description)
			}
			consoleMu.Unlock()
		}
	})
	var user string
	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+n.HTTPAddr()+"/"),
		chromedp.WaitVisible(`#status.open`, chromedp.ByQuery),
		chromedp.WaitVisible(`#chat-card`, chromedp.ByQuery),
		chromedp.Text(`#user`, &user, chromedp.ByQuery),
		chromedp.SendKeys(`#chat-input`, "hello from chromium", chromedp.ByQuery),
		chromedp.Click(`#chat-form button`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("page: %v", err)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(user, "signed in as "), " (demo token)")
	waitText := func(sel, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err := chromedp.Run(ctx, chromedp.Text(sel, &got, chromedp.ByQuery)); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(got), strings.ToLower(want)) { // h2 is text-transform: uppercase
				return
			}
		}
		var log string
		_ = chromedp.Run(ctx, chromedp.Text(`#log`, &log, chromedp.ByQuery))
		consoleMu.Lock()
		defer consoleMu.Unlock()
		t.Fatalf("%s shows %q, want %q (page log: %s; console: %q)", sel, got, want, log, console)
	}
	waitText(`#chat-lines`, name+": hello from chromium")
	waitText(`#chat-error`, "sent as seq 1")
	waitText(`#chat-members`, name)

	// Another client, with its own demo token, starts typing.
	tok, err := minter.Mint("bob", time.Now(), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	bob, _, _ := dialToken(t, n, "?token="+tok, nil)
	bob.WriteMessage(websocket.TextMessage, []byte(`{"op":"publish","topic":"chat.demo","data":{"text":"hi"},"id":2}`))
	waitText(`#chat-lines`, "bob: hi")
	bob.WriteMessage(websocket.TextMessage, []byte(`{"op":"publish","topic":"chat.demo","data":{"typing":true},"ephemeral":true,"id":1}`))
	waitText(`#chat-typing`, "bob typing")
}
