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
		r.watch("hold", hold, func(p Progress) bool { return p.Open == 0 }, nil)
	}
}
