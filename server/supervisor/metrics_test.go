package supervisor_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/fanwire/fanwire/loadtest"
	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/metrics/metricstest"
)

// TestWorkerMetricsMatchLoadFanout runs `fanwire load fanout` (as a
// library) against `serve --workers 2` and checks the supervisor's scrape,
// which covers both workers (worker="1", worker="2"), against its report.
func TestWorkerMetricsMatchLoadFanout(t *testing.T) {
	n := startNode(t, "--workers", "2", "--metrics-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`"metrics":"(http://[^"]+)"`).FindStringSubmatch(n.logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the supervisor's log:\n%s", n.logs.String())
	}
	metricsURL := m[1]

	cfg := loadtest.DefaultConfig("fanout")
	cfg.URL = n.ws
	cfg.API = n.control
	cfg.Conns, cfg.Topics, cfg.PubRate, cfg.Duration = 200, 4, 100, 2*time.Second
	cfg.Rate, cfg.Workers, cfg.Loops = 5000, 1, 2
	cfg.ConnectTimeout, cfg.CloseTimeout, cfg.Drain = 30*time.Second, 30*time.Second, 30*time.Second
	r, err := loadtest.Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	d, c := r.Delivery, r.Connections
	if !r.OK || d == nil || d.Lost != 0 || c.Failed != 0 || c.Retried != 0 {
		t.Fatalf("load run not clean: ok=%v problems=%v delivery=%+v connections=%+v", r.OK, r.Problems, d, c)
	}
	var f metricstest.Families
	eventually(t, "both workers scraped with every load connection closed", func() bool {
		f, err = metricstest.Scrape(metricsURL)
		return err == nil && f.Sum("fanwire_worker_up") == 2 && len(f["fanwire_connections"].GetMetric()) == 2 &&
			f.Sum("fanwire_connections") == 0 && f.Sum("fanwire_connections_closed_total") == float64(c.Established)
	})
	checks := []struct {
		name  string
		match []string
		want  int64
	}{
		{"fanwire_deliveries_total", nil, d.Delivered},
		{"fanwire_publishes_total", []string{"source", "api"}, d.Published},
		{"fanwire_bus_publishes_total", nil, d.Published},
		{"fanwire_bus_errors_total", nil, 0},
		{"fanwire_connections_accepted_total", nil, c.Attempted},
		{"fanwire_ws_upgrades_total", nil, c.Established},
		{"fanwire_connections_closed_total", []string{"reason", "normal"}, c.ClosedClean},
		{"fanwire_worker_restarts_total", nil, 0},
	}
	for _, ck := range checks {
		if got := f.Sum(ck.name, ck.match...); got != float64(ck.want) {
			t.Errorf("%s%v = %v; the load report says %d", ck.name, ck.match, got, ck.want)
		}
	}
	// Both workers took a share of the subscribers (SO_REUSEPORT).
	for _, w := range []string{"1", "2"} {
		if f.Sum("fanwire_ws_upgrades_total", "worker", w) == 0 {
			t.Errorf("worker %s upgraded no connection", w)
		}
	}
	t.Logf("worker mode: scrape matches the load report: %d deliveries (worker 1: %v, worker 2: %v), %d publishes, %d connections",
		d.Delivered, f.Sum("fanwire_deliveries_total", "worker", "1"), f.Sum("fanwire_deliveries_total", "worker", "2"), d.Published, c.Established)

	// The control listener has the same series.
	if g, err := metricstest.Scrape(n.control + "/metrics"); err != nil || g.Sum("fanwire_deliveries_total") != float64(d.Delivered) {
		t.Fatalf("control /metrics: %v", err)
	}
}

// TestWorkerTopicsMerged lists topics in worker mode: the supervisor asks
// every worker and sums subscribers per topic.
func TestWorkerTopicsMerged(t *testing.T) {
	n := startNode(t, "--workers", "2")
	const subs = 8
	clients := make([]*client, subs)
	for i := range clients {
		clients[i] = dial(t, n.ws, "tm.a")
	}
	dial(t, n.ws, "tm.b")
	primeAll(t, "tm.a", clients, n)
	seq := n.publish("tm.a", `{"v":42}`)
	var page api.TopicPage
	eventually(t, "/topics sums both workers' subscribers", func() bool {
		page = api.TopicPage{}
		getJSON(t, n.control+"/topics", &page)
		return page.Total == 2 && page.Topics[0].Topic == "tm.a" && page.Topics[0].Subscribers == subs &&
			page.Topics[0].Seq == seq && page.Topics[1].Topic == "tm.b" && page.Topics[1].Subscribers == 1
	})
	if page.Partial || page.Topics[0].Epoch == "" {
		t.Fatalf("page %+v", page)
	}
	var d api.TopicDetail
	getJSON(t, n.control+"/topics/tm.a", &d)
	if d.Subscribers != subs || d.Seq != seq || d.LastSeq != seq || string(d.Last) != `{"v":42}` {
		t.Fatalf("detail %+v last %s", d, d.Last)
	}
	resp, err := http.Get(n.control + "/topics/tm.none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/topics/tm.none: %d, want 404", resp.StatusCode)
	}
	var admin api.AdminData
	getJSON(t, n.control+"/admin/data", &admin)
	if admin.Mode != "workers" || len(admin.Workers) != 2 || len(admin.TopTopics) != 2 || admin.Open != subs+1 {
		t.Fatalf("admin data %+v", admin)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, v) != nil {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
}

// TestWorkerDashboardQueriesExist checks every metric the Grafana dashboard
// queries against a scrape of `serve --workers 2`.
func TestWorkerDashboardQueriesExist(t *testing.T) {
	names, _, err := metricstest.DashboardMetrics("../../deploy/grafana/fanwire.json")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "--workers", "2")
	var f metricstest.Families
	eventually(t, "both workers in a scrape", func() bool {
		f, err = metricstest.Scrape(n.control + "/metrics")
		return err == nil && len(f["fanwire_connections"].GetMetric()) == 2
	})
	for _, name := range names {
		if !f.Has(name) {
			t.Errorf("the dashboard queries %s, which a worker-mode scrape does not have", name)
		}
	}
}
