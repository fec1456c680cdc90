package server_test

import (
	"strings"
	"testing"

	"github.com/fanwire/fanwire/server/metrics/metricstest"
)

// dashboardPath is the Grafana dashboard shipped in the repository.
const dashboardPath = "../deploy/grafana/fanwire.json"

// workerModeOnly are the series only `serve --workers N` exports (the
// supervisor test checks them).
func workerModeOnly(name string) bool {
	return strings.HasPrefix(name, "fanwire_bus_") || strings.HasPrefix(name, "fanwire_worker_")
}

// TestDashboardQueriesExist checks that every metric the Grafana dashboard
// queries is in a real scrape of a single-process node.
func TestDashboardQueriesExist(t *testing.T) {
	names, exprs, err := metricstest.DashboardMetrics(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if exprs < 10 || len(names) < 20 {
		t.Fatalf("dashboard has %d exprs over %d metrics; expected a full dashboard", exprs, len(names))
	}
	n := startNode(t, false, nil)
	f, err := metricstest.Scrape("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range names {
		if workerModeOnly(name) {
			continue
		}
		checked++
		if !f.Has(name) {
			t.Errorf("the dashboard queries %s, which a scrape does not have", name)
		}
	}
	t.Logf("%d dashboard exprs, %d metric names, %d checked here", exprs, len(names), checked)
}
