package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDoctorOnThisMachine(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "--conns", "1000000"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	t.Log("\n" + out.String())
	if lim.Max == 20000 && (!strings.Contains(out.String(), "hard 20,000") || !strings.Contains(out.String(), "--workers 56")) {
		t.Fatalf("want the 20,000 hard limit and --workers 56:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"doctor", "--conns", "1000000", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("--json exit %d: %s", code, errb.String())
	}
	var rep struct {
		Workers int `json:"workers_needed"`
		Checks  []struct{ Check, Status string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Checks) < 8 || rep.Workers < 1 {
		t.Fatalf("--json: %v %+v\n%s", err, rep, out.String())
	}
}

func TestDoctorApplyOnFakeRoot(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"proc/self/limits":                      "Max open files            1024                 1048576              files\n",
		"proc/meminfo":                          "MemTotal: 4000000 kB\nMemAvailable: 3000000 kB\n",
		"proc/sys/fs/nr_open":                   "1048576\n",
		"proc/sys/fs/file-max":                  "100000\n",
		"proc/sys/net/core/somaxconn":           "4096\n",
		"proc/sys/net/ipv4/tcp_max_syn_backlog": "65535\n",
		"proc/sys/net/ipv4/ip_local_port_range": "1024 65535\n",
	} {
		p := filepath.Join(root, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	// Without --apply nothing changes.
	if code := run([]string{"doctor", "--root", root, "--conns", "100000"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if b, _ := os.ReadFile(filepath.Join(root, "proc/sys/net/core/somaxconn")); string(b) != "4096\n" {
		t.Fatalf("changed without --apply: %q", b)
	}
	out.Reset()
	if code := run([]string{"doctor", "--root", root, "--conns", "100000", "--apply"}, &out, &errb); code != 0 {
		t.Fatalf("--apply exit %d: %s\n%s", code, errb.String(), out.String())
	}
	for _, want := range []string{"sysctl net.core.somaxconn: 4096 -> 65535", "sysctl fs.file-max: 100000 -> 1048576"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("want %q in:\n%s", want, out.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "proc/sys/net/core/somaxconn")); string(b) != "65535\n" {
		t.Fatalf("somaxconn after --apply: %q", b)
	}
	if !strings.Contains(out.String(), "memory (idle connections)") || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("100k with file-max 100,000: want a FAIL:\n%s", out.String())
	}
}
