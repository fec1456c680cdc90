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

// natsBinary is the system nats-server (Debian package nats-server,
// installed by .ci/test-deps.sh); without it the test is skipped, or fails
// under FANWIRE_REQUIRE_CLIENTS=1 (make test).
func natsBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("FANWIRE_REQUIRE_CLIENTS") == "1" {
			t.Fatal("nats-server is not installed (apt-get install nats-server; see .ci/test-deps.sh)")
		}
		t.Skip("nats-server is not installed; run .ci/test-deps.sh (set FANWIRE_REQUIRE_CLIENTS=1 to make this a failure)")
	}
	return bin
}

// natsServer is one external nats-server with JetStream on a fixed free
// loopback port, so it can be stopped and started again at the same URL.
type natsServer struct {
	t    *testing.T
	bin  string
	port int
	URL  string
	cmd  *exec.Cmd
}

func newNATSServer(t *testing.T) *natsServer {
	t.Helper()
	s := &natsServer{t: t, bin: natsBinary(t), port: freePort(t)}
	s.URL = fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	return s
}

// start runs it with its JetStream store in dir and waits until it accepts.
func (s *natsServer) start(dir string) {
	s.t.Helper()
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-js", "-sd", dir)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	s.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	eventually(s.t, "nats-server accepting", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop kills it (SIGKILL: no goodbye to the clients).
func (s *natsServer) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// startNATSServer runs a nats-server with a fresh store; stop kills it.
func startNATSServer(t *testing.T) (url string, stop func()) {
	t.Helper()
	s := newNATSServer(t)
	s.start(t.TempDir())
	return s.URL, s.stop
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
