package demo

import (
	"encoding/json"
	"math/rand/v2"
	"time"
)

// RecordedPrices is n consecutive ticks of one symbol as the demo feed
// publishes them (JSON), 250 ms apart from start: the same messages a
// recording of TopicBTC would hold, reproducible from seed.
func RecordedPrices(seed uint64, symbol string, startPrice float64, start time.Time, n int) [][]byte {
	w := newPriceWalk(rand.New(rand.NewPCG(seed, 1)), symbol, startPrice)
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = json.Marshal(w.next(start.Add(time.Duration(i) * 250 * time.Millisecond)))
	}
	return out
}

// RecordedFootball is n consecutive events of the simulated matches as the
// demo feed publishes them on TopicFootball, reproducible from seed.
func RecordedFootball(seed uint64, n int) [][]byte {
	m := newMatch(rand.New(rand.NewPCG(seed, 2)))
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = json.Marshal(m.next())
	}
	return out
}
