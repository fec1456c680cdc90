package loadtest

import "time"

// fanout: connect the subscribers, publish at --pub-rate for --duration
// through the control API, then wait (at most --drain) until every
// expected delivery has arrived. Loss, gaps and duplicates are counted by
// the subscribers; the expected count comes from the publish responses, or
// from the plan when the node does not count subscribers (worker mode)
// or cannot (long-polling).
func (r *runner) fanout(cfg Config, topics []string, topicSubs []int64) *Delivery {
	d := &Delivery{}
	p := r.watch("connect", rampTimeout(cfg), rampDone, nil)
	if r.ctx.Err() != nil || p.Established == 0 {
		return d
	}
	pub := newPublisher(cfg.API, topics, topicSubs, cfg.PubRate, cfg.Size, cfg.Publishers)
	done := make(chan publishStats, 1)
	stopPub := make(chan struct{})
	go func() {
		done <- pub.run(r.ctx, cfg.Duration)
		close(stopPub)
	}()
	start := time.Now()
	r.watch("publish", cfg.Duration+time.Minute, nil, stopPub)
	ps := <-done

	d.Published, d.PublishErrors, d.PublishErrBy = ps.Published, ps.Errors, ps.ErrorsBy
	if len(d.PublishErrBy) == 0 {
		d.PublishErrBy = nil
	}
	d.PublishRate = float64(ps.Published) / ps.Elapsed.Seconds()
	d.PublishRTTUs = ps.RTT
	d.Expected, d.ExpectedPlan, d.Uncounted = ps.Expected, ps.ExpectedPlan, ps.Uncounted
	if cfg.Transport == TransportPoll {
		// Between two requests a long-poller is not subscribed, so the
		// node's count misses it; it catches up from history on the next
		// request. The plan is the honest expectation.
		d.Expected, d.Uncounted = ps.ExpectedPlan, ps.Published
	}
	p = r.watch("drain", cfg.Drain, func(p Progress) bool { return p.Messages-p.Dups >= d.Expected }, nil)
	d.PerSecond = float64(p.Messages-p.Dups) / time.Since(start).Seconds()
	return d
}
