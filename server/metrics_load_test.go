package server_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/fanwire/fanwire/loadtest"
	"github.com/fanwire/fanwire/server/metrics/metricstest"
)

// TestMetricsMatchLoadFanout runs the load generator's fanout mode against a
// node and checks that a scrape at the end agrees with its report exactly:
// deliveries, publishes, connections and their clean closes.
func TestMetricsMatchLoadFanout(t *testing.T) {
	n := startNode(t, false, nil)
	cfg := loadtest.DefaultConfig("fanout")
	cfg.URL = "ws://" + n.WSAddr() + "/ws"
	cfg.API = "http://" + n.HTTPAddr()
	cfg.Conns, cfg.Topics, cfg.PubRate, cfg.Duration = 200, 4, 200, 2*time.Second
	cfg.Rate, cfg.Workers, cfg.Loops = 10000, 1, 2
	cfg.ConnectTimeout, cfg.CloseTimeout, cfg.Drain = 30*time.Second, 30*time.Second, 30*time.Second
	r, err := loadtest.Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	d, c := r.Delivery, r.Connections
	if !r.OK || d == nil || d.Lost != 0 || c.Failed != 0 || c.Retried != 0 {
		t.Fatalf("load run not clean: ok=%v problems=%v delivery=%+v connections=%+v", r.OK, r.Problems, d, c)
	}
	f := scrapeUntil(t, "http://"+n.HTTPAddr()+"/metrics", "every load connection closed", func(f metricstest.Families) bool {
		return f.Sum("fanwire_connections") == 0
	})
	checkLoadScrape(t, f, r)
}

// checkLoadScrape compares a scrape with a clean fanout report.
func checkLoadScrape(t *testing.T, f metricstest.Families, r *loadtest.Report) {
	t.Helper()
	d, c := r.Delivery, r.Connections
	checks := []struct {
		name  string
		match []string
		want  int64
	}{
		{"fanwire_deliveries_total", nil, d.Delivered},
		{"fanwire_publishes_total", []string{"source", "api"}, d.Published},
		{"fanwire_connections_accepted_total", nil, c.Attempted},
		{"fanwire_ws_upgrades_total", nil, c.Established},
		{"fanwire_connections_closed_total", []string{"reason", "normal"}, c.ClosedClean},
		{"fanwire_connections_closed_total", nil, c.Established},
	}
	for _, ck := range checks {
		if got := f.Sum(ck.name, ck.match...); got != float64(ck.want) {
			t.Errorf("%s%v = %v; the load report says %d", ck.name, ck.match, got, ck.want)
		}
	}
	t.Logf("scrape matches the load report: %d deliveries, %d publishes, %d connections (%d closed cleanly)",
		d.Delivered, d.Published, c.Established, c.ClosedClean)
}
