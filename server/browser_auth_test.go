package server_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/demo"
)

// TestBrowserDemoToken: with --auth required, the demo page must get a
// token from GET /demo/token (demo mode), connect with ?token= and receive
// the topics the token grants.
func TestBrowserDemoToken(t *testing.T) {
	chromium := requireChromium(t)
	minter := demo.NewTokenMinter()
	n := startNode(t, false, func(c *server.Config) {
		c.Page = demo.RenderPage
		c.Auth.Mode = server.AuthRequired
		c.Auth.Keys.HMACSecrets = [][]byte{minter.Secret()}
		c.Auth.DemoToken = minter
	})
	if _, status, code := dialToken(t, n, "?topics=prices.BTC-USD", nil); status != 401 {
		t.Fatalf("without a token: %d %q, want 401", status, code)
	}

	ctx := newBrowser(t, chromium, 60*time.Second)

	var user, auth string
	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+n.HTTPAddr()+"/"),
		chromedp.WaitVisible(`#status.open`, chromedp.ByQuery),
		chromedp.Text(`#user`, &user, chromedp.ByQuery),
		chromedp.AttributeValue(`#user`, "data-auth", &auth, nil, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("page did not connect: %v", err)
	}
	if auth != "token" || !strings.Contains(user, "signed in as demo-") {
		t.Fatalf("page shows user %q (auth %q), want a demo token", user, auth)
	}
	const messages = 10
	for i := 1; i <= messages; i++ {
		if _, _, err := n.Publish("prices.BTC-USD", []byte(`{"symbol":"BTC-USD","price":`+strconv.Itoa(70000+i)+`,"ts":0}`)); err != nil {
			t.Fatal(err)
		}
	}
	var frames string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := chromedp.Run(ctx, chromedp.Text(`#frames`, &frames, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if frames == strconv.Itoa(messages) {
			return
		}
	}
	t.Fatalf("page shows %s frames, want %d", frames, messages)
}
