// Package bench runs fanwire and its peers (bench/peers) side by side and
// turns what it measures into results files, markdown tables and SVG plots.
// Every server is an external process driven over loopback, so fanwire and
// the peers are measured the same way, from outside, with /proc.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server says how to start one server under test.
type Server struct {
	Name string   // "fanwire", "gorillahub", ...
	Path string   // executable
	Args []string // extra arguments; --listen and --http are added
	// Subcommand goes before the flags (fanwire needs "serve"; peers none).
	Subcommand string
	// CPUs, if set, pins the server to these CPUs (taskset -c list).
	CPUs string
	// A server that is not ours (centrifugo.go): Launch makes its
	// arguments for the two addresses instead of --listen and --http
	// (cleanup runs once it listens); Dialect is the load generator's
	// (loadtest.Plan.Dialect) and APIKey the publish API's key.
	Launch  func(s *Server, ws, ctl string) (args []string, cleanup func(), err error)
	Dialect string
	APIKey  string
	// Transport is the clients' transport: "" (WebSocket), "sse" or
	// "poll" (the fanwire-sse and fanwire-poll rows, transports.go).
	Transport string
	// Log, if set, also receives everything the server writes (a soak keeps
	// the whole log; Output keeps only the tail).
	Log io.Writer
}

// Process is a started server with the addresses it listens on.
type Process struct {
	Server   Server
	WSAddr   string
	HTTPAddr string
	cmd      *exec.Cmd
	exited   chan struct{}
	stderr   *tailBuffer
}

// Start launches s on two free loopback ports and returns once both accept
// TCP connections, or fails after timeout (the process is then killed).
func Start(ctx context.Context, s Server, timeout time.Duration) (*Process, error) {
	ws, err := FreePort()
	if err != nil {
		return nil, err
	}
	ctl, err := FreePort()
	if err != nil {
		return nil, err
	}
	var args []string
	if s.Subcommand != "" {
		args = append(args, s.Subcommand)
	}
	if s.Launch != nil {
		more, cleanup, err := s.Launch(&s, ws, ctl)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", s.Name, err)
		}
		defer cleanup()
		args = append(args, more...)
	} else {
		args = append(args, "--listen", ws, "--http", ctl)
	}
	args = append(args, s.Args...)
	cmd := exec.Command(s.Path, args...)
	if s.CPUs != "" {
		cmd = exec.Command("taskset", append([]string{"-c", s.CPUs, s.Path}, args...)...) // execs in place: same PID
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = tail, tail
	if s.Log != nil {
		w := io.MultiWriter(tail, s.Log)
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Process{Server: s, WSAddr: ws, HTTPAddr: ctl, cmd: cmd, exited: make(chan struct{}), stderr: tail}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// startMeasured starts s for one scenario's measurement: the result to fill
// in, or (ok false) one that carries the start error.
func startMeasured(ctx context.Context, s Server, timeout time.Duration) (p *Process, sr ServerResult, ok bool) {
	sr = ServerResult{Name: s.Name, Figures: map[string]float64{}}
	p, err := Start(ctx, s, timeout)
	if err != nil {
		sr.Error = err.Error()
		return nil, sr, false
	}
	return p, sr, true
}

// PID is the server's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

func (p *Process) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, addr := range []string{p.WSAddr, p.HTTPAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited before listening: %s", p.Server.Name, strings.TrimSpace(p.stderr.String()))
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s not accepting after %v", p.Server.Name, addr, timeout)
			}
		}
	}
	return nil
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
// It reports whether the process exited on its own.
func (p *Process) Stop(grace time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Output is the tail of what the process wrote to stdout and stderr.
func (p *Process) Output() string { return p.stderr.String() }

// FreePort returns a loopback address whose port was free a moment ago.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it (for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
