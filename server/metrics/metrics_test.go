package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	h.Observe(0)
	h.Observe(time.Millisecond)     // on a bound: that bucket (le is inclusive)
	h.Observe(3 * time.Millisecond) // le 0.005
	h.Observe(time.Minute)          // +Inf
	h.Observe(-time.Second)         // clamped to 0
	s := h.Snapshot()
	n, b := s.cumulative()
	if n != 5 || b[0.0001] != 2 || b[0.001] != 3 || b[0.0025] != 3 || b[0.005] != 4 || b[5] != 4 {
		t.Fatalf("count %d buckets %v", n, b)
	}
	if s.Sum < 60.003 || s.Sum > 60.0041 {
		t.Fatalf("sum %v", s.Sum)
	}
	if a := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); a != 0 {
		t.Fatalf("Observe allocates %v times", a)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(time.Duration(i%5000) * time.Microsecond)
	}
}

// The collector's output in both modes parses as the text format with the
// documented names and the worker label rule.
func TestCollectorModes(t *testing.T) {
	snap := Snapshot{Conns: 2, Delivered: 7, Closed: map[string]uint64{ReasonNormal: 1},
		Open: 3, OpenByTransport: map[string]int64{"websocket": 2, "sse": 1}, PublishedClient: 4}
	single := scrape(t, NewCollector(func() Gathered { return Gathered{Nodes: []Node{{Snapshot: snap}}} }, false))
	for _, want := range []string{"fanwire_connections 2", "fanwire_deliveries_total 7", `fanwire_connections_closed_total{reason="normal"} 1`,
		`fanwire_publishes_total{source="api"} 0`, `fanwire_publishes_total{source="client"} 4`, "fanwire_publish_duration_seconds_count 0",
		`fanwire_connections_open{transport="websocket"} 2`, `fanwire_connections_open{transport="sse"} 1`, `fanwire_connections_open{transport="poll"} 0`, `fanwire_handshake_failures_total{status="431"} 0`} {
		if !strings.Contains(single, want+"\n") {
			t.Errorf("single-process scrape has no %q", want)
		}
	}
	workers := scrape(t, NewCollector(func() Gathered {
		return Gathered{Nodes: []Node{{Worker: "1", Snapshot: snap}, {Worker: "2", Snapshot: snap}},
			Supervisor: &Supervisor{Workers: []Worker{{ID: "1", Up: true}, {ID: "2", Restarts: 3}}, BusPublished: 9, PublishedAPI: 5, ClientSequenced: 3}}
	}, true))
	for _, want := range []string{`fanwire_connections{worker="1"} 2`, `fanwire_deliveries_total{worker="2"} 7`,
		`fanwire_publishes_total{source="api",worker=""} 5`, `fanwire_publishes_total{source="internal",worker=""} 1`,
		`fanwire_publishes_total{source="client",worker="1"} 4`, `fanwire_connections_open{transport="sse",worker="2"} 1`, `fanwire_publishes_total{source="bus",worker="1"} 0`,
		"fanwire_bus_publishes_total 9", `fanwire_worker_up{worker="1"} 1`, `fanwire_worker_up{worker="2"} 0`,
		`fanwire_worker_restarts_total{worker="2"} 3`} {
		if !strings.Contains(workers, want+"\n") {
			t.Errorf("worker-mode scrape has no %q", want)
		}
	}
}

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(c).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
