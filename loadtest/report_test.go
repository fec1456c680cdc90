package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCountersAddSumsFieldsAndMaps(t *testing.T) {
	a := Counters{Attempted: 3, Established: 2, Failed: 1, FailedBy: map[string]int64{"refused": 1}, Messages: 10}
	b := Counters{Attempted: 5, Established: 5, Failed: 2, FailedBy: map[string]int64{"refused": 1, "timeout": 1},
		ClosedByServer: 1, ClosedBy: map[string]int64{"close_1001": 1}, Messages: 7, Gaps: 2}
	var sum Counters
	sum.Add(a)
	sum.Add(b)
	want := Counters{Attempted: 8, Established: 7, Failed: 3, FailedBy: map[string]int64{"refused": 2, "timeout": 1},
		ClosedByServer: 1, ClosedBy: map[string]int64{"close_1001": 1}, Messages: 17, Gaps: 2}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("sum = %+v\nwant %+v", sum, want)
	}
	if a.FailedBy["refused"] != 1 {
		t.Fatal("Add modified its argument's map")
	}
}

func TestMergeResultsMergesHistogramsMemoryAndErrors(t *testing.T) {
	h1, h2, all := newHist(), newHist(), newHist()
	for v := int64(1); v <= 1000; v++ {
		recordClamped(h1, v)
		recordClamped(all, v)
	}
	for v := int64(5000); v <= 6000; v++ {
		recordClamped(h2, v)
		recordClamped(all, v)
	}
	rs := []PartResult{
		{Counters: Counters{Established: 10, Messages: 1000}, Latency: encodeHist(h1), Connect: encodeHist(h2),
			Memory: &Memory{Conns: 10, HeapBytes: 1000, RSSBytes: 3000}},
		{Counters: Counters{Established: 30, Messages: 1001}, Latency: encodeHist(h2),
			Memory: &Memory{Conns: 30, HeapBytes: 7000, RSSBytes: 5000}, Error: "worker 7 ended"},
	}
	m := mergeResults(rs)
	if m.counters.Established != 40 || m.counters.Messages != 2001 {
		t.Fatalf("counters %+v", m.counters)
	}
	if got, want := summarize(m.latency), summarize(all); got != want {
		t.Fatalf("merged latency %+v, want %+v", got, want)
	}
	if m.connect.TotalCount() != h2.TotalCount() {
		t.Fatalf("connect count %d", m.connect.TotalCount())
	}
	heap, rss := m.memory.PerConn()
	if heap != 200 || rss != 200 {
		t.Fatalf("per conn heap %v rss %v, want 200 200", heap, rss)
	}
	if len(m.errors) != 1 || !strings.Contains(m.errors[0], "worker 7") {
		t.Fatalf("errors %v", m.errors)
	}
}

func TestSummarizeQuantiles(t *testing.T) {
	h := newHist()
	for v := int64(1); v <= 1000; v++ {
		recordClamped(h, v)
	}
	recordClamped(h, 1e12) // clamped to the histogram maximum
	l := summarize(h)
	if l.Count != 1001 || l.P50 != 501 || l.P90 != 901 || l.P99 != 991 { // rank ceil(q*1001)
		t.Fatalf("%+v", l)
	}
	if l.Max < histMax*999/1000 {
		t.Fatalf("max %d not clamped to ~%d", l.Max, histMax)
	}
	if (Latency{}).String() != "n/a" || !strings.Contains(l.String(), "p99 991µs") {
		t.Fatalf("String: %q", l.String())
	}
}

func TestJudge(t *testing.T) {
	cases := []struct {
		name     string
		r        Report
		problems int
	}{
		{"clean", Report{Connections: Counters{Established: 5, ClosedClean: 5}}, 0},
		{"failed", Report{Connections: Counters{Failed: 2, FailedBy: map[string]int64{"refused": 2}}}, 1},
		{"dropped", Report{Connections: Counters{ClosedByServer: 1, ClosedBy: map[string]int64{"eof": 1}}}, 1},
		{"loss", Report{Delivery: &Delivery{Expected: 100, ExpectedPlan: 100, Lost: 1, LossRatio: 0.01}}, 1},
		{"loss allowed", Report{Settings: Config{MaxLoss: 0.05}, Delivery: &Delivery{Expected: 100, ExpectedPlan: 100, Lost: 1, LossRatio: 0.01}}, 0},
		{"expected mismatch", Report{Delivery: &Delivery{Expected: 50, ExpectedPlan: 100}}, 1},
		{"dups and publish errors", Report{Delivery: &Delivery{Dups: 1, PublishErrors: 2, PublishErrBy: map[string]int64{"status_503": 2}}}, 2},
		{"worker error", Report{Errors: []string{"boom"}}, 1},
	}
	for _, c := range cases {
		c.r.judge()
		if len(c.r.Problems) != c.problems || c.r.OK != (c.problems == 0) {
			t.Errorf("%s: ok=%v problems=%q", c.name, c.r.OK, c.r.Problems)
		}
	}
}

func TestReportJSONAndText(t *testing.T) {
	r := &Report{Mode: "fanout", Settings: DefaultConfig("fanout"), Processes: 2,
		Connections: Counters{Attempted: 4, Established: 4, ClosedClean: 4},
		Delivery:    &Delivery{Published: 10, Expected: 40, ExpectedPlan: 40, Delivered: 40, LatencyUs: Latency{Count: 40, P50: 120}},
		Memory:      &MemFig{Conns: 4, HeapPerConn: 180},
		Timeline:    []Sample{{T: 1, Open: 4}}}
	r.judge()
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"settings", "connections", "delivery", "memory", "timeline", "ok", "connect_latency_us"} {
		if _, ok := back[key]; !ok {
			t.Errorf("json report lacks %q", key)
		}
	}
	if set := back["settings"].(map[string]any); set["pub_rate"] != 100.0 || set["duration"] != "10s" {
		t.Errorf("settings not in report: %v", back["settings"])
	}
	var sb strings.Builder
	r.WriteText(&sb)
	for _, want := range []string{"delivered:   40 of 40", "result: OK", "180 B heap/conn"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, sb.String())
		}
	}
}

// A node that does not count subscribers (worker mode) answers without the
// field: the publisher says so (-1) and the plan's count is expected instead.
func TestPublishAnswerWithoutSubscriberCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"topic":"a","seq":1}`)
	}))
	defer srv.Close()
	p := newPublisher(srv.URL, []string{"a"}, []int64{7}, 100, 50, 1)
	if subs, seq, err := p.post(context.Background(), "a", []byte(`{}`)); err != nil || subs != -1 || seq != 1 {
		t.Fatalf("post: %d %v", subs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st := p.run(ctx, 50*time.Millisecond)
	if st.Published == 0 || st.Uncounted != st.Published || st.Expected != 7*st.Published || st.Expected != st.ExpectedPlan {
		t.Fatalf("stats: %+v", st)
	}
}
