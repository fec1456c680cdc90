package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Publisher POSTs timestamped messages to a server's control API at a fixed
// rate: {"t":<unix ns>,"pad":"xx…"} of about Size bytes, the payload the
// load generator's subscribers time. Up to MaxPosts requests per second go
// out; above that, messages are batched (POST /publish, NDJSON) so the HTTP
// side does not become the bottleneck of many-topic runs.
type Publisher struct {
	API      string   // "http://127.0.0.1:PORT"
	Topics   []string // round-robin
	Size     int
	MaxPosts float64 // requests per second cap, default 200
	Workers  int     // concurrent requests, default 4
	// APIKey set: the server is Centrifugo (centrifugo.go), whose answers
	// say nothing of subscribers; Expect per message stands in.
	APIKey string
	Expect int64
	client *http.Client
	next   int // topic cursor, kept across runs
}

// PublishStats is what one Run did.
type PublishStats struct {
	Published int64
	Errors    int64
	LastError string
	Expected  int64         // sum of "subscribers" in the answers
	Elapsed   time.Duration // first scheduled send to last answer
	Asked     time.Duration // the publishing window asked for
}

// Rate is the achieved publish rate: over the asked window, or over the
// time it really took when the answers came later than that.
func (s PublishStats) Rate() float64 {
	return float64(s.Published) / max(s.Elapsed.Seconds(), s.Asked.Seconds(), 1e-9)
}

// Run publishes rate messages per second for d (or until ctx ends).
func (p *Publisher) Run(ctx context.Context, rate float64, d time.Duration) PublishStats {
	if p.client == nil {
		w := max(p.Workers, 1)
		p.client = &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: w, MaxConnsPerHost: w}}
	}
	posts, perPost := postPlan(rate, p.MaxPosts)
	total := int(posts * d.Seconds())
	jobs := make(chan []string, total)
	for range total {
		batch := make([]string, perPost)
		for i := range batch {
			batch[i] = p.Topics[p.next%len(p.Topics)]
			p.next++
		}
		jobs <- batch
	}
	close(jobs)
	var (
		mu sync.Mutex
		st PublishStats
		wg sync.WaitGroup
		k  int
	)
	start := time.Now()
	for range max(p.Workers, 1) {
		wg.Go(func() {
			var body []byte
			for {
				mu.Lock()
				batch, ok := <-jobs
				i := k
				k++
				mu.Unlock()
				if !ok {
					return
				}
				at := start.Add(time.Duration(float64(i) / posts * float64(time.Second)))
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(at)):
				}
				// "t" is the scheduled send time, not the actual one: a
				// slow publish API then shows up in the latency instead of
				// silently lowering the rate (coordinated omission).
				subs, err := p.post(ctx, batch, &body, at.UnixNano())
				mu.Lock()
				if err != nil {
					st.Errors++
					st.LastError = err.Error()
				} else {
					st.Published += int64(len(batch))
					st.Expected += subs
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st.Elapsed, st.Asked = time.Since(start), d
	return st
}

// postPlan splits rate into requests per second and messages per request.
func postPlan(rate, maxPosts float64) (posts float64, perPost int) {
	if maxPosts <= 0 {
		maxPosts = 200
	}
	if rate <= maxPosts {
		return rate, 1
	}
	perPost = int(rate/maxPosts + 0.5)
	return rate / float64(perPost), perPost
}

// AppendPayload builds {"t":sent,"pad":"xx…"} padded to about size bytes.
func AppendPayload(dst []byte, sent int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, sent, 10)
	dst = append(dst, `,"pad":"`...)
	for pad := size - (len(dst) - start) - 2; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// post sends one message (POST /publish/{topic}) or a batch (POST
// /publish, NDJSON) and returns the summed subscriber counts.
func (p *Publisher) post(ctx context.Context, topics []string, body *[]byte, now int64) (int64, error) {
	if p.APIKey != "" {
		return p.postCentrifugo(ctx, topics, body, now)
	}
	b := (*body)[:0]
	url := p.API + "/publish"
	if len(topics) == 1 {
		url += "/" + topics[0]
		b = AppendPayload(b, now, p.Size)
	} else {
		for _, t := range topics {
			b = append(b, `{"topic":"`+t+`","data":`...)
			b = AppendPayload(b, now, p.Size)
			b = append(b, "}\n"...)
		}
	}
	*body = b
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("publish: %s", resp.Status)
	}
	return subscribersIn(raw, len(topics) > 1)
}

// subscribersIn sums "subscribers" of a single or a batch publish answer.
func subscribersIn(raw []byte, batch bool) (int64, error) {
	type one struct {
		Subscribers int64 `json:"subscribers"`
	}
	if !batch {
		var r one
		err := json.Unmarshal(raw, &r)
		return r.Subscribers, err
	}
	var r struct {
		Results []one `json:"results"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return 0, err
	}
	var n int64
	for _, x := range r.Results {
		n += x.Subscribers
	}
	return n, nil
}

// Close drops the idle keep-alive connections.
func (p *Publisher) Close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}
