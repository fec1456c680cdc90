package supervisor_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestWorkerCrashUnderLoad: `fanwire load fanout --resume` is the oracle.
// Mid-run one of two workers is killed with SIGKILL; the load generator's
// subscribers on it reconnect (landing on the other worker, or the
// restarted one) and resume after their last seq. The report must show
// every acknowledged publish delivered to every subscriber: nothing lost,
// no gap (silent or announced), no duplicate.
func TestWorkerCrashUnderLoad(t *testing.T) {
	n := startNode(t, "--workers", "2")
	report := filepath.Join(t.TempDir(), "report.json")
	load := exec.Command(fanwireBin, "load", "fanout", "--url", n.ws, "--api", n.control,
		"--subscribers", "200", "--rate", "2000", "--topics", "2", "--pub-rate", "40", "--size", "64",
		"--duration", "6s", "--drain", "10s", "--resume", "--quiet", "--json", report)
	load.Stdout, load.Stderr = os.Stderr, os.Stderr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- load.Wait() }()

	var victim workerStatus
	eventually(t, "both workers hold subscribers", func() bool {
		ws := n.workers()
		if len(ws) != 2 || ws[0].Node == nil || ws[1].Node == nil {
			return false
		}
		victim = ws[0]
		return ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0 && ws[0].Node.Stats.Conns+ws[1].Node.Stats.Conns >= 200
	})
	time.Sleep(time.Second) // publishing is under way
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		load.Process.Kill()
		t.Fatal("load generator did not finish")
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Connections struct {
			Reconnects int64 `json:"reconnects"`
		} `json:"connections"`
		Delivery struct {
			Published     int64 `json:"published"`
			PublishErrors int64 `json:"publish_errors"`
			Expected      int64 `json:"expected"`
			Delivered     int64 `json:"delivered"`
			Lost          int64 `json:"lost"`
			Gaps          int64 `json:"gaps"`
			Announced     int64 `json:"announced_gaps"`
			Resets        int64 `json:"resets"`
			Dups          int64 `json:"dups"`
		} `json:"delivery"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	t.Logf("killed worker pid %d (%d subscribers): %+v, reconnects %d", victim.PID, victim.Node.Stats.Conns, d, r.Connections.Reconnects)
	if r.Connections.Reconnects == 0 {
		t.Fatal("no subscriber reconnected: the crash did not happen under load")
	}
	if d.Published == 0 || d.PublishErrors != 0 || d.Lost != 0 || d.Gaps != 0 || d.Announced != 0 || d.Resets != 0 || d.Dups != 0 || d.Delivered != d.Expected {
		t.Fatalf("delivery after a worker crash: %+v", d)
	}
	eventually(t, "the victim restarted", func() bool {
		w := n.workers()[0]
		return w.Ready && w.PID != victim.PID
	})
}
