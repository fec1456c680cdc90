package supervisor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fanwireBin is the binary under test, built once by TestMain.
var fanwireBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fanwire-supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fanwireBin = filepath.Join(dir, "fanwire")
	build := exec.Command("go", "build", "-o", fanwireBin, "github.com/fanwire/fanwire/cmd/fanwire")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fanwire:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one `fanwire serve --workers N` supervisor process.
type node struct {
	t       *testing.T
	cmd     *exec.Cmd
	ws      string // ws://host:port/ws
	control string // http://host:port
	logs    *syncBuffer
	exited  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode runs the supervisor and waits until /healthz says every worker is ready.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--loops", "1",
		"--log-format", "json", "--drain-window", "100ms"}, args...)
	cmd := exec.Command(fanwireBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			n.logs.Write(append(line, '\n'))
			var rec struct{ Msg, WS, Control string }
			if json.Unmarshal(line, &rec) == nil && strings.HasSuffix(rec.Msg, " supervising") && n.ws == "" {
				n.ws, n.control = rec.WS, rec.Control
				close(found)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("supervisor %v logs:\n%s", args, n.logs.String())
		}
	})
	select {
	case <-found:
	case <-n.exited:
		t.Fatalf("supervisor exited early:\n%s", n.logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("supervisor did not start:\n%s", n.logs.String())
	}
	n.waitHealthy()
	return n
}

func (n *node) waitHealthy() {
	n.t.Helper()
	eventually(n.t, "healthz 200", func() bool {
		resp, err := http.Get(n.control + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// workerStatus is the part of /stats the tests read.
type workerStatus struct {
	ID       int  `json:"id"`
	PID      int  `json:"pid"`
	Ready    bool `json:"ready"`
	Restarts int  `json:"restarts"`
	Node     *struct {
		PID   int `json:"pid"`
		Stats struct {
			Conns int64 `json:"conns"`
			Users int   `json:"users"`
		} `json:"stats"`
	} `json:"node"`
}

func (n *node) workers() []workerStatus {
	n.t.Helper()
	resp, err := http.Get(n.control + "/stats")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Workers []workerStatus }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		n.t.Fatal(err)
	}
	return st.Workers
}

// publish POSTs data to topic and returns the assigned seq.
func (n *node) publish(topic, data string) uint64 {
	n.t.Helper()
	resp, err := http.Post(n.control+"/publish/"+topic, "application/json", strings.NewReader(data))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Seq uint64 }
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil {
		n.t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	return r.Seq
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// message is one delivery as a subscriber sees it.
type message struct {
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq"`
	Data  json.RawMessage `json:"data"`
}

// client is one WebSocket subscriber reading on its own goroutine.
type client struct {
	conn *websocket.Conn
	msgs chan message
	done chan struct{}
	err  error // set before done is closed
}

func dial(t *testing.T, wsURL, topic string) *client {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL+"?topics="+topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{conn: conn, msgs: make(chan message, 256), done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(c.done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var m message
			if json.Unmarshal(b, &m) == nil && m.Seq > 0 {
				c.msgs <- m
			}
		}
	}()
	return c
}

func (c *client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// primeAll publishes probes through pubs in turn until every client has
// received one: each worker's NATS interest is set up asynchronously after
// its first subscriber connects. Probes are then drained.
func primeAll(t *testing.T, topic string, clients []*client, pubs ...*node) {
	t.Helper()
	got := make([]bool, len(clients))
	left := len(clients)
	for i := 0; left > 0; i++ {
		if i == 200 {
			t.Fatalf("%d of %d clients never received a probe", left, len(clients))
		}
		pubs[i%len(pubs)].publish(topic, `"probe"`)
		time.Sleep(50 * time.Millisecond)
		for j, c := range clients {
			for drained := false; !drained; {
				select {
				case <-c.msgs:
					if !got[j] {
						got[j] = true
						left--
					}
				default:
					drained = true
				}
			}
		}
	}
}

// expect checks that every client receives exactly want next.
func expect(t *testing.T, clients []*client, want message) {
	t.Helper()
	for i, c := range clients {
		select {
		case m := <-c.msgs:
			if m.Topic != want.Topic || m.Seq != want.Seq || string(m.Data) != string(want.Data) {
				t.Fatalf("client %d got %s/%d %s, want %s/%d %s", i, m.Topic, m.Seq, m.Data, want.Topic, want.Seq, want.Data)
			}
		case <-c.done:
			t.Fatalf("client %d closed: %v", i, c.err)
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d: no message %d within 5s", i, want.Seq)
		}
	}
}

func dialMany(t *testing.T, wsURL, topic string, n int) []*client {
	t.Helper()
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, wsURL, topic)
	}
	return cs
}

// TestTwoWorkersShareOnePort: subscribers spread over two workers behind one
// port, a publish reaches all of them with one seq, and SIGTERM drains both
// workers with close 1001.
func TestTwoWorkersShareOnePort(t *testing.T) {
	n := startNode(t, "--workers", "2")
	clients := dialMany(t, n.ws, "news", 40)

	var ws []workerStatus
	eventually(t, "both workers report 40 connections between them", func() bool {
		ws = n.workers()
		var sum int64
		for _, w := range ws {
			if w.Node != nil {
				sum += w.Node.Stats.Conns
			}
		}
		return len(ws) == 2 && sum == 40
	})
	for _, w := range ws {
		if w.Node.Stats.Conns == 0 {
			t.Fatalf("worker %d (pid %d) got no connections of 40: %+v", w.ID, w.PID, ws)
		}
		t.Logf("worker %d pid %d: %d connections", w.ID, w.PID, w.Node.Stats.Conns)
	}

	primeAll(t, "news", clients, n)
	seq := n.publish("news", `{"headline":"both workers"}`)
	expect(t, clients, message{Topic: "news", Seq: seq, Data: json.RawMessage(`{"headline":"both workers"}`)})

	// Graceful drain: SIGTERM to the supervisor reaches every worker.
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		select {
		case <-c.done:
			if !websocket.IsCloseError(c.err, websocket.CloseGoingAway) {
				t.Fatalf("client %d: closed with %v, want 1001", i, c.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d not closed after SIGTERM", i)
		}
	}
	select {
	case <-n.exited:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("supervisor exit code %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("supervisor did not exit after SIGTERM")
	}
}

// TestWorkerCrashIsRestarted: kill -9 one worker; the supervisor restarts it,
// exactly its clients are cut off and can reconnect, the others never notice.
func TestWorkerCrashIsRestarted(t *testing.T) {
	n := startNode(t, "--workers", "2")
	clients := dialMany(t, n.ws, "crash", 40)
	var victim workerStatus
	eventually(t, "worker 1 reports connections", func() bool {
		ws := n.workers()
		var sum int64
		for _, w := range ws {
			if w.Node != nil {
				sum += w.Node.Stats.Conns
			}
		}
		victim = ws[0]
		return sum == 40 && victim.Node.Stats.Conns > 0
	})
	primeAll(t, "crash", clients, n)

	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "worker 1 restarted and ready", func() bool {
		w := n.workers()[0]
		return w.Ready && w.PID != victim.PID && w.Restarts >= 1
	})
	n.waitHealthy()

	var cut, kept []*client
	eventually(t, "the victim's clients to see the crash", func() bool {
		cut, kept = nil, nil
		for _, c := range clients {
			if c.closed() {
				cut = append(cut, c)
			} else {
				kept = append(kept, c)
			}
		}
		return int64(len(cut)) == victim.Node.Stats.Conns
	})
	t.Logf("killed worker pid %d: %d clients cut off, %d unaffected", victim.PID, len(cut), len(kept))

	seq := n.publish("crash", `"survivors"`)
	expect(t, kept, message{Topic: "crash", Seq: seq, Data: json.RawMessage(`"survivors"`)})

	back := dialMany(t, n.ws, "crash", len(cut))
	all := append(kept, back...)
	primeAll(t, "crash", all, n)
	seq = n.publish("crash", `"everyone"`)
	expect(t, all, message{Topic: "crash", Seq: seq, Data: json.RawMessage(`"everyone"`)})
	for i, c := range kept {
		if c.closed() {
			t.Fatalf("unaffected client %d was closed: %v", i, c.err)
		}
	}
}
