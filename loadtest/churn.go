package loadtest

import "time"

// churn: ramp to N connections, then for --duration close and reopen
// connections at --churn-rate per second (a reconnect storm), counting
// every connect, failure and close like connect mode does.
func (r *runner) churn(cfg Config) {
	r.watch("ramp", rampTimeout(cfg), rampDone, nil)
	if r.ctx.Err() == nil {
		r.watch("churn", cfg.Duration, nil, nil)
	}
}

// rampTimeout bounds the connect phase of fanout and churn: twice the
// nominal ramp time plus the connect timeout.
func rampTimeout(cfg Config) time.Duration {
	nominal := time.Duration(float64(cfg.Conns) / cfg.Rate * float64(time.Second))
	return 2*nominal + cfg.ConnectTimeout
}
