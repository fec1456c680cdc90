package supervisor_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestWorkerCrashUnderLoad: `fanwire load fanout --resume` is the oracle.
// Mid-run one of two workers is killed with SIGKILL (with FANWIRE_CHAOS=1,
// `make chaos`: 2,000 subscribers for 40 s, and every 6 s the worker that
// holds more of them killed); the load generator's
// subscribers on it reconnect (landing on the other worker, or the
// restarted one) and resume after their last seq. The report must show
// every acknowledged publish delivered to every subscriber: nothing lost,
// no gap (silent or announced), no duplicate.
func TestWorkerCrashUnderLoad(t *testing.T) {
	subs, rate, duration, kills := 200, "40", "6s", 1
	if os.Getenv("FANWIRE_CHAOS") == "1" {
		subs, rate, duration, kills = 2000, "100", "40s", 5
	}
	n := startNode(t, "--workers", "2")
	report := filepath.Join(t.TempDir(), "report.json")
	load := exec.Command(fanwireBin, "load", "fanout", "--url", n.ws, "--api", n.control,
		"--subscribers", strconv.Itoa(subs), "--rate", "2000", "--topics", "2", "--pub-rate", rate, "--size", "64",
		"--duration", duration, "--drain", "10s", "--resume", "--quiet", "--json", report)
	load.Stdout, load.Stderr = os.Stderr, os.Stderr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- load.Wait() }()

	var victim workerStatus
	for k := range kills {
		eventually(t, "both workers hold subscribers", func() bool {
			ws := n.workers()
			if len(ws) != 2 || ws[0].Node == nil || ws[1].Node == nil || !ws[0].Ready || !ws[1].Ready {
				return false
			}
			victim = ws[0] // the one holding more (after a kill the survivor holds them all)
			if ws[1].Node.Stats.Conns > ws[0].Node.Stats.Conns {
				victim = ws[1]
			}
			if k > 0 { // later kills: whoever holds them now
				return true
			}
			return ws[0].Node.Stats.Conns > 0 && ws[1].Node.Stats.Conns > 0 && ws[0].Node.Stats.Conns+ws[1].Node.Stats.Conns >= int64(subs)
		})
		if k == 0 {
			time.Sleep(time.Second) // publishing is under way
		} else {
			time.Sleep(6 * time.Second)
		}
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: worker pid %d with %d subscribers", k+1, victim.PID, victim.Node.Stats.Conns)
	}
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		load.Process.Kill()
		t.Fatal("load generator did not finish")
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Connections struct {
			Reconnects int64            `json:"reconnects"`
			Failed     int64            `json:"failed"`
			FailedBy   map[string]int64 `json:"failed_by"`
			ClosedBy   map[string]int64 `json:"closed_by"`
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
	t.Logf("after %d kill(s): %+v, reconnects %d, failed %d %v, closed by %v", kills, d, r.Connections.Reconnects, r.Connections.Failed, r.Connections.FailedBy, r.Connections.ClosedBy)
	if r.Connections.Reconnects == 0 {
		t.Fatal("no subscriber reconnected: the crash did not happen under load")
	}
	if d.Published == 0 || d.PublishErrors != 0 || d.Lost != 0 || d.Gaps != 0 || d.Announced != 0 || d.Resets != 0 || d.Dups != 0 || d.Delivered != d.Expected {
		t.Fatalf("delivery after a worker crash: %+v", d)
	}
	eventually(t, "the victim restarted", func() bool {
		w := n.workers()[victim.ID-1]
		return w.Ready && w.PID != victim.PID
	})
}
