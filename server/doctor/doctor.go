// Package doctor reads the host's limits and says, for a target number of
// connections, what will stop a fanwire node from holding them and how to
// fix it. It changes nothing unless asked (Apply).
package doctor

import (
	"fmt"
	"math"
	"strings"
)

// Measured figures (make bench-density, bench/results/density.md and
// 2026-12-01-density-1m-mem.md:
// 1,000,000 idle connections over 56 workers on a 2-core, 24 GiB VM).
const (
	// KernelBytesPerSocket: kernel slab per TCP socket (half of the 10,292 B
	// measured per loopback pair: tcp sock, inode, file, dentry, epoll item).
	KernelBytesPerSocket = 5146
	// NodeBytesPerConn: fanwire's user RSS per idle connection (581 B summed
	// over 56 workers at 1M, PSS 537 B, 2026-12-01-density-1m-mem.md; Go heap
	// alone 467 B, BenchmarkIdleConnMemory).
	NodeBytesPerConn = 581
	// LoadBytesPerConn: fanwire load connect's Go heap per idle connection
	// (190 B at 100,000, README "Load generator").
	LoadBytesPerConn = 190
	// Reserve: open files a worker needs besides its connections (listeners,
	// epoll, NATS, logs), with margin: 18,000 connections per worker under
	// a 20,000 limit, as bench-density runs them.
	Reserve = 2000
	// Recommended listen and SYN backlogs: a reconnect storm after a
	// restart sends tens of thousands of SYNs at once.
	RecommendedBacklog = 65535
)

// Readings are the host's values doctor bases its report on.
type Readings struct {
	NofileSoft, NofileHard uint64 // RLIMIT_NOFILE of the shell that would start fanwire
	NrOpen                 uint64 // fs.nr_open: ceiling of any process's hard limit
	FileMax                uint64 // fs.file-max: open files, whole system
	Somaxconn              uint64 // net.core.somaxconn
	SynBacklog             uint64 // net.ipv4.tcp_max_syn_backlog
	PortLow, PortHigh      uint64 // net.ipv4.ip_local_port_range
	Conntrack              bool   // nf_conntrack is loaded
	ConntrackMax           uint64 // net.netfilter.nf_conntrack_max
	ConntrackCount         uint64 // net.netfilter.nf_conntrack_count
	// ConntrackLoopback: "tracked", "not tracked" (a notrack rule for lo) or
	// "unknown" (no iptables/nft to read the rules with).
	ConntrackLoopback      string
	MemTotal, MemAvailable uint64 // bytes, /proc/meminfo
	CPUs                   int
	// Systemd: running as (or able to read) a systemd unit's LimitNOFILE.
	Systemd Systemd
}

// Systemd is what doctor knows about the service manager.
type Systemd struct {
	Running     bool   // systemd is PID 1 (/run/systemd/system exists)
	InUnit      string // the unit this process runs in, "" if none
	Unit        string // the unit asked about (--unit, default fanwire.service)
	UnitLoaded  bool   // that unit is installed
	LimitNOFILE string // its LimitNOFILE (hard), as systemctl shows it
}

// Target is what the report is for.
type Target struct {
	Conns int // connections the node should hold
	// LoadHere: the load generator runs on this host too (loopback tests):
	// its sockets count against the same kernel limits and memory.
	LoadHere bool
}

// Status of a check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Info Status = "info"
)

// Check is one row of the report.
type Check struct {
	Name   string `json:"check"`
	Now    string `json:"now"`
	Needed string `json:"needed"`
	Status Status `json:"status"`
	Fix    string `json:"fix,omitempty"`
	// Sysctl and Value: what Apply writes for this check ("" = nothing).
	Sysctl string `json:"sysctl,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Report is the whole answer.
type Report struct {
	Target  Target  `json:"target"`
	Checks  []Check `json:"checks"`
	Workers int     `json:"workers_needed"` // processes needed under the current hard limit
	PerProc uint64  `json:"conns_per_process"`
	Summary string  `json:"summary"`
}

// Evaluate turns readings into the report for t. Pure: tested on fake readings.
func Evaluate(r Readings, t Target) Report {
	n := uint64(max(t.Conns, 0))
	sockets := n // sockets on this host
	if t.LoadHere {
		sockets = 2 * n
	}
	rep := Report{Target: t}
	add := func(c Check) { rep.Checks = append(rep.Checks, c) }
	perProcNeed := n + Reserve

	// Open files per process. Go raises the soft limit to the hard one at
	// start, so the hard limit is what counts.
	perProc := uint64(0)
	if r.NofileHard > Reserve {
		perProc = r.NofileHard - Reserve
	}
	rep.PerProc = perProc
	rep.Workers = math.MaxInt
	if perProc > 0 {
		rep.Workers = int((n + perProc - 1) / perProc)
	}
	nofile := Check{Name: "open files per process (hard)", Now: fmt.Sprintf("soft %s, hard %s", num(r.NofileSoft), num(r.NofileHard)),
		Needed: num(perProcNeed) + " (one process)", Status: OK}
	if r.NofileHard < perProcNeed {
		nofile.Status = Fail
		nofile.Fix = fmt.Sprintf("raise the hard limit to %d (systemd: LimitNOFILE=%d, see deploy/systemd/fanwire.service; shell: nofile in /etc/security/limits.conf, then log in again; at most fs.nr_open), or run fanwire serve --workers %d",
			roundUp(perProcNeed), roundUp(perProcNeed), rep.Workers)
	}
	add(nofile)
	add(Check{Name: "workers at this limit", Now: num(perProc) + " conns per process",
		Needed: fmt.Sprintf("--workers %d", rep.Workers), Status: workersStatus(rep.Workers),
		Fix: workersFix(rep.Workers)})

	nrOpen := Check{Name: "fs.nr_open", Now: num(r.NrOpen), Needed: num(perProcNeed) + " (one process)", Status: OK}
	if r.NrOpen < perProcNeed {
		nrOpen.Status = Warn // workers get past it
		nrOpen.Sysctl, nrOpen.Value = "fs.nr_open", strconnum(roundUp(perProcNeed))
		nrOpen.Fix = "sysctl -w fs.nr_open=" + nrOpen.Value + " (one process can then be given that many files), or use --workers"
	}
	add(nrOpen)

	fileNeed := sockets + sockets/10 + 65536
	fileMax := Check{Name: "fs.file-max", Now: num(r.FileMax), Needed: num(fileNeed), Status: OK}
	if r.FileMax < fileNeed {
		fileMax.Status = Fail
		fileMax.Sysctl, fileMax.Value = "fs.file-max", strconnum(roundUp(fileNeed))
		fileMax.Fix = "sysctl -w fs.file-max=" + fileMax.Value
	}
	add(fileMax)

	add(backlog("net.core.somaxconn", "net.core.somaxconn", r.Somaxconn))
	add(backlog("tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog", r.SynBacklog))

	// The load generator: one source address holds one connection per local
	// port towards one server port; fanwire load rotates 127.0.0.2, .3, ...
	ports := uint64(0)
	if r.PortHigh >= r.PortLow && r.PortLow > 0 {
		ports = r.PortHigh - r.PortLow + 1
	}
	pr := Check{Name: "ip_local_port_range (load gen.)", Now: fmt.Sprintf("%d-%d (%s ports)", r.PortLow, r.PortHigh, num(ports)), Status: Info}
	if ports > 0 {
		pr.Needed = fmt.Sprintf("%d source IPs", (n+ports-1)/ports)
	}
	if r.PortLow > 1024 || r.PortHigh < 65535 {
		pr.Sysctl, pr.Value = "net.ipv4.ip_local_port_range", "1024 65535"
		pr.Fix = `sysctl -w net.ipv4.ip_local_port_range="1024 65535" (fewer source addresses per million)`
		if t.LoadHere {
			pr.Status = Warn
		}
	}
	add(pr)

	add(conntrack(r, t))
	add(memory(r, t))
	add(systemd(r, perProcNeed))

	var blockers []string
	for _, c := range rep.Checks {
		if c.Status == Fail {
			blockers = append(blockers, c.Name)
		}
	}
	switch {
	case len(blockers) == 0:
		rep.Summary = fmt.Sprintf("this host can hold %s connections in one process", num(n))
	case len(blockers) == 1 && blockers[0] == nofile.Name && rep.Workers < math.MaxInt:
		rep.Summary = fmt.Sprintf("%s connections: one process stops at %s (open files); run fanwire serve --workers %d, or raise the hard limit",
			num(n), num(perProc), rep.Workers)
	default:
		rep.Summary = fmt.Sprintf("%s connections: blocked by %s", num(n), strings.Join(blockers, "; "))
	}
	return rep
}

func workersStatus(w int) Status {
	if w > 1 {
		return Info
	}
	return OK
}

func workersFix(w int) string {
	switch {
	case w == math.MaxInt:
		return "the hard open-files limit leaves no room for connections: raise it"
	case w > 1:
		return fmt.Sprintf("fanwire serve --workers %d (one port, SO_REUSEPORT)", w)
	}
	return ""
}

func backlog(name, sysctl string, now uint64) Check {
	c := Check{Name: name, Now: num(now), Needed: num(RecommendedBacklog), Status: OK}
	if now < RecommendedBacklog {
		c.Status = Warn
		c.Sysctl, c.Value = sysctl, strconnum(RecommendedBacklog)
		c.Fix = "sysctl -w " + sysctl + "=" + c.Value + " (connects beyond the queue are dropped and retried by clients after 1 s, 3 s, ...)"
	}
	return c
}

func conntrack(r Readings, t Target) Check {
	c := Check{Name: "nf_conntrack_max", Status: OK}
	if !r.Conntrack {
		c.Now, c.Needed = "nf_conntrack not loaded", "nothing"
		return c
	}
	c.Now = fmt.Sprintf("%s (in use %s, lo %s)", num(r.ConntrackMax), num(r.ConntrackCount), r.ConntrackLoopback)
	// One entry per connection; on loopback both ends are one connection.
	need := uint64(t.Conns)
	c.Needed = num(need) + " if tracked"
	if r.ConntrackMax >= need {
		return c
	}
	c.Sysctl, c.Value = "net.netfilter.nf_conntrack_max", strconnum(roundUp(need+need/4))
	c.Fix = "sysctl -w net.netfilter.nf_conntrack_max=" + c.Value + ", or exempt the port: iptables -t raw -A PREROUTING -p tcp --dport <port> -j NOTRACK (and OUTPUT for --sport); a full table drops new connections"
	switch {
	case r.ConntrackLoopback == "not tracked" && t.LoadHere:
		c.Status = OK
	case r.ConntrackCount == 0 && r.ConntrackLoopback != "tracked":
		c.Status = Warn // loaded, but no rule uses it now
		c.Fix = "nothing is tracked now (in use 0); if a firewall rule starts tracking: " + c.Fix
	default:
		c.Status = Fail
	}
	return c
}

func memory(r Readings, t Target) Check {
	n := uint64(max(t.Conns, 0))
	per := uint64(KernelBytesPerSocket + NodeBytesPerConn)
	what := fmt.Sprintf("kernel %s B + fanwire %s B", num(KernelBytesPerSocket), num(NodeBytesPerConn))
	if t.LoadHere {
		per += KernelBytesPerSocket + LoadBytesPerConn
		what += fmt.Sprintf(" + load generator: kernel %s B + %s B", num(KernelBytesPerSocket), num(LoadBytesPerConn))
	}
	need := n * per
	c := Check{Name: "memory (idle connections)", Now: fmt.Sprintf("%s free of %s", bytesStr(r.MemAvailable), bytesStr(r.MemTotal)),
		Needed: fmt.Sprintf("%s (%s B/conn)", bytesStr(need), num(per)), Status: OK,
		Fix: "measured per connection (make bench-density): " + what + "; messages in flight and slow clients come on top (--max-pending)"}
	switch {
	case need > r.MemAvailable:
		c.Status = Fail
		c.Fix += ". Fix: more RAM, fewer connections per host, or spread them over nodes; every message in flight and every slow client adds to this (--max-pending)"
	case need > r.MemAvailable/10*8:
		c.Status = Warn
		c.Fix += ". Less than 20% headroom for messages in flight and slow clients (--max-pending, --send-buffer)"
	}
	return c
}

func systemd(r Readings, perProcNeed uint64) Check {
	s := r.Systemd
	c := Check{Name: "systemd LimitNOFILE", Needed: num(perProcNeed) + " or --workers", Status: Info}
	switch {
	case s.InUnit != "":
		c.Now = fmt.Sprintf("running in %s: LimitNOFILE=%s", s.InUnit, s.LimitNOFILE)
	case !s.Running:
		c.Now = "no systemd here"
		c.Fix = "under systemd, the unit's LimitNOFILE sets the limit (not ulimit): deploy/systemd/fanwire.service has LimitNOFILE=1048576"
		return c
	case s.UnitLoaded:
		c.Now = fmt.Sprintf("%s: LimitNOFILE=%s", s.Unit, s.LimitNOFILE)
	default:
		c.Now = s.Unit + " is not installed"
		c.Fix = "install deploy/systemd/fanwire.service (LimitNOFILE=1048576)"
		return c
	}
	if v, ok := parseUint(s.LimitNOFILE); ok && v < perProcNeed {
		c.Status = Warn
		c.Fix = "set LimitNOFILE=1048576 in the unit (deploy/systemd/fanwire.service), systemctl daemon-reload, restart; or --workers"
	} else if s.LimitNOFILE == "infinity" || ok {
		c.Status = OK
	}
	return c
}

// roundUp rounds v up to a power of two of at least 1Mi, or to the next
// million above that: a sysctl value with room to spare.
func roundUp(v uint64) uint64 {
	p := uint64(1 << 20)
	for p < v && p < 1<<24 {
		p <<= 1
	}
	if p >= v {
		return p
	}
	return (v/1_000_000 + 1) * 1_000_000
}

// num formats an integer with thousands separators.
func num(v uint64) string {
	s := fmt.Sprint(v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func strconnum(v uint64) string { return fmt.Sprint(v) }

func bytesStr(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d B", b)
}

func parseUint(s string) (uint64, bool) {
	var v uint64
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
