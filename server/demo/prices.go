package demo

import (
	"math"
	"math/rand/v2"
	"time"
)

// Tick is one price update: {"symbol":"BTC-USD","price":65012.37,"ts":1700000000000}.
type Tick struct {
	Symbol string  `json:"symbol"`
	Price  float64 `json:"price"`
	TS     int64   `json:"ts"` // unix milliseconds
}

// priceWalk is a geometric random walk with a weak pull back to its start,
// so the price moves visibly every tick but stays plausible for hours.
type priceWalk struct {
	rng    *rand.Rand
	symbol string
	start  float64
	price  float64
}

func newPriceWalk(rng *rand.Rand, symbol string, start float64) *priceWalk {
	return &priceWalk{rng: rng, symbol: symbol, start: start, price: start}
}

const (
	tickVolatility = 0.0006 // standard deviation of one tick's relative move
	meanReversion  = 0.002  // share of the distance to start recovered per tick
)

func (w *priceWalk) next(now time.Time) Tick {
	w.price *= 1 + tickVolatility*w.rng.NormFloat64()
	w.price += (w.start - w.price) * meanReversion
	return Tick{Symbol: w.symbol, Price: math.Round(w.price*100) / 100, TS: now.UnixMilli()}
}
