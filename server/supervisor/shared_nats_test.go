package supervisor_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startNATSServer runs the system nats-server (Debian package nats-server,
// installed by .ci/test-deps.sh) with JetStream on a free loopback port.
func startNATSServer(t *testing.T) (url string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("FANWIRE_REQUIRE_CLIENTS") == "1" {
			t.Fatal("nats-server is not installed (apt-get install nats-server; see .ci/test-deps.sh)")
		}
		t.Skip("nats-server is not installed; run .ci/test-deps.sh (set FANWIRE_REQUIRE_CLIENTS=1 to make this a failure)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	t.Cleanup(stop)
	eventually(t, "nats-server accepting", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return fmt.Sprintf("nats://127.0.0.1:%d", port), stop
}

// TestTwoNodesShareExternalNATS: two fanwire nodes (each a supervisor with
// one worker) join one external nats-server. Publishes through either node
// reach the clients of both, and every client sees one seq per topic,
// contiguous and in order, whichever node took the publish.
func TestTwoNodesShareExternalNATS(t *testing.T) {
	url, stopNATS := startNATSServer(t)
	a := startNode(t, "--workers", "1", "--nats", url)
	b := startNode(t, "--workers", "1", "--nats", url)
	clients := append(dialMany(t, a.ws, "match.1", 10), dialMany(t, b.ws, "match.1", 10)...)
	primeAll(t, "match.1", clients, a, b)

	var last uint64
	for i, via := range []*node{a, b, b, a, b, a} {
		data := fmt.Sprintf(`{"event":%d}`, i)
		seq := via.publish("match.1", data)
		if last != 0 && seq != last+1 {
			t.Fatalf("publish %d got seq %d after %d: not one sequence across nodes", i, seq, last)
		}
		last = seq
		expect(t, clients, message{Topic: "match.1", Seq: seq, Data: json.RawMessage(data)})
	}

	// The bus goes away: publishing answers 503, health fails, nothing crashes.
	stopNATS()
	resp, err := http.Post(a.control+"/publish/match.1", "application/json", strings.NewReader("1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
		t.Fatalf("publish with NATS down: %d %s, want 503 unavailable", resp.StatusCode, body)
	}
	if resp, err := http.Get(a.control + "/healthz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with NATS down: %v %v, want 503", resp, err)
	}
	select {
	case <-a.exited:
		t.Fatal("supervisor exited when NATS went away")
	default:
	}
}
