package bench

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

func TestTransportVariants(t *testing.T) {
	for _, name := range []string{serverSSE, serverPoll} {
		if err := CheckServerName(name); err != nil || !IsFanwire(name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	l := ServerList([]string{"fanwire", serverSSE, serverPoll}, "/bin/fw", "/peers")
	if l[0].Transport != "" || l[1].Transport != transportSSE || l[2].Transport != transportPoll || l[1].Subcommand != "serve" {
		t.Fatalf("servers: %+v", l)
	}
	if i := slices.Index(l[2].Args, "--poll-timeout"); i < 0 || l[2].Args[i+1] != "10m" {
		t.Fatalf("poll args: %v", l[2].Args)
	}
	for scen, want := range map[string]int{"density": 3, "fanout": 3, "transports": 3, "handshake": 1, "slow-consumers": 1, "bandwidth": 1} {
		if got := len(serversFor(scen, l)); got != want {
			t.Errorf("%s: %d servers, want %d", scen, got, want)
		}
	}
	if got := string(streamRequest("h:1", "/ws?topics=idle", transportPoll)); got != "GET /poll?topics=idle&since=idle:0 HTTP/1.1\r\nHost: h:1\r\nAccept: application/json\r\n\r\n" {
		t.Fatalf("poll request %q", got)
	}
	if got := string(streamRequest("h:1", "/ws?topics=idle", transportSSE)); got != "GET /sse?topics=idle HTTP/1.1\r\nHost: h:1\r\nAccept: text/event-stream\r\n\r\n" {
		t.Fatalf("SSE request %q", got)
	}
	if _, err := ParseScenarios("transports"); err != nil {
		t.Fatal(err)
	}
}

// Idle SSE streams and held long-polls against a real node: open, counted
// by the node per transport, alive; then a fan-out step over each.
func TestTransportsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Streams.PollTimeout = time.Minute
	node, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown(context.Background())
	ctx := context.Background()
	for _, tr := range []string{transportSSE, transportPoll} {
		var c IdleClients
		if err := c.Open(ctx, IdleConfig{Addr: node.WSAddr(), Path: "/ws?topics=idle", SourceIPs: 2, Workers: 4, Transport: tr}, 30); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for node.Stats().OpenByTransport[tr] != 30 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := node.Stats().OpenByTransport[tr]; got != 30 || c.Alive() != 30 {
			t.Fatalf("%s: node counts %d open, %d alive, want 30", tr, got, c.Alive())
		}
		c.Close()
	}
	self, _ := os.FindProcess(os.Getpid())
	for _, tr := range []string{transportSSE, transportPoll} {
		fleet, err := startFleet(ctx, FleetConfig{WSAddr: node.WSAddr(), Paths: []string{"/ws?topics=t.0", "/ws?topics=t.1"},
			Conns: 40, Rate: 2000, Loops: 1, Ramp: 10 * time.Second, Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		p := &Process{cmd: &exec.Cmd{Process: self}, Server: Server{Transport: tr}} // CPU is read from this process
		pub := &Publisher{API: "http://" + node.HTTPAddr(), Topics: []string{"t.0", "t.1"}, Size: 100, Workers: 2}
		st, err := fanoutStep(ctx, p, fleet, pub, 40, FanoutConfig{Subscribers: 40, Topics: 2, Step: 500 * time.Millisecond, Drain: 3 * time.Second})
		pub.Close()
		stopFleet(fleet)
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		if st.ratio != 1 || st.lat.Count != 20*20 || st.perCPU <= 0 {
			t.Fatalf("%s step: %+v", tr, st)
		}
	}
}
