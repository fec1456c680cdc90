package loadtest

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Progress is a live view of one process (or, summed, of the whole run).
type Progress struct {
	Counters
	RampDone bool  `json:"ramp_done"`
	P99us    int64 `json:"p99_us"` // live p99 delivery latency (worst loop)
}

// PartResult is what one process hands back when it is done.
type PartResult struct {
	Counters Counters `json:"counters"`
	Latency  string   `json:"latency_hdr"` // base64 compressed HDR histogram, µs
	Connect  string   `json:"connect_hdr"`
	Downtime string   `json:"reconnect_hdr,omitempty"` // server close to the reconnect's 101, µs
	Memory   *Memory  `json:"memory,omitempty"`
	Error    string   `json:"error,omitempty"`

	// chat mode (chat.go)
	Ack  string    `json:"ack_hdr,omitempty"` // publish to ack, µs
	Chat *ChatPart `json:"chat,omitempty"`
}

// part is one process's share of a run: in this process or a worker.
type part interface {
	progress() Progress
	publish(start, end int64) // chat: publish from start to end (unix nanos)
	stop()
	wait() PartResult
}

// localPart runs a Plan in this process.
type localPart struct {
	fleet *Fleet
	mu    sync.Mutex
	mem   *Memory
	quit  chan struct{}
	once  sync.Once
}

func startLocal(plan Plan) (*localPart, error) {
	f, err := StartFleet(plan)
	if err != nil {
		return nil, err
	}
	p := &localPart{fleet: f, quit: make(chan struct{})}
	if plan.MeasureMemory {
		go p.measureWhenRamped()
	}
	return p, nil
}

// measureWhenRamped samples memory once every connection is settled, while
// they are idle (before any stop).
func (p *localPart) measureWhenRamped() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			if p.fleet.RampDone() {
				time.Sleep(200 * time.Millisecond) // let the last handshakes' garbage die
				m := p.fleet.Memory()
				p.mu.Lock()
				p.mem = &m
				p.mu.Unlock()
				return
			}
		}
	}
}

func (p *localPart) progress() Progress {
	return Progress{Counters: p.fleet.Counters(), RampDone: p.fleet.RampDone(), P99us: p.fleet.LiveP99()}
}

func (p *localPart) publish(start, end int64) { p.fleet.StartPublishing(start, end) }

func (p *localPart) stop() {
	p.once.Do(func() { close(p.quit) })
	p.fleet.Stop()
}

func (p *localPart) wait() PartResult {
	err := p.fleet.Wait()
	p.once.Do(func() { close(p.quit) })
	lat, con := p.fleet.Histograms()
	r := PartResult{Counters: p.fleet.Counters(), Latency: encodeHist(lat), Connect: encodeHist(con), Downtime: encodeHist(p.fleet.Downtime())}
	if p.fleet.plan.Chat != nil {
		r.Ack, r.Chat = encodeHist(p.fleet.AckHistogram()), p.fleet.chatPart()
	}
	p.mu.Lock()
	r.Memory = p.mem
	p.mu.Unlock()
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func encodeHist(h *hdrhistogram.Histogram) string {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return ""
	}
	return string(b)
}

func decodeHist(s string) *hdrhistogram.Histogram {
	if s == "" {
		return newHist()
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return newHist()
	}
	return h
}

// group is all parts of a run.
type group []part

func (g group) progress() Progress {
	var sum Progress
	sum.RampDone = true
	for _, p := range g {
		pr := p.progress()
		sum.Counters.Add(pr.Counters)
		sum.RampDone = sum.RampDone && pr.RampDone
		sum.P99us = max(sum.P99us, pr.P99us)
	}
	return sum
}

func (g group) publish(start, end int64) {
	for _, p := range g {
		p.publish(start, end)
	}
}

func (g group) stop() {
	for _, p := range g {
		p.stop()
	}
}

func (g group) wait() []PartResult {
	out := make([]PartResult, len(g))
	var wg sync.WaitGroup
	for i, p := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.wait()
		}()
	}
	wg.Wait()
	return out
}
