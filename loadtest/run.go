package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// Run executes one load run described by cfg and returns its report.
// Progress goes to progressOut. The run always stops by itself (counts and
// --duration bound it) and closes every connection it opened; ctx
// cancellation (Ctrl-C) skips to the clean close.
func Run(ctx context.Context, cfg Config, progressOut io.Writer, quiet bool) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	plan, topics, topicSubs, err := basePlan(&cfg)
	if err != nil {
		return nil, err
	}
	procs := processesFor(cfg.Conns, cfg.Workers, connsPerProcess())
	r := &Report{Mode: cfg.Mode, Settings: cfg, Started: time.Now(), Processes: procs}
	g, err := startParts(plan, procs)
	if err != nil {
		return nil, err
	}
	run := &runner{ctx: ctx, g: g, st: newStatus(progressOut, quiet)}
	switch cfg.Mode {
	case "connect":
		run.connect(cfg)
	case "churn":
		run.churn(cfg)
	case "fanout":
		r.Delivery = run.fanout(cfg, topics, topicSubs)
	case "chat":
		r.Chat = run.chat(cfg)
	}
	g.stop()
	results := run.waitClosed()
	run.st.done()

	m := mergeResults(results)
	r.ElapsedSec = round1(time.Since(r.Started).Seconds())
	r.Connections = m.counters
	r.ConnectUs = summarize(m.connect)
	r.Timeline = run.st.timeline
	if cfg.Track && cfg.Mode == "connect" {
		l := summarize(m.latency)
		r.TrackedUs = &l
	}
	r.Errors = m.errors
	if c := m.counters; cfg.Resume && c.Reconnects > 0 {
		rc := &Reconn{Closed: c.Reconnects, Reconnected: c.Reconnected, GivenUp: c.GivenUp, Attempts: c.Reconnected,
			FailedBy: c.ReconnFailedBy, DowntimeUs: summarize(m.downtime)}
		for _, v := range c.ReconnFailedBy {
			rc.Attempts += v
		}
		if c.LastBackNs > c.FirstDownNs && c.FirstDownNs > 0 {
			rc.FullSec = float64(c.LastBackNs-c.FirstDownNs) / 1e9
		}
		r.Reconnect = rc
	}
	if m.memory != nil && m.memory.Conns > 0 {
		heap, rss := m.memory.PerConn()
		mheap, mrss := m.memory.MarginalPerConn()
		r.Memory = &MemFig{Conns: m.memory.Conns, Processes: m.memory.Processes, HeapPerConn: heap, RSSPerConn: rss,
			MarginalHeapPerConn: mheap, MarginalRSSPerConn: mrss, FixedHeapBytes: m.memory.FixedHeap}
	}
	if d := r.Delivery; d != nil {
		d.Gaps, d.Dups = m.counters.Gaps, m.counters.Dups
		d.Announced, d.Resets = m.counters.Announced, m.counters.Resets
		d.Delivered = m.counters.Messages - m.counters.Dups
		d.Lost = max(0, d.Expected-d.Delivered)
		if d.Expected > 0 {
			d.LossRatio = float64(d.Lost) / float64(d.Expected)
		}
		d.LatencyUs = summarize(m.latency)
	}
	if r.Chat != nil {
		finishChat(r.Chat, results, m)
	}
	r.judge()
	return r, nil
}

// basePlan turns the user's settings into the plan of the whole run.
func basePlan(cfg *Config) (Plan, []string, []int64, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return Plan{}, nil, nil, fmt.Errorf("--url: %w", err)
	}
	sources := cfg.SourceIPs
	if sources == "auto" {
		sources = ""
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
			sources = "127.0.0.2-127.0.0.33"
		}
	}
	addrs, err := ParseSources(sources)
	if err != nil {
		return Plan{}, nil, nil, fmt.Errorf("--source-ips: %w", err)
	}
	p := Plan{
		URL:            cfg.URL,
		Conns:          cfg.Conns,
		Rate:           cfg.Rate,
		Loops:          cfg.Loops,
		ConnectTimeout: cfg.ConnectTimeout,
		Retries:        cfg.Retries,
		Resume:         cfg.Resume,
		CloseTimeout:   cfg.CloseTimeout,
		MeasureMemory:  cfg.MeasureMemory,
		TrackSeq:       cfg.Track,
		Transport:      cfg.Transport,
		Dialect:        cfg.Dialect,
	}
	for _, a := range addrs {
		p.Sources = append(p.Sources, a.String())
	}
	if p.Auth, err = cfg.tokenPlan(); err != nil {
		return Plan{}, nil, nil, err
	}
	if p.Auth != nil {
		cfg.Tokens = "hs256"
		if !p.Auth.perConn() {
			cfg.Tokens = "fixed"
		}
	}
	if cfg.Mode == "churn" {
		p.ChurnRate = cfg.ChurnRate
	}
	if cfg.Mode == "chat" {
		return chatPlan(cfg, p, u)
	}
	if cfg.Mode != "fanout" {
		return p, nil, nil, nil
	}
	// Fanout: subscriber g listens to topic g % T, subscribed by URL so the
	// subscription exists before the 101 (no delivery can be missed).
	p.TrackSeq = true
	prefix := cfg.TopicPrefix
	if prefix == "" {
		prefix = fmt.Sprintf("load.%d", time.Now().UnixNano()%1e9)
		cfg.TopicPrefix = prefix
	}
	topics := make([]string, cfg.Topics)
	subs := make([]int64, cfg.Topics)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s.%d", prefix, i)
		q := u.Query()
		q.Set("topics", topics[i])
		v := *u
		v.RawQuery = q.Encode()
		p.Paths = append(p.Paths, v.RequestURI())
	}
	for g := 0; g < cfg.Conns; g++ {
		subs[g%cfg.Topics]++
	}
	return p, topics, subs, nil
}

// startParts runs the plan in this process or in procs worker processes.
func startParts(plan Plan, procs int) (group, error) {
	if procs <= 1 {
		p, err := startLocal(plan)
		if err != nil {
			return nil, err
		}
		return group{p}, nil
	}
	var g group
	for _, share := range plan.split(procs) {
		share.Loops = max(1, plan.Loops)
		w, err := startWorker(share)
		if err != nil {
			g.stop()
			g.wait()
			return nil, err
		}
		g = append(g, w)
	}
	return g, nil
}

// runner holds what the mode phases share.
type runner struct {
	ctx context.Context
	g   group
	st  *status
}

const sampleEvery = 250 * time.Millisecond

// watch samples progress until until(p) holds, done closes, d passes or
// the context ends. It returns the last progress.
func (r *runner) watch(phase string, d time.Duration, until func(Progress) bool, done <-chan struct{}) Progress {
	deadline := time.Now().Add(d)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		p := r.g.progress()
		r.st.sample(p, phase)
		if until != nil && until(p) {
			return p
		}
		if !time.Now().Before(deadline) {
			return p
		}
		select {
		case <-r.ctx.Done():
			return p
		case <-done:
			return p
		case <-t.C:
		}
	}
}

// waitClosed waits for every part to finish its clean close, sampling.
func (r *runner) waitClosed() []PartResult {
	ch := make(chan []PartResult, 1)
	go func() { ch <- r.g.wait() }()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case res := <-ch:
			return res
		case <-t.C:
			r.st.sample(r.g.progress(), "closing")
		}
	}
}

func rampDone(p Progress) bool { return p.RampDone }
