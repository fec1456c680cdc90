package supervisor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsCluster is three nats-server processes routed into one JetStream
// cluster on loopback.
type natsCluster struct {
	t     *testing.T
	bin   string
	ports [3]int // client ports
	route [3]int // cluster ports
	dirs  [3]string
	procs [3]*exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: natsBinary(t)}
	for i := range 3 {
		c.ports[i], c.route[i], c.dirs[i] = freePort(t), freePort(t), t.TempDir()
	}
	for i := range 3 {
		c.start(i)
	}
	return c
}

func (c *natsCluster) start(i int) {
	var routes []string
	for j := range 3 {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", c.route[j]))
		}
	}
	cmd := exec.Command(c.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(c.ports[i]), "-n", fmt.Sprintf("fw-%d", i),
		"-js", "-sd", c.dirs[i], "--cluster_name", "fanwire-test",
		"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", c.route[i]), "--routes", strings.Join(routes, ","))
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
	c.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func (c *natsCluster) kill(i int) {
	c.procs[i].Process.Kill()
	c.procs[i].Wait()
}

// streamLeader is the index of the server leading the FANWIRE stream; it
// fails the test unless the stream has 3 replicas.
func (c *natsCluster) streamLeader() int {
	nc, err := nats.Connect(c.urls())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "FANWIRE")
	if err != nil {
		c.t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil {
		c.t.Fatalf("stream has %d replicas on a 3-server cluster, want 3", info.Config.Replicas)
	}
	var i int
	if _, err := fmt.Sscanf(info.Cluster.Leader, "fw-%d", &i); err != nil {
		c.t.Fatalf("stream leader %q", info.Cluster.Leader)
	}
	return i
}

func (c *natsCluster) urls() string {
	var u []string
	for _, p := range c.ports {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(u, ",")
}

// publishRetrying publishes data with an idempotency key, retrying 503s
// (as a publisher should) until it is answered 200; it returns the seq.
func publishRetrying(t *testing.T, n *node, topic, data, key string) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("POST", n.control+"/publish/"+topic, strings.NewReader(data))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var r struct{ Seq uint64 }
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &r) == nil {
				return r.Seq
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("publish: %d %s", resp.StatusCode, body)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish of %s not accepted within 30s: %v", key, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNATSClusterLosesAServer: on a 3-server JetStream cluster the stream
// has 3 replicas; killing a server (and later bringing it back) loses
// nothing a publisher was told was stored. Publishes retried through the
// failover with their idempotency key are stored once, and subscribers see
// every seq once, in order.
func TestNATSClusterLosesAServer(t *testing.T) {
	cl := startNATSCluster(t)
	n := startNode(t, "--workers", "2", "--nats", cl.urls())
	const topic = "cluster.feed"
	clients := dialMany(t, n.ws, topic, 10)
	primeAll(t, topic, clients, n)
	next := publishRetrying(t, n, topic, `"probe2"`, "probe2") + 1
	expect(t, clients, message{Topic: topic, Seq: next - 1, Data: json.RawMessage(`"probe2"`)})

	seqs := []uint64{}
	publishSome := func(k int) {
		for range k {
			s := publishRetrying(t, n, topic, strconv.FormatUint(next, 10), "m"+strconv.FormatUint(next, 10))
			if s != next {
				t.Fatalf("publish got seq %d, want %d (lost or duplicated across the failover)", s, next)
			}
			seqs = append(seqs, s)
			next++
		}
	}
	publishSome(3)
	leader := cl.streamLeader()
	cl.kill(leader) // the server holding the stream's leader: the worst one to lose
	publishSome(5)
	cl.start(leader)
	publishSome(3)
	expectRun(t, clients, topic, seqs[0], seqs[len(seqs)-1])
}
