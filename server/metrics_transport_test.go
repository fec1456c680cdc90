package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/metrics/metricstest"
)

// TestMetricsTransportsAndClientPublish: fanwire_connections_open counts
// each transport on its own, and an in-band publish counts as
// source="client".
func TestMetricsTransportsAndClientPublish(t *testing.T) {
	n := startAuthNode(t, server.AuthNamespace, func(c *server.Config) {
		c.Auth.Namespaces = loadNamespaces(t, publishNamespaces)
		c.Streams.PollTimeout = time.Minute // the poll below is held until the publish
	})
	url := "http://" + n.HTTPAddr() + "/metrics"
	ws, _, _ := dialToken(t, n, "?topics=open.m", nil)
	sse := dialStream(t, n.WSAddr(), "/sse?topics=open.m")
	if h := sse.head(); !strings.Contains(h, "text/event-stream") {
		t.Fatalf("SSE head %q", h)
	}
	poll := dialStream(t, n.WSAddr(), "/poll?topics=open.m&since=open.m:0") // nothing after 0: held
	open := func(f metricstest.Families, transport string) float64 {
		return f.Sum("fanwire_connections_open", "transport", transport)
	}
	f := scrapeUntil(t, url, "one connection open per transport", func(f metricstest.Families) bool {
		return open(f, "websocket") == 1 && open(f, "sse") == 1 && open(f, "poll") == 1
	})
	if got := f.Sum("fanwire_connections_open"); got != 3 {
		t.Fatalf("connections_open summed = %v, want 3", got)
	}
	if got := f.Sum("fanwire_publishes_total", "source", "client"); got != 0 {
		t.Fatalf(`publishes_total{source="client"} = %v before any client publish`, got)
	}

	sendJSON(t, ws, `{"op":"publish","topic":"open.m","data":1,"id":1}`)
	expectType(t, ws, "published")
	if body := poll.rest(); !strings.Contains(body, `"seq":1`) {
		t.Fatalf("held poll answered %q", body)
	}
	f = scrapeUntil(t, url, "the answered poll gone", func(f metricstest.Families) bool { return open(f, "poll") == 0 })
	for _, c := range []struct {
		source string
		want   float64
	}{{"client", 1}, {"api", 0}, {"internal", 0}} {
		if got := f.Sum("fanwire_publishes_total", "source", c.source); got != c.want {
			t.Errorf(`publishes_total{source=%q} = %v, want %v`, c.source, got, c.want)
		}
	}
	// Live deliveries by transport: the publish reached the SSE stream and
	// the held poll once each; the rest of deliveries_total is WebSocket.
	f = scrapeUntil(t, url, "the SSE delivery counted", func(f metricstest.Families) bool {
		return f.Sum("fanwire_deliveries_by_transport_total", "transport", "sse") == 1
	})
	by := func(tr string) float64 { return f.Sum("fanwire_deliveries_by_transport_total", "transport", tr) }
	if by("poll") != 1 || by("websocket")+by("sse")+by("poll") != f.Sum("fanwire_deliveries_total") {
		t.Errorf("deliveries by transport: websocket %v sse %v poll %v, total %v", by("websocket"), by("sse"), by("poll"), f.Sum("fanwire_deliveries_total"))
	}
	if st := n.Stats(); st.DeliveredByTransport["sse"] != 1 || st.DeliveredByTransport["poll"] != 1 || st.OpenByTransport["sse"] != 1 {
		t.Errorf("/stats by transport: open %v delivered %v", st.OpenByTransport, st.DeliveredByTransport)
	}
	if open(f, "websocket") != 1 || open(f, "sse") != 1 {
		t.Errorf("websocket %v, sse %v open, want 1 and 1", open(f, "websocket"), open(f, "sse"))
	}
	sse.c.Close()
	scrapeUntil(t, url, "the SSE stream gone", func(f metricstest.Families) bool { return open(f, "sse") == 0 })
}
