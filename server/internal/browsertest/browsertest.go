// Package browsertest starts headless Chromium (chromedp) for tests outside
// package server (whose own tests have the same helpers in browser_test.go).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireChromium is Debian's chromium, or a skip (a failure with
// FANWIRE_REQUIRE_CLIENTS=1, as in make test).
func RequireChromium(t testing.TB) string {
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

// New starts headless chromium for one test, with the flags this machine's
// closed network needs, and a tab whose context ends after timeout or with
// the test.
func New(t testing.TB, chromium string, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		// Timers of a page must fire when asked: reconnect delays are measured.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}
