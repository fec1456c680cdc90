package supervisor_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSE and long-poll in worker mode: a stream that lands on a worker not yet
// following its topic waits for the topic to be primed from the bus, then
// gets its ack, its replay and the live stream like a WebSocket client.
func TestWorkersServeSSEAndPoll(t *testing.T) {
	n := startNode(t, "--workers", "2")
	const topic = "news.sse"
	for i := 1; i <= 3; i++ {
		n.publish(topic, `1`)
	}
	base := "http" + strings.TrimPrefix(strings.TrimSuffix(n.ws, "/ws"), "ws")
	type stream struct {
		resp *http.Response
		br   *bufio.Reader
	}
	var streams []stream
	for i := 0; i < 6; i++ { // lands on both workers
		resp, err := http.Get(base + "/sse?topics=" + topic + "&since=" + topic + ":1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("sse: %d %v", resp.StatusCode, resp.Header)
		}
		streams = append(streams, stream{resp, bufio.NewReader(resp.Body)})
	}
	// event reads the next delivery's seq, skipping acks.
	seqOf := func(s stream) uint64 {
		for {
			var data string
			name := ""
			for {
				line, err := s.br.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if line == "\n" {
					break
				}
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					name = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(line, "data: "); ok {
					data = v
				}
			}
			if name != "" || data == "" {
				continue // subscribed, heartbeat
			}
			var m struct{ Seq uint64 }
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("data %q: %v", data, err)
			}
			return m.Seq
		}
	}
	for i, s := range streams {
		for want := uint64(2); want <= 3; want++ {
			if got := seqOf(s); got != want {
				t.Fatalf("stream %d: seq %d, want %d", i, got, want)
			}
		}
	}
	seq := n.publish(topic, `1`)
	for i, s := range streams {
		if got := seqOf(s); got != seq {
			t.Fatalf("stream %d: live seq %d, want %d", i, got, seq)
		}
	}
	for range 4 {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get(base + "/poll?topics=" + topic + "&since=" + topic + ":2")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a struct {
			Messages []struct{ Seq uint64 }
			Since    map[string]uint64
		}
		if err := json.Unmarshal(body, &a); err != nil || len(a.Messages) != 2 || a.Messages[0].Seq != 3 || a.Since[topic] != seq {
			t.Fatalf("poll answered %s (%v)", body, err)
		}
	}
	workers := n.workers()
	for _, w := range workers {
		if w.Node == nil || w.Node.Stats.Conns == 0 {
			t.Logf("a worker held none of the streams: %+v", workers)
		}
	}
}
