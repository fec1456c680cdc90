package loadtest

import (
	"errors"
	"time"
)

// Plan is what one process does: open Conns connections at Rate per second
// and keep them until told to stop. The coordinator splits a run into one
// Plan per process; a worker receives its Plan as JSON on stdin.
type Plan struct {
	URL            string        `json:"url"`             // ws://host:port/path?query
	Paths          []string      `json:"paths,omitempty"` // per-connection path+query rotation (fanout topics); empty = URL's
	Conns          int           `json:"conns"`           // connections for this process
	Offset         int           `json:"offset"`          // global index of this process's first connection
	Rate           float64       `json:"rate"`            // connects per second for this process
	Loops          int           `json:"loops"`           // event loops (goroutines)
	Sources        []string      `json:"sources,omitempty"`
	ConnectTimeout time.Duration `json:"connect_timeout"`     // TCP connect + handshake
	Retries        int           `json:"retries"`             // re-dials of a connection whose connect or handshake failed
	Resume         bool          `json:"resume"`              // reconnect a connection the server closed, with ?since= its last seq
	CloseTimeout   time.Duration `json:"close_timeout"`       // wait for the server's close after ours
	ChurnRate      float64       `json:"churn_rate"`          // churn mode: client closes (and redials) per second once ramped
	TrackSeq       bool          `json:"track_seq"`           // fanout: check seq contiguity and latency
	MeasureMemory  bool          `json:"measure_memory"`      // measure heap/RSS per conn once ramped
	MaxInflight    int           `json:"max_inflight"`        // per loop connects in progress at once
	ProgressEvery  time.Duration `json:"progress_every"`      // worker progress line period
	Auth           *TokenPlan    `json:"auth,omitempty"`      // tokens in the upgrade URL (tokens.go); nil = none
	Transport      string        `json:"transport,omitempty"` // websocket, sse (sse.go) or poll (poll.go)
	Dialect        string        `json:"dialect,omitempty"`   // "" (fanwire's wire) or centrifugo (centrifugo.go)
	Chat           *ChatPlan     `json:"chat,omitempty"`      // chat mode (chat.go): rooms, publish schedule
}

func (p *Plan) withDefaults() {
	if p.Loops <= 0 {
		p.Loops = 2
	}
	if p.Loops > p.Conns && p.Conns > 0 {
		p.Loops = p.Conns
	}
	if p.ConnectTimeout <= 0 {
		p.ConnectTimeout = 10 * time.Second
	}
	if p.CloseTimeout <= 0 {
		p.CloseTimeout = 5 * time.Second
	}
	if p.MaxInflight <= 0 {
		p.MaxInflight = 512
	}
	if p.ProgressEvery <= 0 {
		p.ProgressEvery = 250 * time.Millisecond
	}
}

func (p *Plan) validate() error {
	if p.Conns < 0 {
		return errors.New("negative connection count")
	}
	if p.Rate <= 0 {
		return errors.New("rate must be > 0")
	}
	return nil
}

// split divides a plan over n processes: conns, rate and churn rate are
// shared out, offsets keep global connection indexes (and so topic
// assignment) identical to a single-process run.
func (p Plan) split(n int) []Plan {
	if n < 1 {
		n = 1
	}
	out := make([]Plan, 0, n)
	off := p.Offset
	for i := 0; i < n; i++ {
		share := p.Conns / n
		if i < p.Conns%n {
			share++
		}
		q := p
		q.Conns = share
		q.Offset = off
		q.Rate = p.Rate / float64(n)
		q.ChurnRate = p.ChurnRate / float64(n)
		off += share
		out = append(out, q)
	}
	return out
}
