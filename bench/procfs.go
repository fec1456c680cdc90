package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (the kernel ABI fixes it,
// whatever CONFIG_HZ is), so no sysconf call is needed.
const ClockTicks = 100

// CPUSeconds is utime+stime of pid in seconds.
func CPUSeconds(pid int) (float64, error) {
	user, sys, err := CPUTimes(pid)
	return user + sys, err
}

// CPUTimes is utime and stime of pid in seconds: the kernel share says how
// much of a server's CPU went to system calls and the TCP stack.
func CPUTimes(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatTimes(b)
}

// parseStatCPU is utime+stime of a stat line in seconds.
func parseStatCPU(stat []byte) (float64, error) {
	user, sys, err := parseStatTimes(stat)
	return user + sys, err
}

// parseStatTimes reads utime and stime (fields 14 and 15) from a stat line.
// The command name (field 2) may contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatTimes(stat []byte) (user, sys float64, err error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("bench: malformed /proc stat line")
	}
	f := strings.Fields(string(stat[end+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("bench: short /proc stat line")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bench: bad utime/stime in /proc stat line")
	}
	return float64(utime) / ClockTicks, float64(stime) / ClockTicks, nil
}

// RSS is the summed resident set size of pids in bytes, for servers that
// run as several processes: the "Rss:" of /proc/PID/smaps_rollup, which the
// kernel counts page by page. VmRSS in /proc/PID/status is not used: since
// Linux 6.2 it is a per-CPU batched counter read without summing the CPUs'
// parts, and for a multi-threaded process that just started (the baseline
// of a density run) it was measured here up to ~2 MB short, more than 100
// B per connection at 19k.
func RSS(pids ...int) (int64, error) {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return 0, err
		}
		v, err := kbField(f, "Rss:")
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		total += v
	}
	return total, nil
}

// PSS is the summed proportional set size of pids in bytes (Pss in
// /proc/PID/smaps_rollup): each shared page counts 1/n in each of the n
// processes mapping it, so worker processes sharing one binary's pages count
// them once in total, where summed RSS counts them once per process.
func PSS(pids ...int) (int64, error) {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return 0, err
		}
		v, err := parseSmapsRollupPSS(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		total += v
	}
	return total, nil
}

// parseSmapsRollupPSS reads the "Pss:" line of smaps_rollup (not
// Pss_Anon/Pss_File/Pss_Shmem, its parts) in bytes.
func parseSmapsRollupPSS(r io.Reader) (int64, error) { return kbField(r, "Pss:") }

// Slab is the kernel's slab memory (SReclaimable + SUnreclaim) in bytes,
// where socket, inode, dentry and epoll structures live. It is system-wide.
func Slab() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return kbField(f, "Slab:")
}

// kbField finds "Name:   1234 kB" in r and returns the value in bytes.
func kbField(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) < 1 {
			break
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: bad %s value %q", name, f[0])
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("bench: %s not found", name)
}

// SocketSlabCaches are the slab caches an idle, epoll-registered TCP
// connection occupies (besides its dentry, which is left out because
// compilers and tests on a shared machine churn the dentry cache).
var SocketSlabCaches = []string{"TCP", "sock_inode_cache", "eventpoll_epi", "eventpoll_pwq", "filp"}

// SocketSlab sums active_objs × objsize over caches from /proc/slabinfo
// (root only). Unlike Slab it ignores the file-system caches that other
// work on the machine moves by megabytes.
func SocketSlab(caches []string) (int64, error) {
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseSlabinfo(f, caches)
}

func parseSlabinfo(r io.Reader, caches []string) (int64, error) {
	want := map[string]bool{}
	for _, c := range caches {
		want[c] = true
	}
	var total int64
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !want[f[0]] {
			continue
		}
		active, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("bench: bad slabinfo line for %s", f[0])
		}
		total += active * size
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if found == 0 {
		return 0, fmt.Errorf("bench: none of %v in slabinfo", caches)
	}
	return total, nil
}

// SocketsUsed is "sockets: used" from /proc/net/sockstat: every socket in the
// network namespace. A density step should move it by exactly 2 per
// loopback connection; more means other work ran during the step and the
// kernel figures of that step carry its noise.
func SocketsUsed() (int64, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0, err
	}
	return parseSocketsUsed(b)
}

func parseSocketsUsed(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "sockets: used "); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, fmt.Errorf("bench: no \"sockets: used\" in sockstat")
}
