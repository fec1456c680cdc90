package server_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanwire/fanwire/loadtest"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
)

// TestBrowserAdminPage opens /admin in headless Chromium while a load
// fanout run is active: the page's numbers and charts must move. With
// FANWIRE_ADMIN_SCREENSHOT=path it also saves a screenshot (docs/admin.png).
func TestBrowserAdminPage(t *testing.T) {
	chromium := requireChromium(t)
	const key = "admin-page-test-key-0123456789abcdef"
	n := startNode(t, false, func(c *server.Config) { c.Limits.AdminKeys = api.Keys{key} })

	cfg := loadtest.DefaultConfig("fanout")
	cfg.URL = "ws://" + n.WSAddr() + "/ws"
	cfg.API = "http://" + n.HTTPAddr()
	cfg.Conns, cfg.Topics, cfg.PubRate, cfg.Duration = 300, 6, 100, time.Minute // cancelled once the page is checked
	cfg.Rate, cfg.Workers, cfg.Loops = 300, 1, 1                                // a one-second ramp: the page sees it
	cfg.ConnectTimeout, cfg.CloseTimeout, cfg.Drain = 30*time.Second, 30*time.Second, 30*time.Second
	shot := os.Getenv("FANWIRE_ADMIN_SCREENSHOT")
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	loadDone := make(chan *loadtest.Report, 1)
	go func() {
		r, err := loadtest.Run(loadCtx, cfg, io.Discard, true)
		if err != nil {
			t.Error(err)
		}
		loadDone <- r
	}()
	defer func() { stopLoad(); <-loadDone }()

	ctx := newBrowser(t, chromium, 60*time.Second, chromedp.WindowSize(1280, 860))
	var location string
	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+n.HTTPAddr()+"/admin?key="+key),
		chromedp.WaitVisible(`#status.live`, chromedp.ByQuery),
		chromedp.Location(&location),
	); err != nil {
		t.Fatalf("admin page did not go live with its key: %v", err)
	}
	if strings.Contains(location, key) {
		t.Fatalf("the key stayed in the address bar: %s", location)
	}

	type view struct{ conns, pubs, dels, chart, topic string }
	read := func() view {
		var v view
		if err := chromedp.Run(ctx,
			chromedp.Text(`#conns`, &v.conns, chromedp.ByQuery),
			chromedp.Text(`#pubs`, &v.pubs, chromedp.ByQuery),
			chromedp.Text(`#dels`, &v.dels, chromedp.ByQuery),
			chromedp.AttributeValue(`#c-dels polyline`, "points", &v.chart, nil, chromedp.ByQuery),
			chromedp.Text(`#topics`, &v.topic, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Wait until the run is delivering, then read again a few refreshes later.
	var first view
	deadline := time.Now().Add(20 * time.Second)
	for {
		first = read()
		if shown(first.conns) >= 300 && shown(first.dels) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed the load: %+v", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A few refreshes later the chart has moved on and the rates are still live.
	var second view
	deadline = time.Now().Add(20 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		second = read()
		if shown(second.dels) > 0 && shown(second.pubs) > 0 && second.chart != first.chart {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("numbers did not move under load: first %+v, then %+v", first, second)
		}
	}
	if !strings.Contains(second.topic, "load.") {
		t.Fatalf("top topics do not list the load topics: %q", second.topic)
	}
	t.Logf("admin page under load: first %s conns %s deliveries/s, then %s conns %s deliveries/s", first.conns, first.dels, second.conns, second.dels)
	if path := shot; path != "" {
		for range 3 { // something in the closes table
			bad := dialTCP(t, n.WSAddr())
			bad.write([]byte(upgradeRequest(n.WSAddr(), "/nope", newKey(), nil)))
			bad.readResponse()
		}
		time.Sleep(25 * time.Second) // longer charts
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shown parses a number as the page formats it ("1.25 k", "3.00 M", "12").
func shown(s string) float64 {
	s = strings.TrimSpace(s)
	mult := 1.0
	for suffix, m := range map[string]float64{" k": 1e3, " M": 1e6, " G": 1e9} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v * mult
}
