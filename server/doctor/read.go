package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Host is where readings come from and sysctls go to. Root is "/" on a
// real host; tests point it at a fake tree (proc/sys/..., proc/meminfo).
type Host struct {
	Root string
	Unit string // systemd unit to ask about; "" = fanwire.service
	// Run runs a command and returns its stdout (systemctl, iptables, nft);
	// nil = exec. Tests replace it.
	Run func(name string, args ...string) ([]byte, error)
}

// sysctlPath maps "net.core.somaxconn" to <root>/proc/sys/net/core/somaxconn.
func (h Host) sysctlPath(name string) string {
	return filepath.Join(h.root(), "proc", "sys", strings.ReplaceAll(name, ".", "/"))
}

func (h Host) root() string {
	if h.Root == "" {
		return "/"
	}
	return h.Root
}

func (h Host) run(name string, args ...string) ([]byte, error) {
	if h.Run != nil {
		return h.Run(name, args...)
	}
	if _, err := exec.LookPath(name); err != nil {
		return nil, err
	}
	return exec.Command(name, args...).Output()
}

// Sysctl reads one value ("32768\t60999" for ranges).
func (h Host) Sysctl(name string) (string, error) {
	b, err := os.ReadFile(h.sysctlPath(name))
	return strings.TrimSpace(string(b)), err
}

func (h Host) sysctlUint(name string) uint64 {
	s, err := h.Sysctl(name)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.Fields(s + " 0")[0], 10, 64)
	return v
}

// Read gathers the readings. Missing files read as zero (a container may
// hide some); the report then says what it could not see.
func (h Host) Read() (Readings, error) {
	var r Readings
	var err error
	r.NofileSoft, r.NofileHard, err = h.nofile()
	if err != nil {
		return r, err
	}
	r.NrOpen = h.sysctlUint("fs.nr_open")
	r.FileMax = h.sysctlUint("fs.file-max")
	r.Somaxconn = h.sysctlUint("net.core.somaxconn")
	r.SynBacklog = h.sysctlUint("net.ipv4.tcp_max_syn_backlog")
	if s, err := h.Sysctl("net.ipv4.ip_local_port_range"); err == nil {
		if f := strings.Fields(s); len(f) == 2 {
			r.PortLow, _ = strconv.ParseUint(f[0], 10, 64)
			r.PortHigh, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	if _, err := os.Stat(h.sysctlPath("net.netfilter.nf_conntrack_max")); err == nil {
		r.Conntrack = true
		r.ConntrackMax = h.sysctlUint("net.netfilter.nf_conntrack_max")
		r.ConntrackCount = h.sysctlUint("net.netfilter.nf_conntrack_count")
		r.ConntrackLoopback = h.loopbackTracking()
	}
	r.MemTotal, r.MemAvailable = h.meminfo()
	r.CPUs = runtime.NumCPU()
	r.Systemd = h.systemd()
	return r, nil
}

// nofile reads "Max open files" of the shell that started us (what a
// fanwire started from it gets: Go raises our own soft limit at start),
// falling back to our own.
func (h Host) nofile() (soft, hard uint64, err error) {
	for _, pid := range []string{strconv.Itoa(os.Getppid()), "self"} {
		b, rerr := os.ReadFile(filepath.Join(h.root(), "proc", pid, "limits"))
		if rerr != nil {
			err = rerr
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "Max open files") {
				continue
			}
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) < 2 {
				break
			}
			soft, hard = limitValue(f[0]), limitValue(f[1])
			return soft, hard, nil
		}
		err = fmt.Errorf("%s/limits: no \"Max open files\" line", pid)
	}
	return 0, 0, fmt.Errorf("open-files limit: %w", err)
}

func limitValue(s string) uint64 {
	if s == "unlimited" {
		return 1 << 62
	}
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

func (h Host) meminfo() (total, avail uint64) {
	f, err := os.Open(filepath.Join(h.root(), "proc", "meminfo"))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	return total, avail
}

// loopbackTracking looks for a notrack rule on lo in iptables' raw table or
// in nftables.
func (h Host) loopbackTracking() string {
	seen := false
	if out, err := h.run("iptables", "-t", "raw", "-S"); err == nil {
		seen = true
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "-i lo") && (strings.Contains(line, "NOTRACK") || strings.Contains(line, "--notrack")) {
				return "not tracked"
			}
		}
	}
	if out, err := h.run("nft", "list", "ruleset"); err == nil {
		seen = true
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, `iif "lo"`) || strings.Contains(line, "iifname \"lo\"") {
				if strings.Contains(line, "notrack") {
					return "not tracked"
				}
			}
		}
	}
	if seen {
		return "tracked"
	}
	return "unknown"
}

func (h Host) systemd() Systemd {
	s := Systemd{Unit: h.Unit}
	if s.Unit == "" {
		s.Unit = "fanwire.service"
	}
	if _, err := os.Stat(filepath.Join(h.root(), "run", "systemd", "system")); err == nil {
		s.Running = true
	}
	if !s.Running {
		return s
	}
	// The unit we run in, if any (a service's cgroup ends in its name).
	if b, err := os.ReadFile(filepath.Join(h.root(), "proc", "self", "cgroup")); err == nil && os.Getenv("INVOCATION_ID") != "" {
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.LastIndexByte(line, '/'); i >= 0 && strings.HasSuffix(line, ".service") {
				s.InUnit = line[i+1:]
				break
			}
		}
	}
	unit := s.Unit
	if s.InUnit != "" {
		unit = s.InUnit
	}
	out, err := h.run("systemctl", "show", "-p", "LoadState", "-p", "LimitNOFILE", unit)
	if err != nil {
		return s
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "LoadState":
			s.UnitLoaded = v == "loaded"
		case "LimitNOFILE":
			s.LimitNOFILE = v
		}
	}
	return s
}

// Apply raises every sysctl the report asks for (never lowers one) and
// prints each change or why it could not be made.
func (h Host) Apply(rep Report, w io.Writer) error {
	var errs []error
	for _, c := range rep.Checks {
		if c.Sysctl == "" {
			continue
		}
		old, err := h.Sysctl(c.Sysctl)
		if err != nil {
			fmt.Fprintf(w, "sysctl %s: cannot read: %v\n", c.Sysctl, err)
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(h.sysctlPath(c.Sysctl), []byte(c.Value+"\n"), 0o644); err != nil {
			fmt.Fprintf(w, "sysctl %s: could not set %s (now %s): %v\n", c.Sysctl, c.Value, old, err)
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "sysctl %s: %s -> %s\n", c.Sysctl, strings.Join(strings.Fields(old), " "), c.Value)
	}
	if len(errs) > 0 {
		fmt.Fprintln(w, "(run as root; in a container some sysctls belong to the host)")
	}
	return errors.Join(errs...)
}

// SysctlConf is the /etc/sysctl.d snippet that keeps the report's values
// across reboots.
func SysctlConf(rep Report) string {
	var b strings.Builder
	b.WriteString("# /etc/sysctl.d/90-fanwire.conf (fanwire doctor)\n")
	for _, c := range rep.Checks {
		if c.Sysctl != "" {
			fmt.Fprintf(&b, "%s = %s\n", c.Sysctl, c.Value)
		}
	}
	return b.String()
}
