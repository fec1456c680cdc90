package supervisor_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Worker mode: the supervisor's control API checks the keys; the worker
// processes never get them, neither on their command line nor in their
// environment.
func TestWorkerModeKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(file, []byte("file-publish-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FANWIRE_ADMIN_KEYS", "env-admin-key")
	n := startNode(t, "--workers", "2", "--api-key", "cmdline-publish-key", "--api-key-file", file)
	do := func(method, path, key, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, n.control+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, body := do("POST", "/publish/news", "", `1`); status != 401 || !bytes.Contains(body, []byte(`"unauthorized"`)) {
		t.Fatalf("publish without key: %d %s", status, body)
	}
	if status, _ := do("POST", "/publish/news", "wrong", `1`); status != 401 {
		t.Fatalf("publish with a wrong key: %d", status)
	}
	c := dial(t, n.ws, "news")
	seq := uint64(0)
	eventually(t, "a keyed publish delivered through a worker", func() bool {
		status, body := do("POST", "/publish/news", "file-publish-key", `"hello"`)
		if status != 200 {
			t.Fatalf("publish with the file key: %d %s", status, body)
		}
		var r struct{ Seq uint64 }
		json.Unmarshal(body, &r)
		select {
		case m := <-c.msgs:
			seq = m.Seq
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	if seq == 0 {
		t.Fatal("no delivery")
	}
	if status, _ := do("POST", "/publish/news", "cmdline-publish-key", `2`); status != 200 {
		t.Fatalf("publish with the command-line key: %d", status)
	}
	if status, _ := do("GET", "/stats", "file-publish-key", ""); status != 401 {
		t.Fatalf("/stats with a publish key: %d", status)
	}
	var st struct{ Workers []workerStatus }
	eventually(t, "/stats with the admin key, with both workers' limit counters", func() bool {
		status, body := do("GET", "/stats", "env-admin-key", "")
		if status != 200 || json.Unmarshal(body, &st) != nil || len(st.Workers) != 2 {
			t.Fatalf("/stats with the admin key: %d %s", status, body)
		}
		return bytes.Count(body, []byte(`"rejected_ip":0`)) == 2
	})
	for _, w := range st.Workers {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(w.PID) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		environ, _ := os.ReadFile("/proc/" + strconv.Itoa(w.PID) + "/environ")
		for _, secret := range []string{"cmdline-publish-key", "api-key", "env-admin-key", "FANWIRE_ADMIN_KEYS"} {
			if bytes.Contains(cmdline, []byte(secret)) || bytes.Contains(environ, []byte(secret)) {
				t.Errorf("worker %d has %q in its command line or environment: %q", w.ID, secret, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	}
	if logs := n.logs.String(); strings.Contains(logs, "publish-key") || strings.Contains(logs, "env-admin-key") || !strings.Contains(logs, "visible to every local user in ps") {
		t.Fatalf("logs show a key or lack the ps warning:\n%s", logs)
	}
}

// Worker mode splits the node-wide connection rate over the workers (burst
// 4 over 2 workers: 2 each), and counts every refusal in the workers' stats.
// Which worker a connection lands on is the kernel's choice (SO_REUSEPORT),
// so the exact split varies; the node never admits more than its burst.
func TestWorkerModeConnRateIsNodeWide(t *testing.T) {
	n := startNode(t, "--workers", "2", "--max-conn-rate", "0.001", "--max-conn-burst", "4")
	const attempts = 20
	upgraded := 0
	for range attempts {
		c, resp, err := websocket.DefaultDialer.Dial(n.ws, nil)
		switch {
		case err == nil:
			upgraded++
			defer c.Close()
		case resp != nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1":
		default:
			t.Fatalf("dial: %v (%v)", err, resp)
		}
	}
	if upgraded < 2 || upgraded > 4 {
		t.Fatalf("%d of %d upgraded; want at most the node's burst of 4 (and at least one worker's 2)", upgraded, attempts)
	}
	var rejected uint64
	eventually(t, "both workers' rejected_rate", func() bool {
		req, _ := http.NewRequest("GET", n.control+"/stats", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Workers []struct {
				Node *struct {
					Stats struct {
						RejectedRate uint64 `json:"rejected_rate"`
					} `json:"stats"`
				} `json:"node"`
			} `json:"workers"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		rejected = 0
		for _, w := range st.Workers {
			if w.Node == nil {
				return false
			}
			rejected += w.Node.Stats.RejectedRate
		}
		return true
	})
	if rejected != uint64(attempts-upgraded) {
		t.Fatalf("rejected_rate over the workers %d, want %d", rejected, attempts-upgraded)
	}
	t.Logf("%d of %d upgraded, %d refused with 503", upgraded, attempts, rejected)
}
