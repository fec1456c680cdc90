package doctor

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// thisKind is a machine like the project's: 20,000 open files per process.
func thisKind() Readings {
	return Readings{
		NofileSoft: 20000, NofileHard: 20000, NrOpen: 1048576, FileMax: 2470878,
		Somaxconn: 4096, SynBacklog: 2048, PortLow: 32768, PortHigh: 60999,
		Conntrack: true, ConntrackMax: 262144, ConntrackLoopback: "unknown",
		MemTotal: 24 << 30, MemAvailable: 23 << 30, CPUs: 2,
	}
}

// tuned is a host prepared as the README says.
func tuned() Readings {
	return Readings{
		NofileSoft: 1048576, NofileHard: 1048576, NrOpen: 1048576, FileMax: 4000000,
		Somaxconn: 65535, SynBacklog: 65535, PortLow: 1024, PortHigh: 65535,
		MemTotal: 24 << 30, MemAvailable: 23 << 30, CPUs: 2,
		Systemd: Systemd{Running: true, Unit: "fanwire.service", UnitLoaded: true, LimitNOFILE: "1048576"},
	}
}

func check(t *testing.T, rep Report, prefix string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", prefix, rep.Checks)
	return Check{}
}

func TestEvaluateThisKindOfMachine(t *testing.T) {
	rep := Evaluate(thisKind(), Target{Conns: 1_000_000})
	if rep.Workers != 56 || rep.PerProc != 18000 {
		t.Fatalf("workers %d per process %d, want 56 and 18,000", rep.Workers, rep.PerProc)
	}
	if c := check(t, rep, "open files"); c.Status != Fail || !strings.Contains(c.Now, "hard 20,000") || !strings.Contains(c.Fix, "--workers 56") {
		t.Fatalf("nofile: %+v", c)
	}
	for _, name := range []string{"net.core.somaxconn", "tcp_max_syn_backlog"} {
		if c := check(t, rep, name); c.Status != Warn || c.Value != "65535" || c.Sysctl == "" {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := check(t, rep, "nf_conntrack_max"); c.Status != Warn || c.Sysctl != "net.netfilter.nf_conntrack_max" {
		t.Errorf("conntrack loaded, nothing tracked: %+v", c)
	}
	if c := check(t, rep, "memory"); c.Status != OK || !strings.Contains(c.Needed, "5,727 B/conn") {
		t.Errorf("memory: %+v", c)
	}
	if !strings.Contains(rep.Summary, "--workers 56") {
		t.Errorf("summary: %s", rep.Summary)
	}
	// 10,000 fit in one process.
	if small := Evaluate(thisKind(), Target{Conns: 10000}); small.Workers != 1 || check(t, small, "open files").Status != OK {
		t.Errorf("10k: %+v", small)
	}
}

func TestEvaluateTunedHost(t *testing.T) {
	rep := Evaluate(tuned(), Target{Conns: 1_000_000})
	for _, c := range rep.Checks {
		if c.Status == Fail || c.Status == Warn || c.Sysctl != "" {
			t.Errorf("%s: %+v", c.Name, c)
		}
	}
	if rep.Workers != 1 || !strings.Contains(rep.Summary, "in one process") {
		t.Fatalf("workers %d, summary %q", rep.Workers, rep.Summary)
	}
	if SysctlConf(rep) != "# /etc/sysctl.d/90-fanwire.conf (fanwire doctor)\n" {
		t.Errorf("nothing to set, got %q", SysctlConf(rep))
	}
}

func TestEvaluateLimits(t *testing.T) {
	r := tuned()
	r.MemAvailable = 13 << 29 // 6.5 GiB
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000}), "memory"); c.Status != Warn {
		t.Errorf("5.3 GiB of 6.5 GiB: %+v", c)
	}
	// The load generator on the same host doubles sockets and kernel memory.
	rep := Evaluate(r, Target{Conns: 1_000_000, LoadHere: true})
	if c := check(t, rep, "memory"); c.Status != Fail || !strings.Contains(c.Needed, "11,063 B/conn") {
		t.Errorf("load here, 6.5 GiB: %+v", c)
	}
	r.FileMax = 1_500_000
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000, LoadHere: true}), "fs.file-max"); c.Status != Fail || c.Value != "4194304" {
		t.Errorf("file-max for 2M sockets: %+v", c)
	}
	r = tuned()
	r.Conntrack, r.ConntrackMax, r.ConntrackCount, r.ConntrackLoopback = true, 262144, 1200, "tracked"
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000}), "nf_conntrack"); c.Status != Fail || c.Value != "2097152" {
		t.Errorf("tracked, table too small: %+v", c)
	}
	r.ConntrackLoopback = "not tracked"
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000, LoadHere: true}), "nf_conntrack"); c.Status != OK {
		t.Errorf("loopback not tracked: %+v", c)
	}
	r = tuned()
	r.Systemd.LimitNOFILE = "20000"
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000}), "systemd"); c.Status != Warn || !strings.Contains(c.Fix, "LimitNOFILE=1048576") {
		t.Errorf("unit limit 20000: %+v", c)
	}
	r.NrOpen = 20000
	if c := check(t, Evaluate(r, Target{Conns: 1_000_000}), "fs.nr_open"); c.Status != Warn || c.Value != "1048576" {
		t.Errorf("nr_open: %+v", c)
	}
	r.NofileHard = 1000 // below the reserve
	if rep := Evaluate(r, Target{Conns: 100}); check(t, rep, "workers").Fix == "" || check(t, rep, "open files").Status != Fail {
		t.Errorf("hard limit below the reserve: %+v", rep)
	}
}

// fakeRoot writes a /proc tree with this kind of machine's values.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/self/limits":                          "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n",
		"proc/meminfo":                              "MemTotal:       24731184 kB\nMemFree:  1 kB\nMemAvailable:   23776036 kB\n",
		"proc/sys/fs/nr_open":                       "1048576\n",
		"proc/sys/fs/file-max":                      "2470878\n",
		"proc/sys/net/core/somaxconn":               "4096\n",
		"proc/sys/net/ipv4/tcp_max_syn_backlog":     "2048\n",
		"proc/sys/net/ipv4/ip_local_port_range":     "32768\t60999\n",
		"proc/sys/net/netfilter/nf_conntrack_max":   "262144\n",
		"proc/sys/net/netfilter/nf_conntrack_count": "7\n",
		"run/systemd/system/.keep":                  "",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadAndApplyOnFakeRoot(t *testing.T) {
	root := fakeRoot(t)
	h := Host{Root: root, Run: func(name string, args ...string) ([]byte, error) {
		switch name {
		case "iptables":
			return []byte("-P PREROUTING ACCEPT\n-A PREROUTING -i lo -j NOTRACK\n"), nil
		case "systemctl":
			return []byte("LoadState=loaded\nLimitNOFILE=524288\n"), nil
		}
		return nil, errors.New("not installed")
	}}
	r, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := Readings{NofileSoft: 1024, NofileHard: 20000, NrOpen: 1048576, FileMax: 2470878, Somaxconn: 4096, SynBacklog: 2048,
		PortLow: 32768, PortHigh: 60999, Conntrack: true, ConntrackMax: 262144, ConntrackCount: 7, ConntrackLoopback: "not tracked",
		MemTotal: 24731184 << 10, MemAvailable: 23776036 << 10, CPUs: r.CPUs,
		Systemd: Systemd{Running: true, Unit: "fanwire.service", UnitLoaded: true, LimitNOFILE: "524288"}}
	if r != want {
		t.Fatalf("read\n %+v\nwant\n %+v", r, want)
	}
	rep := Evaluate(r, Target{Conns: 1_000_000, LoadHere: true})
	var out bytes.Buffer
	if err := h.Apply(rep, &out); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	for name, v := range map[string]string{
		"net.core.somaxconn": "65535", "net.ipv4.tcp_max_syn_backlog": "65535", "net.ipv4.ip_local_port_range": "1024 65535",
		"net.netfilter.nf_conntrack_max": "2097152", "fs.file-max": "2470878", "fs.nr_open": "1048576",
	} {
		if got, _ := h.Sysctl(name); got != v {
			t.Errorf("%s = %q after apply, want %q", name, got, v)
		}
	}
	if !strings.Contains(out.String(), "sysctl net.core.somaxconn: 4096 -> 65535\n") ||
		!strings.Contains(out.String(), "sysctl net.ipv4.ip_local_port_range: 32768 60999 -> 1024 65535\n") {
		t.Errorf("apply output:\n%s", out.String())
	}
	// Applied: nothing left to set.
	r2, _ := h.Read()
	if conf := SysctlConf(Evaluate(r2, Target{Conns: 1_000_000, LoadHere: true})); strings.Count(conf, "\n") != 1 {
		t.Errorf("after apply still to set:\n%s", conf)
	}
}

// On this machine's real values: the report names the real hard limit
// (20,000 on the project's machines) and the workers 1M needs under it.
func TestReadThisMachine(t *testing.T) {
	r, err := Host{}.Read()
	if err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if r.NofileHard != lim.Max {
		t.Fatalf("hard limit read %d, getrlimit %d", r.NofileHard, lim.Max)
	}
	rep := Evaluate(r, Target{Conns: 1_000_000})
	want := int((1_000_000 + lim.Max - Reserve - 1) / (lim.Max - Reserve))
	if rep.Workers != want {
		t.Fatalf("workers %d, want %d for hard limit %d", rep.Workers, want, lim.Max)
	}
	if lim.Max == 20000 && (rep.Workers != 56 || !strings.Contains(check(t, rep, "open files").Now, "hard 20,000")) {
		t.Fatalf("20,000 files per process: %+v", rep)
	}
	if r.FileMax == 0 || r.NrOpen == 0 || r.Somaxconn == 0 || r.MemTotal == 0 || r.PortLow == 0 {
		t.Fatalf("unread values: %+v", r)
	}
	for _, c := range rep.Checks {
		t.Logf("%-32s %-32s %-24s %s", c.Name, c.Now, c.Needed, c.Status)
	}
	t.Log(rep.Summary)
}
