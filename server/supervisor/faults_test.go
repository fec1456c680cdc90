package supervisor_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server/internal/faultproxy"
	"github.com/gorilla/websocket"
)

// Fault injection over real processes: a worker whose NATS link is cut,
// the external NATS restarting, a worker killed, the supervisor killed.
// Every case is bounded by the eventually/expect timeouts (seconds).

// expectRun checks that every client receives topic's seqs from..to next.
func expectRun(t *testing.T, clients []*client, topic string, from, to uint64) {
	t.Helper()
	for want := from; want <= to; want++ {
		expect(t, clients, message{Topic: topic, Seq: want, Data: json.RawMessage(strconv.FormatUint(want, 10))})
	}
}

// publishSeq publishes the seq the topic is expected to get next as data,
// so expectRun can check data too.
func (n *node) publishSeq(topic string, want uint64) {
	n.t.Helper()
	if got := n.publish(topic, strconv.FormatUint(want, 10)); got != want {
		n.t.Fatalf("publish got seq %d, want %d", got, want)
	}
}

// TestWorkerCutFromNATSCatchesUp: node A's link to the shared NATS is cut
// while node B keeps publishing. Once the link is back, A's worker reads
// what it missed from the stream: its clients get every seq, in order, with
// no gap and without waiting for a new publish.
func TestWorkerCutFromNATSCatchesUp(t *testing.T) {
	url, _ := startNATSServer(t)
	proxy, err := faultproxy.Start(strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	a := startNode(t, "--workers", "1", "--nats", "nats://"+proxy.Addr())
	b := startNode(t, "--workers", "1", "--nats", url)
	clients := dialMany(t, a.ws, "cut.feed", 5)
	primeAll(t, "cut.feed", clients, b)
	next := b.publish("cut.feed", `"probe"`) + 1
	expect(t, clients, message{Topic: "cut.feed", Seq: next - 1, Data: json.RawMessage(`"probe"`)})

	proxy.Cut()
	eventually(t, "node A to see the bus down", func() bool {
		resp, err := http.Get(a.control + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusServiceUnavailable
	})
	first := next
	for range 5 {
		b.publishSeq("cut.feed", next)
		next++
	}
	proxy.Restore()
	expectRun(t, clients, "cut.feed", first, next-1)
	b.publishSeq("cut.feed", next)
	expectRun(t, clients, "cut.feed", next, next)
}

// TestExternalNATSRestart: while the external nats-server is down every
// publish answers 503 with Retry-After, promptly; once it is back (same port
// and store) publishing works again within seconds without restarting
// fanwire, and subscribers see exactly the publishes answered 200.
func TestExternalNATSRestart(t *testing.T) {
	nsrv := newNATSServer(t)
	store := t.TempDir()
	nsrv.start(store)
	n := startNode(t, "--workers", "2", "--nats", nsrv.URL)
	clients := dialMany(t, n.ws, "restart.feed", 10)
	primeAll(t, "restart.feed", clients, n)
	next := n.publish("restart.feed", `"probe"`) + 1
	expect(t, clients, message{Topic: "restart.feed", Seq: next - 1, Data: json.RawMessage(`"probe"`)})

	nsrv.stop()
	for range 3 {
		start := time.Now()
		resp, err := http.Post(n.control+"/publish/restart.feed", "application/json", strings.NewReader(`"lost?"`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("publish with NATS down: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("publish with NATS down took %v", took)
		}
	}

	nsrv.start(store)
	restarted := time.Now()
	eventually(t, "publishing works again", func() bool {
		resp, err := http.Post(n.control+"/publish/restart.feed", "application/json", strings.NewReader(strconv.FormatUint(next, 10)))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct{ Seq uint64 }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		if r.Seq != next {
			t.Fatalf("first publish after the restart got seq %d, want %d", r.Seq, next)
		}
		return true
	})
	t.Logf("publishing worked again %v after nats-server restarted", time.Since(restarted).Round(time.Millisecond))
	expectRun(t, clients, "restart.feed", next, next)
	n.publishSeq("restart.feed", next+1)
	expectRun(t, clients, "restart.feed", next+1, next+1)
}

// TestWorkerCrashClientsResume: kill -9 a worker while publishing; its
// clients reconnect (to whichever worker the kernel picks) with their last
// seq and epoch and get what they missed as replay, no gap and no reset;
// the other worker's clients see every message; the supervisor restarts
// the worker.
func TestWorkerCrashClientsResume(t *testing.T) {
	n := startNode(t, "--workers", "2")
	const topic = "crash.resume"
	var ws []workerStatus
	var conns []*websocket.Conn
	var epoch string
	for len(conns) < 40 {
		c := dialRaw(t, n.ws)
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["`+topic+`"]}`)); err != nil {
			t.Fatal(err)
		}
		ack := next(t, c)
		epoch = ack.Epochs[topic]
		conns = append(conns, c)
	}
	eventually(t, "both workers hold clients", func() bool {
		ws = n.workers()
		return len(ws) == 2 && ws[0].Node != nil && ws[1].Node != nil && ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0
	})
	victim := ws[0]
	var seq uint64
	for i := 1; i <= 3; i++ {
		seq = n.publish(topic, strconv.Itoa(i))
	}
	last := make([]uint64, len(conns))
	for i, c := range conns {
		for last[i] < seq {
			m := next(t, c)
			if m.Seq != last[i]+1 && last[i] != 0 {
				t.Fatalf("client %d: seq %d after %d", i, m.Seq, last[i])
			}
			last[i] = m.Seq
		}
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Publishing goes on during the crash.
	for i := 4; i <= 8; i++ {
		seq = n.publish(topic, strconv.Itoa(i))
	}
	cut := 0
	for i, c := range conns {
		for last[i] < seq {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := c.ReadMessage()
			if err != nil { // the victim's client: reconnect and resume
				cut++
				c.Close()
				url := fmt.Sprintf("%s?topics=%s&since=%s:%d&epochs=%s:%s", n.ws, topic, topic, last[i], topic, epoch)
				var nc *websocket.Conn
				eventually(t, "reconnect", func() bool {
					nc, _, err = websocket.DefaultDialer.Dial(url, nil)
					return err == nil
				})
				t.Cleanup(func() { nc.Close() })
				conns[i], c = nc, nc
				continue
			}
			var m frame
			if json.Unmarshal(b, &m) != nil || m.Type != "" || m.Seq != last[i]+1 {
				t.Fatalf("client %d after seq %d got %s (no gap, no reset wanted)", i, last[i], b)
			}
			last[i] = m.Seq
		}
	}
	if int64(cut) != victim.Node.Stats.Conns {
		t.Fatalf("%d clients were cut off, the victim held %d", cut, victim.Node.Stats.Conns)
	}
	eventually(t, "the victim restarted", func() bool {
		w := n.workers()[0]
		return w.Ready && w.PID != victim.PID && w.Restarts >= 1
	})
	t.Logf("killed worker pid %d: %d clients resumed elsewhere without gap", victim.PID, cut)
}

// TestSupervisorDeathStopsWorkers: if the supervisor is killed outright its
// workers exit too (Pdeathsig) instead of lingering as orphans that hold
// the port and serve clients no publish can reach.
func TestSupervisorDeathStopsWorkers(t *testing.T) {
	n := startNode(t, "--workers", "2")
	var pids []int
	for _, w := range n.workers() {
		pids = append(pids, w.PID)
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.exited
	eventually(t, "the workers to exit", func() bool {
		for _, pid := range pids {
			if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
					return false
				}
			}
		}
		return true
	})
	addr := strings.TrimSuffix(strings.TrimPrefix(n.ws, "ws://"), "/ws")
	eventually(t, "the port to be free", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// TestExternalNATSLosesStore: nats-server comes back with an empty store, so
// the stream is created again and seqs start over. Publishing works again;
// the worker restarts with the new epoch, so a client resuming with the old
// one gets a reset instead of a replay across the break, and live
// publishes reach subscribers.
func TestExternalNATSLosesStore(t *testing.T) {
	nsrv := newNATSServer(t)
	nsrv.start(t.TempDir())
	n := startNode(t, "--workers", "1", "--nats", nsrv.URL)
	const topic = "lost.store"
	c := dialRaw(t, n.ws)
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["`+topic+`"]}`))
	epoch := next(t, c).Epochs[topic]
	for i := 1; i <= 3; i++ {
		n.publish(topic, strconv.Itoa(i))
	}
	pid := n.workers()[0].PID
	nsrv.stop()
	nsrv.start(t.TempDir()) // an empty store
	eventually(t, "publishing works again", func() bool {
		resp, err := http.Post(n.control+"/publish/"+topic, "application/json", strings.NewReader(`"new"`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	eventually(t, "the worker restarted", func() bool {
		w := n.workers()[0]
		return w.Ready && w.PID != pid
	})
	r := dialRaw(t, fmt.Sprintf("%s?topics=%s&since=%s:3&epochs=%s:%s", n.ws, topic, topic, topic, epoch))
	if m := next(t, r); m.Type != "reset" {
		t.Fatalf("resume with the old epoch: got %+v, want a reset", m)
	}
}
