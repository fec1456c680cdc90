package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a fake Publisher that keeps every message per topic.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][][]byte
}

func (r *recorder) Publish(topic string, data []byte) (uint64, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[string][][]byte{}
	}
	r.msgs[topic] = append(r.msgs[topic], bytes.Clone(data))
	return uint64(len(r.msgs[topic])), 0, nil
}

func (r *recorder) snapshot() map[string][][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][][]byte, len(r.msgs))
	for k, v := range r.msgs {
		out[k] = append([][]byte(nil), v...)
	}
	return out
}

func TestRunPublishesOnAllTopics(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, rec, nil); close(done) }()

	topics := []string{TopicFootball, TopicBTC, TopicETH}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := rec.snapshot()
		if len(got[TopicFootball]) > 0 && len(got[TopicBTC]) > 1 && len(got[TopicETH]) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 s: football %d, BTC %d, ETH %d messages",
				len(got[TopicFootball]), len(got[TopicBTC]), len(got[TopicETH]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	got := rec.snapshot()
	for _, topic := range topics {
		for _, data := range got[topic] {
			if !json.Valid(data) {
				t.Fatalf("%s: invalid JSON %q", topic, data)
			}
		}
	}
	var ev ScoreEvent
	if err := json.Unmarshal(got[TopicFootball][0], &ev); err != nil || ev.Event != "kickoff" || ev.HomeTeam == ev.AwayTeam {
		t.Fatalf("first football event %s (err %v), want a kickoff between two teams", got[TopicFootball][0], err)
	}
	for topic, symbol := range map[string]string{TopicBTC: "BTC-USD", TopicETH: "ETH-USD"} {
		var tick Tick
		if err := json.Unmarshal(got[topic][0], &tick); err != nil || tick.Symbol != symbol || tick.Price <= 0 || tick.TS <= 0 {
			t.Fatalf("%s tick %s (err %v)", topic, got[topic][0], err)
		}
	}
}

func TestMatchPlaysConsistentMatches(t *testing.T) {
	m := newMatch(rand.New(rand.NewPCG(1, 2)))
	var home, away, fullTimes int
	lastMinute := -1
	prev := ""
	for range 2000 {
		ev := m.next()
		if ev.HomeTeam == ev.AwayTeam || ev.Match != ev.HomeTeam+" vs "+ev.AwayTeam {
			t.Fatalf("bad teams: %+v", ev)
		}
		if prev == "full_time" && ev.Event != "kickoff" {
			t.Fatalf("after full_time came %q, want kickoff", ev.Event)
		}
		if ev.Event == "kickoff" {
			home, away, lastMinute = 0, 0, 0
		}
		if ev.Minute < lastMinute || ev.Minute > 90 {
			t.Fatalf("minute went from %d to %d", lastMinute, ev.Minute)
		}
		if ev.Event == "goal" {
			if ev.Team == "home" {
				home++
			} else {
				away++
			}
		}
		if ev.Home != home || ev.Away != away {
			t.Fatalf("score %d-%d, goals seen %d-%d: %+v", ev.Home, ev.Away, home, away, ev)
		}
		if ev.Event == "full_time" {
			fullTimes++
		}
		lastMinute, prev = ev.Minute, ev.Event
	}
	if fullTimes < 10 {
		t.Fatalf("only %d matches finished in 2000 events", fullTimes)
	}
}

func TestPriceWalkStaysPlausible(t *testing.T) {
	w := newPriceWalk(rand.New(rand.NewPCG(3, 4)), "BTC-USD", 65000)
	now := time.UnixMilli(1_700_000_000_000)
	moves := 0
	prev := 65000.0
	for range 100_000 {
		tick := w.next(now)
		if tick.Price < 65000/2 || tick.Price > 65000*2 {
			t.Fatalf("price wandered to %v", tick.Price)
		}
		if cents := tick.Price * 100; math.Abs(cents-math.Round(cents)) > 1e-6 {
			t.Fatalf("price %v is not rounded to cents", tick.Price)
		}
		if tick.Price != prev {
			moves++
		}
		prev = tick.Price
	}
	if moves < 90_000 {
		t.Fatalf("price moved on only %d of 100000 ticks", moves)
	}
}

// failingPublisher fails while fail is set.
type failingPublisher struct{ fail bool }

func (f *failingPublisher) Publish(string, []byte) (uint64, int, error) {
	if f.fail {
		return 0, 0, errors.New("node stopped")
	}
	return 1, 0, nil
}

func TestSinkLogsFailureOnlyWhenItChanges(t *testing.T) {
	var logs bytes.Buffer
	p := &failingPublisher{fail: true}
	s := sink{p: p, log: slog.New(slog.NewTextHandler(&logs, nil)), topic: "t"}
	for range 5 {
		s.publish(1)
	}
	p.fail = false
	s.publish(1)
	s.publish(1)
	out := logs.String()
	if n := strings.Count(out, "publish failing"); n != 1 {
		t.Fatalf("logged failure %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "publish recovered"); n != 1 {
		t.Fatalf("logged recovery %d times, want once:\n%s", n, out)
	}
}

func TestRenderPage(t *testing.T) {
	page := string(RenderPage(WSURL("127.0.0.1:9000")))
	if !strings.Contains(page, `content="ws://127.0.0.1:9000/ws"`) {
		t.Fatal("page does not carry the WebSocket URL")
	}
	if strings.Contains(page, wsURLPlaceholder) {
		t.Fatal("placeholder left in the page")
	}
	if !strings.HasPrefix(page, "<!doctype html>") {
		t.Fatal("not an HTML page")
	}
	// The URL lands in an attribute: it must not be able to break out of it.
	evil := string(RenderPage(`ws://x/"><script>alert(1)</script>`))
	if strings.Contains(evil, `"><script>alert`) {
		t.Fatal("URL is not HTML-escaped")
	}
	for _, topic := range []string{TopicFootball, TopicBTC, TopicETH} {
		if !strings.Contains(page, "'"+topic+"'") {
			t.Fatalf("page does not subscribe to %s", topic)
		}
	}
}
