package loadtest

import (
	"context"
	"io"
	"testing"
	"time"
)

// Fan-out to SSE and long-polling subscribers (--transport sse|poll): every
// publish reaches every subscriber exactly once, in order (across re-polls),
// and they hang up cleanly.
func TestFanoutRunOverStreams(t *testing.T) {
	for _, tr := range []string{TransportSSE, TransportPoll} {
		t.Run(tr, func(t *testing.T) { fanoutOver(t, tr) })
	}
}

func fanoutOver(t *testing.T, transport string) {
	n := startNode(t)
	cfg := DefaultConfig("fanout")
	cfg.URL = "ws://" + n.WSAddr() + "/ws"
	cfg.API = "http://" + n.HTTPAddr()
	cfg.Transport = transport
	cfg.Conns = 200
	cfg.Topics = 4
	cfg.PubRate = 200
	cfg.Duration = 2 * time.Second
	cfg.Rate = 10000
	cfg.Workers = 1
	cfg.Loops = 2
	relaxTimeouts(&cfg)
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	if d == nil || !r.OK {
		t.Fatalf("report: ok=%v problems=%v delivery=%+v", r.OK, r.Problems, d)
	}
	if d.Published != 400 || d.Expected != 400*50 || d.Delivered != d.Expected || d.Lost != 0 || d.Gaps != 0 || d.Dups != 0 {
		t.Fatalf("delivery: %+v", d)
	}
	if r.Connections.Established != 200 || r.Connections.ClosedClean != 200 {
		t.Fatalf("connections: %+v", r.Connections)
	}
}

func TestSSERequest(t *testing.T) {
	got := string(appendSSERequest(nil, "h:1", "/ws?topics=a"))
	if want := "GET /sse?topics=a HTTP/1.1\r\nHost: h:1\r\nAccept: text/event-stream\r\n\r\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if err := (&Config{Mode: "connect", Conns: 1, Rate: 1, Duration: 1, Transport: "smoke"}).validate(); err == nil {
		t.Fatal("unknown transport accepted")
	}
}
