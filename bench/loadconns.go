package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// idleSet is a growing set of idle client connections to one server.
type idleSet interface {
	Add(ctx context.Context, n int) error
	Len() int
	Alive() int
	Close()
}

// rawIdle is IdleClients in the harness process (≤ ~19k: one process's
// open-files limit).
type rawIdle struct {
	IdleClients
	cfg IdleConfig
}

func (r *rawIdle) Add(ctx context.Context, n int) error { return r.Open(ctx, r.cfg, n) }

// loadIdle holds idle connections in `fanwire load connect` processes, each
// split over Workers worker processes, so the client side is not bounded
// by the harness's open-files limit. Every Add starts one more run; the
// server's open file descriptors say when its connections are up.
type loadIdle struct {
	Loader   string // the fanwire binary (a temporary copy, removed by Close)
	copied   bool
	URL      string // ws://addr/path?query
	Workers  int
	Rate     float64
	Server   int // server pid: its fd count tracks the connections
	Dialect  string
	baseFDs  int
	want     int
	runs     []*exec.Cmd
	finished []chan struct{}
}

func newLoadIdle(loader, url string, workers int, rate float64, serverPID int) (*loadIdle, error) {
	// The fewest of a few samples: a probe connection the server has not
	// closed yet must not raise the baseline (the ramp would then wait for
	// one connection too many).
	fds, err := FDCount(serverPID)
	for range 4 {
		if err != nil {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
		var n int
		if n, err = FDCount(serverPID); err == nil {
			fds = min(fds, n)
		}
	}
	if err != nil {
		return nil, err
	}
	copied, err := copyExecutable(loader)
	if err != nil {
		return nil, err
	}
	return &loadIdle{Loader: copied, copied: true, URL: url, Workers: workers, Rate: rate, Server: serverPID, baseFDs: fds}, nil
}

// copyExecutable copies the loader to a temporary file: a server started
// from the same binary would share its pages, and the server's PSS would
// drop by its lost share of them when the loader starts, more than the
// connections cost at 19k.
func copyExecutable(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "fanwire-loader-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o755)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (l *loadIdle) Add(ctx context.Context, n int) error {
	cmd := exec.Command(l.Loader, "load", "connect", "--url", l.URL, "--conns", strconv.Itoa(n),
		"--workers", strconv.Itoa(max(l.Workers, 1)), "--rate", strconv.FormatFloat(l.Rate, 'f', 0, 64),
		"--hold", "0", "--duration", "1h", "--measure-memory=false", "--quiet")
	if l.Dialect != "" {
		cmd.Args = append(cmd.Args, "--dialect", l.Dialect)
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = tail, tail
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	l.runs, l.finished = append(l.runs, cmd), append(l.finished, done)
	l.want += n
	deadline := time.Now().Add(30*time.Second + time.Duration(float64(n)/l.Rate*float64(time.Second)))
	for {
		got := l.Alive()
		if got >= l.want {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("bench: load connect exited with %d of %d connections up: %s", got, l.want, tail.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: only %d of %d connections up after the ramp", got, l.want)
		}
	}
}

func (l *loadIdle) Len() int { return l.want }

// Alive is the growth of the server's open file descriptors.
func (l *loadIdle) Alive() int {
	fds, err := FDCount(l.Server)
	if err != nil {
		return 0
	}
	return fds - l.baseFDs
}

// Close interrupts every run (they close their connections cleanly) and
// waits, killing what is still there after 30 s.
func (l *loadIdle) Close() {
	for _, c := range l.runs {
		_ = c.Process.Signal(os.Interrupt)
	}
	for i, done := range l.finished {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = l.runs[i].Process.Kill()
			<-done
		}
	}
	l.runs, l.finished = nil, nil
	if l.copied {
		os.Remove(l.Loader)
	}
}

// FDCount is the number of open file descriptors of pid.
func FDCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}
