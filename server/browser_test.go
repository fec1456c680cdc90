package server_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/demo"
)

// TestBrowserDemoPage opens the demo page in headless Chromium: the page's
// own JavaScript connects to the node, subscribes, and must show published
// prices and count every frame without a seq gap.
func TestBrowserDemoPage(t *testing.T) {
	chromium := requireChromium(t)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Page = demo.RenderPage
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	ctx := newBrowser(t, chromium, 60*time.Second)

	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+n.HTTPAddr()+"/"),
		chromedp.WaitVisible(`#status.open`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("page did not connect: %v", err)
	}
	const messages = 20
	for i := 1; i <= messages; i++ {
		data := `{"symbol":"BTC-USD","price":` + strconv.Itoa(60000+i) + `,"ts":0}`
		if _, _, err := n.Publish("prices.BTC-USD", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	var frames, gaps, price string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx,
			chromedp.Text(`#frames`, &frames, chromedp.ByQuery),
			chromedp.Text(`#gaps`, &gaps, chromedp.ByQuery),
			chromedp.Text(`#price-BTC-USD .price`, &price, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if frames == strconv.Itoa(messages) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if frames != strconv.Itoa(messages) || gaps != "0" || !strings.Contains(strings.ReplaceAll(price, ",", ""), "60020") {
		t.Fatalf("page shows frames=%q gaps=%q price=%q; want %d frames, 0 gaps, last price 60020", frames, gaps, price, messages)
	}
}

// requireChromium is Debian's chromium, or a skip (a failure with
// FANWIRE_REQUIRE_CLIENTS=1, as in make test).
func requireChromium(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("FANWIRE_REQUIRE_CLIENTS") == "1" {
			t.Fatal("chromium not installed (make deps installs it)")
		}
		t.Skip("chromium not installed; run make deps")
	}
	return chromium
}

// newBrowser starts headless chromium for one test, with the flags this
// machine's closed network needs, and a tab whose context ends after
// timeout or with the test.
func newBrowser(t *testing.T, chromium string, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}
