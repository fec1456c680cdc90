package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Server CPU for "deliveries per server CPU-second" (--server-pid): utime +
// stime from /proc/<pid>/stat of the pid and of all its descendants, so a
// `serve --workers N` supervisor counts its workers (and a nats-server it
// started). A process that ends during the run drops out of the sum: keep
// the tree stable while measuring. bench/procfs.go reads the same fields
// for the benchmark harness (which imports this package, hence the copy).

const clockTicks = 100 // USER_HZ: fixed by the kernel ABI

type serverCPU struct {
	pid    int
	start  map[int]float64
	procs  int
	errMsg string
}

func startServerCPU(pid int) *serverCPU {
	s := &serverCPU{pid: pid}
	if pid <= 0 {
		return s
	}
	var err error
	if s.start, err = treeCPU(pid); err != nil {
		s.errMsg = err.Error()
	}
	return s
}

// used is the CPU-seconds of the tree since start, and how many
// processes it has now.
func (s *serverCPU) used() (sec float64, procs int, err error) {
	if s.errMsg != "" {
		return 0, 0, errors.New(s.errMsg)
	}
	now, err := treeCPU(s.pid)
	if err != nil {
		return 0, 0, err
	}
	for pid, v := range now {
		sec += v - s.start[pid] // a process born during the run counts from 0
	}
	return round3(sec), len(now), nil
}

// finish puts the server's CPU since start into res (per delivery:
// finishChat, once Delivered is known), and the generator's own.
func (s *serverCPU) finish(res *ChatResult, gen *serverCPU) {
	if sec, _, err := gen.used(); err == nil {
		res.GeneratorCPUSec = sec
	}
	if s.pid <= 0 {
		return
	}
	sec, procs, err := s.used()
	if err != nil {
		res.ServerCPUErr = err.Error()
		return
	}
	res.ServerCPUSec, res.ServerProcs = sec, procs
}

// treeCPU is utime+stime in seconds of pid and every descendant, by pid.
func treeCPU(pid int) (map[int]float64, error) {
	out := map[int]float64{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, seen := out[p]; seen {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if p == pid {
				return nil, fmt.Errorf("server pid %d: %w", pid, err)
			}
			continue // ended meanwhile
		}
		cpu, err := statCPU(b)
		if err != nil {
			return nil, err
		}
		out[p] = cpu
		queue = append(queue, childrenOf(p)...)
	}
	return out, nil
}

// childrenOf lists the children of pid from /proc/<pid>/task/*/children.
func childrenOf(pid int) []int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// statCPU reads utime and stime (fields 14, 15) of a stat line, counting
// fields after the last ')' (the command name may hold spaces).
func statCPU(stat []byte) (float64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("malformed /proc stat line")
	}
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat line")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime in /proc stat line")
	}
	return float64(u+s) / clockTicks, nil
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
