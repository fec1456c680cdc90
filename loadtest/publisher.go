package loadtest

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

// publishStats is what the publishers did.
type publishStats struct {
	Published    int64
	Errors       int64
	ErrorsBy     map[string]int64
	Expected     int64 // sum of "subscribers" from the responses (the plan's figure where a response has none)
	ExpectedPlan int64 // sum of planned subscribers of each published topic
	Uncounted    int64 // publishes answered without a subscriber count (worker mode)
	Elapsed      time.Duration
	RTT          Latency // POST round trip, µs
}

// publisher POSTs {"t":<unix nanos>,"pad":"..."} bodies to /publish/{topic}
// at a fixed total rate, round-robin over the topics.
type publisher struct {
	api       string
	topics    []string
	topicSubs []int64 // planned subscribers per topic
	rate      float64
	size      int
	workers   int
	client    *http.Client
}

func newPublisher(api string, topics []string, topicSubs []int64, rate float64, size, workers int) *publisher {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, IdleConnTimeout: 30 * time.Second}
	return &publisher{api: api, topics: topics, topicSubs: topicSubs, rate: rate, size: size, workers: workers,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// run publishes until d has passed or ctx ends; sends follow a fixed
// schedule (start + k/rate), so a slow response delays only its own worker.
func (p *publisher) run(ctx context.Context, d time.Duration) publishStats {
	defer p.client.CloseIdleConnections()
	total := int64(p.rate * d.Seconds())
	start := time.Now()
	var mu sync.Mutex
	st := publishStats{ErrorsBy: map[string]int64{}}
	lastSeq := make([]uint64, len(p.topics)) // per topic: the newest acknowledged seq (dump.go)
	pubs := make([]int64, len(p.topics))
	rtt := newHist()
	var wg sync.WaitGroup
	for w := 0; w < p.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 0, p.size+64)
			for k := int64(w); k < total; k += int64(p.workers) {
				at := start.Add(time.Duration(float64(k) / p.rate * float64(time.Second)))
				if wait := time.Until(at); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				} else if ctx.Err() != nil {
					return
				}
				ti := int(k % int64(len(p.topics)))
				body = appendPayload(body[:0], time.Now().UnixNano(), p.size)
				sent := time.Now()
				subs, seq, err := p.post(ctx, p.topics[ti], body)
				took := time.Since(sent)
				mu.Lock()
				recordClamped(rtt, took.Microseconds())
				if err != nil {
					st.Errors++
					st.ErrorsBy[err.Error()]++
				} else {
					st.Published++
					lastSeq[ti] = max(lastSeq[ti], seq)
					pubs[ti]++
					st.ExpectedPlan += p.topicSubs[ti]
					if subs < 0 {
						st.Uncounted++
						subs = int(p.topicSubs[ti])
					}
					st.Expected += int64(subs)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	for i := range p.topics {
		dumpLine("topic path=%d name=%s last=%d published=%d subscribers=%d", i, p.topics[i], lastSeq[i], pubs[i], p.topicSubs[i])
	}
	st.RTT = summarize(rtt)
	return st
}

// appendPayload builds {"t":N,"pad":"xxx"} padded to about size bytes.
func appendPayload(dst []byte, sent int64, size int) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, sent, 10)
	dst = append(dst, `,"pad":"`...)
	for pad := size - len(dst) - 2; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

type publishResponse struct {
	Seq         uint64 `json:"seq"`
	Subscribers *int   `json:"subscribers"` // absent: the node does not count them
}

// post returns the subscriber count (-1: not given) and the seq; errors are
// short cause strings.
func (p *publisher) post(ctx context.Context, topic string, body []byte) (int, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.api+"/publish/"+topic, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("transport")
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status_%d", resp.StatusCode)
	}
	var pr publishResponse
	if err := json.Unmarshal(b, &pr); err != nil {
		return 0, 0, fmt.Errorf("bad_response")
	}
	if pr.Subscribers == nil {
		return -1, pr.Seq, nil
	}
	return *pr.Subscribers, pr.Seq, nil
}
