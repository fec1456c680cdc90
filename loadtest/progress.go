package loadtest

import (
	"fmt"
	"io"
	"os"
	"time"
)

// status prints live progress: a rewritten status line on a terminal,
// plain lines every few seconds otherwise. It also records the timeline.
type status struct {
	w        io.Writer
	tty      bool
	quiet    bool
	start    time.Time
	every    time.Duration
	lastLine time.Time
	prev     Progress
	prevAt   time.Time
	phase    string
	timeline []Sample
}

func newStatus(w io.Writer, quiet bool) *status {
	s := &status{w: w, quiet: quiet, start: time.Now(), every: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
			s.every = 250 * time.Millisecond
		}
	}
	s.prevAt = s.start
	s.lastLine = s.start // the first line comes after one period
	return s
}

// sample is called often (every ~250 ms); it records one timeline point
// per second and prints when due.
func (s *status) sample(p Progress, phase string) {
	now := time.Now()
	t := now.Sub(s.start).Seconds()
	if len(s.timeline) == 0 || t-s.timeline[len(s.timeline)-1].T >= 1 {
		s.timeline = append(s.timeline, Sample{T: round1(t), Open: p.Open, Established: p.Established,
			Failed: p.Failed, ClosedByServer: p.ClosedByServer, Messages: p.Messages})
	}
	changed := s.phase != "" && phase != s.phase
	s.phase = phase
	if s.quiet || !changed && now.Sub(s.lastLine) < s.every {
		return
	}
	dt := now.Sub(s.prevAt).Seconds()
	connRate := float64(p.Established-s.prev.Established) / dt
	msgRate := float64(p.Messages-s.prev.Messages) / dt
	pubRate := float64(p.PubAcked-s.prev.PubAcked) / dt
	s.prev, s.prevAt, s.lastLine = p, now, now
	line := fmt.Sprintf("[%6.1fs %-8s] open %d  est %d (%.0f/s)  failed %d  srv-closed %d",
		t, phase, p.Open, p.Established, connRate, p.Failed, p.ClosedByServer)
	if p.Retried > 0 {
		line += fmt.Sprintf("  retried %d", p.Retried)
	}
	if p.Churned > 0 {
		line += fmt.Sprintf("  churned %d", p.Churned)
	}
	if p.PubSent > 0 {
		line += fmt.Sprintf("  pub %d acked %d (%.0f/s)", p.PubSent, p.PubAcked, pubRate)
		if p.PubErrors > 0 {
			line += fmt.Sprintf(" err %d", p.PubErrors)
		}
	}
	if p.Messages > 0 {
		line += fmt.Sprintf("  msgs %d (%.0f/s)", p.Messages, msgRate)
	}
	if p.P99us > 0 {
		line += "  p99 " + fmtUs(p.P99us)
	}
	if s.tty {
		fmt.Fprintf(s.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(s.w, line)
	}
}

// done ends the status line on a terminal.
func (s *status) done() {
	if s.tty && !s.quiet {
		fmt.Fprintln(s.w)
	}
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
