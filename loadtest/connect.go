package loadtest

import "time"

// connect: ramp to N connections at --rate, hold them for --hold, then
// close them cleanly (also paced at --rate). --duration caps ramp plus hold.
func (r *runner) connect(cfg Config) {
	start := time.Now()
	p := r.watch("ramp", cfg.Duration, rampDone, nil)
	if p.Open == 0 {
		return // nothing to hold
	}
	hold := cfg.Duration - time.Since(start)
	if cfg.Hold > 0 && cfg.Hold < hold {
		hold = cfg.Hold
	}
	if hold > 0 && r.ctx.Err() == nil {
		r.watch("hold", hold, func(p Progress) bool { return holdOver(cfg, p) }, nil)
	}
}

// holdOver ends the hold early: when nothing is open any more and nothing
// is coming back (--resume: no reconnect pending), or, with --end-when-back,
// once a storm of server closes has passed and every one is open again.
func holdOver(cfg Config, p Progress) bool {
	pending := cfg.Resume && p.Reconnects > p.Reconnected+p.GivenUp
	if p.Open == 0 && !pending {
		return true
	}
	return cfg.EndWhenBack && p.Reconnects > 0 && !pending && p.Open >= int64(cfg.Conns)
}
