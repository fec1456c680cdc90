// Package demo makes fanwire show something the moment it starts: a feed of
// simulated live data (a football match, two crypto prices) and a small page
// that subscribes to it over WebSocket.
package demo

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Topics the demo feed publishes on.
const (
	TopicFootball = "scores.football"
	TopicBTC      = "prices.BTC-USD"
	TopicETH      = "prices.ETH-USD"
)

// Publisher is what the feed publishes through; *server.Node implements it
// (it is the same method set as api.Publisher).
type Publisher interface {
	Publish(topic string, data []byte) (seq uint64, subscribers int, err error)
}

// Run publishes simulated live data until ctx is done, then returns:
// a football match on TopicFootball (an event every 2-4 s) and a random-walk
// price on TopicBTC and TopicETH (several ticks a second each). The first
// message on each topic goes out at once.
func Run(ctx context.Context, p Publisher, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("demo feed started", "topics", []string{TopicFootball, TopicBTC, TopicETH})
	var wg sync.WaitGroup
	wg.Go(func() {
		m := newMatch(newRand())
		out := sink{p: p, log: log, topic: TopicFootball}
		every(ctx, m.rng, 2*time.Second, 4*time.Second, func() { out.publish(m.next()) })
	})
	for _, sym := range []struct {
		name  string
		start float64
	}{{"BTC-USD", 65000}, {"ETH-USD", 3400}} {
		wg.Go(func() {
			w := newPriceWalk(newRand(), sym.name, sym.start)
			out := sink{p: p, log: log, topic: "prices." + sym.name}
			every(ctx, w.rng, 150*time.Millisecond, 400*time.Millisecond, func() { out.publish(w.next(time.Now())) })
		})
	}
	wg.Wait()
	log.Info("demo feed stopped")
}

// newRand gives each feed its own generator, so feeds share no lock.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

// every calls fn at once and then after each random pause in [lo, hi),
// until ctx is done.
func every(ctx context.Context, rng *rand.Rand, lo, hi time.Duration, fn func()) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
		t.Reset(lo + time.Duration(rng.Int64N(int64(hi-lo))))
	}
}

// sink publishes one feed's messages. It logs when publishing starts failing
// and when it recovers, not on every tick, so a stopped node does not flood
// the log. One sink belongs to one goroutine.
type sink struct {
	p       Publisher
	log     *slog.Logger
	topic   string
	failing bool
}

func (s *sink) publish(v any) {
	data, err := json.Marshal(v)
	if err != nil { // our own structs: cannot happen
		s.log.Error("demo: encode", "topic", s.topic, "err", err)
		return
	}
	_, _, err = s.p.Publish(s.topic, data)
	switch {
	case err != nil && !s.failing:
		s.log.Warn("demo: publish failing", "topic", s.topic, "err", err)
	case err == nil && s.failing:
		s.log.Info("demo: publish recovered", "topic", s.topic)
	}
	s.failing = err != nil
}
