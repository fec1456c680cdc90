package supervisor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

const (
	termSignal = syscall.SIGTERM
	killSignal = syscall.SIGKILL
)

// Restart backoff: doubles from minBackoff to maxBackoff, and starts over
// once a worker has stayed up for stableAfter.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	stableAfter = 10 * time.Second
)

// worker is one worker process slot; its process changes on every restart.
type worker struct {
	id int

	mu       sync.Mutex
	proc     *os.Process // nil while down
	ready    bool        // the running process said its node listens
	restarts int
	lastExit string
}

// WorkerStatus is a worker slot as /stats shows it.
type WorkerStatus struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid,omitempty"`
	Running  bool   `json:"running"`
	Ready    bool   `json:"ready"` // listening for WebSocket clients
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
	Node     any    `json:"node,omitempty"` // the worker's own report: pid, bus, server.Stats
}

func (w *worker) status() WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := WorkerStatus{ID: w.id, Restarts: w.restarts, LastExit: w.lastExit}
	if w.proc != nil {
		st.PID, st.Running, st.Ready = w.proc.Pid, true, w.ready
	}
	return st
}

func (w *worker) signal(sig os.Signal) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc != nil {
		_ = w.proc.Signal(sig)
	}
}

// keep runs worker w until the supervisor stops, restarting it when it exits.
func (s *Supervisor) keep(w *worker) {
	defer s.wg.Done()
	backoff := minBackoff
	for !s.stopping.Load() {
		started := time.Now()
		err := s.runOnce(w)
		if s.stopping.Load() {
			return
		}
		if time.Since(started) > stableAfter {
			backoff = minBackoff
		}
		s.log.Warn("worker exited; restarting", "worker", w.id, "err", err, "after", backoff.String())
		time.Sleep(backoff)
		backoff = min(2*backoff, maxBackoff)
		w.mu.Lock()
		w.restarts++
		w.mu.Unlock()
	}
}

// runOnce starts the worker process and waits for it to exit.
func (s *Supervisor) runOnce(w *worker) error {
	cmd := exec.Command(s.cfg.Command[0], s.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(),
		envID+"="+fmt.Sprint(w.id),
		envNATS+"="+s.natsURL,
		envControl+"="+s.controlSubject(w.id),
	)
	cmd.Stdout, cmd.Stderr = s.cfg.Output, s.cfg.Output
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	cmd.ExtraFiles = []*os.File{readyW} // fd 3 in the child: readyFD
	// If the supervisor is killed outright, its workers follow.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	w.mu.Lock()
	if s.stopping.Load() { // checked under mu: Shutdown signals under mu too
		w.mu.Unlock()
		return nil
	}
	err = cmd.Start()
	if err == nil {
		w.proc, w.ready = cmd.Process, false
	}
	w.mu.Unlock()
	readyW.Close() // the child has its copy
	if err != nil {
		w.setExit(err)
		return err
	}
	s.log.Info("worker started", "worker", w.id, "pid", cmd.Process.Pid)
	go w.awaitReady(readyR)
	err = cmd.Wait()
	w.mu.Lock()
	w.proc, w.ready = nil, false
	w.mu.Unlock()
	w.setExit(err)
	return err
}

func (w *worker) setExit(err error) {
	msg := "exit status 0"
	if err != nil {
		msg = err.Error()
	}
	w.mu.Lock()
	w.lastExit = msg
	w.mu.Unlock()
}

// awaitReady marks the worker ready when it writes its line on readyFD; EOF
// (the worker died first) leaves it not ready. proc guards against a line
// from a previous incarnation.
func (w *worker) awaitReady(r *os.File) {
	w.mu.Lock()
	proc := w.proc
	w.mu.Unlock()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line == "" {
		return
	}
	w.mu.Lock()
	if w.proc == proc {
		w.ready = true
	}
	w.mu.Unlock()
}
