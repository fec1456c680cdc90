package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Worker processes: when one process may not open enough sockets (the
// open-files limit), the coordinator re-executes its own binary as workers.
// A worker reads its Plan as one JSON line on stdin, then "stop" (or EOF)
// tells it to close its connections. On stdout it writes "P <json>"
// progress lines and one final "R <json>" result line.

// WorkerEnv marks a process as a load worker.
const WorkerEnv = "FANWIRE_LOAD_WORKER"

// fdSlack is kept free per process for the runtime, pipes, HTTP clients.
const fdSlack = 128

// RaiseFileLimit raises the soft open-files limit to the hard one and
// returns the resulting soft limit.
func RaiseFileLimit() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	if lim.Cur < lim.Max {
		up := lim
		up.Cur = up.Max
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &up) == nil {
			lim = up
		}
	}
	return lim.Cur
}

// connsPerProcess is how many connections one process may hold.
func connsPerProcess() int {
	return max(1, int(RaiseFileLimit())-fdSlack)
}

// processesFor picks the number of processes for n connections: forced if
// > 0, else one per connsPerProcess connections. 1 means "in this process".
func processesFor(n, forced, perProcess int) int {
	if forced > 0 {
		return forced
	}
	if n <= perProcess {
		return 1
	}
	return (n + perProcess - 1) / perProcess
}

// RunWorkerIfChild turns this process into a load worker when it was
// started as one (WorkerEnv set) and exits; otherwise it returns at once.
// Call it first thing in main and in TestMain.
func RunWorkerIfChild() {
	if os.Getenv(WorkerEnv) != "1" {
		return
	}
	os.Exit(RunWorker(os.Stdin, os.Stdout))
}

// RunWorker runs one worker over the given pipes; it returns an exit code.
func RunWorker(in io.Reader, out io.Writer) int {
	RaiseFileLimit()
	rd := bufio.NewReader(in)
	line, err := rd.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		fmt.Fprintln(os.Stderr, "load worker: no plan on stdin:", err)
		return 2
	}
	var plan Plan
	if err := json.Unmarshal(line, &plan); err != nil {
		fmt.Fprintln(os.Stderr, "load worker: bad plan:", err)
		return 2
	}
	w := &lineWriter{w: out}
	p, err := startLocal(plan)
	if err != nil {
		w.send('R', PartResult{Error: err.Error()})
		return 1
	}
	stopSignals(p.stop)
	go func() {
		// "publish <start> <end>" (unix nanos, chat mode) starts the
		// publishers; any other line or EOF means stop: a dead parent
		// stops us too.
		for {
			line, err := rd.ReadBytes('\n')
			var start, end int64
			if n, _ := fmt.Sscanf(string(line), "publish %d %d", &start, &end); n == 2 && err == nil {
				p.publish(start, end)
				continue
			}
			p.stop()
			return
		}
	}()
	done := make(chan PartResult, 1)
	go func() { done <- p.wait() }()
	plan.withDefaults()
	tick := time.NewTicker(plan.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			w.send('P', p.progress())
			w.send('R', r)
			if r.Error != "" {
				return 1
			}
			return 0
		case <-tick.C:
			w.send('P', p.progress())
		}
	}
}

type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) send(kind byte, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(append([]byte{kind, ' '}, b...), '\n'))
}

// remotePart is a worker process driven over its stdin/stdout.
type remotePart struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	last  Progress
	res   *PartResult
	read  chan struct{} // closed when stdout is drained
	once  sync.Once
}

// startWorker re-executes this binary as a worker running plan.
func startWorker(plan Plan) (*remotePart, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "load", "worker")
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &remotePart{cmd: cmd, stdin: stdin, read: make(chan struct{})}
	go r.readLines(stdout)
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		r.stop()
		return nil, fmt.Errorf("worker: sending plan: %w", err)
	}
	return r, nil
}

func (r *remotePart) readLines(stdout io.Reader) {
	defer close(r.read)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // results carry histograms
	for sc.Scan() {
		kind, body, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if !ok || len(kind) != 1 {
			continue
		}
		switch kind[0] {
		case 'P':
			var p Progress
			if json.Unmarshal(body, &p) == nil {
				r.mu.Lock()
				r.last = p
				r.mu.Unlock()
			}
		case 'R':
			var res PartResult
			if json.Unmarshal(body, &res) == nil {
				r.mu.Lock()
				r.res = &res
				r.mu.Unlock()
			}
		}
	}
}

func (r *remotePart) progress() Progress {
	r.mu.Lock()
	p := r.last
	r.mu.Unlock()
	select {
	case <-r.read:
		p.RampDone = true // the worker is gone: nothing more will settle
	default:
	}
	return p
}

func (r *remotePart) publish(start, end int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = fmt.Fprintf(r.stdin, "publish %d %d\n", start, end)
}

func (r *remotePart) stop() {
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, _ = io.WriteString(r.stdin, "stop\n")
		_ = r.stdin.Close()
	})
}

func (r *remotePart) wait() PartResult {
	<-r.read
	err := r.cmd.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res == nil {
		res := PartResult{Counters: r.last.Counters, Error: fmt.Sprintf("worker %d ended without a result: %v", r.cmd.Process.Pid, err)}
		return res
	}
	return *r.res
}
