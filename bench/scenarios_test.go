package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/fanwire/fanwire/server"
)

func TestPostPlan(t *testing.T) {
	for _, c := range []struct {
		rate, max float64
		posts     float64
		perPost   int
	}{
		{20, 200, 20, 1},
		{200, 200, 200, 1},
		{2000, 200, 200, 10},
		{5000, 0, 200, 25}, // 0 = default cap 200
	} {
		posts, per := postPlan(c.rate, c.max)
		if posts != c.posts || per != c.perPost {
			t.Errorf("postPlan(%v, %v) = %v, %d; want %v, %d", c.rate, c.max, posts, per, c.posts, c.perPost)
		}
	}
}

func TestAppendPayload(t *testing.T) {
	p := AppendPayload([]byte("x"), 1700000000000000000, 100)
	body := p[1:]
	if len(body) != 100 {
		t.Fatalf("len = %d, want 100: %s", len(body), body)
	}
	var v struct {
		T   int64  `json:"t"`
		Pad string `json:"pad"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.T != 1700000000000000000 {
		t.Fatalf("payload %s: %v %+v", body, err, v)
	}
	if small := AppendPayload(nil, 5, 1); !json.Valid(small) {
		t.Fatalf("short payload invalid: %s", small)
	}
}

func TestSubscribersIn(t *testing.T) {
	n, err := subscribersIn([]byte(`{"topic":"a","seq":3,"subscribers":7}`), false)
	if err != nil || n != 7 {
		t.Fatalf("single: %d %v", n, err)
	}
	n, err = subscribersIn([]byte(`{"published":2,"results":[{"subscribers":3},{"subscribers":4}]}`), true)
	if err != nil || n != 7 {
		t.Fatalf("batch: %d %v", n, err)
	}
	if _, err := subscribersIn([]byte(`nope`), true); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// TestPublisherPacesAndBatches checks the request shapes and the pacing
// against a fake control API.
func TestPublisherPacesAndBatches(t *testing.T) {
	var singles, batches, lines atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/publish" {
			batches.Add(1)
			n := strings.Count(string(b), "\n")
			lines.Add(int64(n))
			res := strings.Repeat(`{"subscribers":2},`, n)
			io.WriteString(w, `{"results":[`+strings.TrimSuffix(res, ",")+`]}`)
			return
		}
		singles.Add(1)
		if !json.Valid(b) || !strings.HasPrefix(r.URL.Path, "/publish/t") {
			http.Error(w, "bad", 400)
			return
		}
		io.WriteString(w, `{"seq":1,"subscribers":3}`)
	}))
	defer srv.Close()
	p := &Publisher{API: srv.URL, Topics: []string{"t0", "t1"}, Size: 50, Workers: 2}
	defer p.Close()
	t0 := time.Now()
	st := p.Run(context.Background(), 40, 250*time.Millisecond)
	if st.Published != 10 || st.Expected != 30 || st.Errors != 0 || singles.Load() != 10 {
		t.Fatalf("single: %+v (requests %d)", st, singles.Load())
	}
	if el := time.Since(t0); el < 200*time.Millisecond {
		t.Fatalf("10 messages at 40/s took %v: not paced", el)
	}
	p.MaxPosts = 10
	st = p.Run(context.Background(), 100, 300*time.Millisecond)
	if st.Published != 30 || batches.Load() != 3 || lines.Load() != 30 || st.Expected != 60 {
		t.Fatalf("batch: %+v (batches %d, lines %d)", st, batches.Load(), lines.Load())
	}
}

func TestLatencySince(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for range 100 {
		_ = h.RecordValue(1000)
	}
	before := hdrhistogram.Import(h.Export())
	for range 100 {
		_ = h.RecordValue(50_000)
	}
	d := latencySince(before, h)
	if d.TotalCount() != 100 {
		t.Fatalf("count = %d", d.TotalCount())
	}
	l := latencyMs(d)
	if l.P50 < 49 || l.P50 > 51 || l.P99 < 49 || l.P99 > 51 {
		t.Fatalf("step latency %+v, want all ~50 ms", l)
	}
	if latencySince(nil, h).TotalCount() != 200 {
		t.Fatal("nil before should give the whole histogram")
	}
}

func TestStepMarkdown(t *testing.T) {
	r := &Result{Baseline: "fanwire", StepLabel: "rate",
		StepColumns: []StepColumn{{Series: "eff", Label: "eff", Ratio: true}, {Series: "ok", Label: "ok", Unit: "%", Percent: true}}}
	r.Servers = []ServerResult{
		{Name: "fanwire", Series: []Series{{Name: "eff", X: []float64{20, 50}, Y: []float64{300000, 250000}}, {Name: "ok", X: []float64{20, 50}, Y: []float64{1, 0.995}}}},
		{Name: "peer", Series: []Series{{Name: "eff", X: []float64{20}, Y: []float64{100000}}, {Name: "ok", X: []float64{20}, Y: []float64{0.5}}}},
	}
	md := StepMarkdown(r)
	for _, want := range []string{
		"| rate | server | eff | fanwire/this | ok (%) |",
		"| 20 | fanwire | 300,000 | 1.00 | 100 |",
		"| 20 | peer | 100,000 | 3.00 | 50.0 |",
		"| 50 | fanwire | 250,000 | 1.00 | 99.5 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	if strings.Contains(md, "| 50 | peer") {
		t.Errorf("peer has no 50 step:\n%s", md)
	}
	if StepMarkdown(&Result{}) != "" {
		t.Error("no step columns should render nothing")
	}
}

func TestParseScenariosAndServerList(t *testing.T) {
	all, err := ParseScenarios("all")
	if err != nil || len(all) != len(Scenarios) {
		t.Fatalf("all: %v %v", all, err)
	}
	got, err := ParseScenarios("fanout, handshake")
	if err != nil || len(got) != 2 || got[1] != "handshake" {
		t.Fatalf("list: %v %v", got, err)
	}
	if _, err := ParseScenarios("fanout,nope"); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	l := ServerList([]string{"fanwire", "nbiohub"}, "/bin/fw", "/peers")
	if l[0].Path != "/bin/fw" || l[0].Subcommand != "serve" || l[1].Path != "/peers/nbiohub" || l[1].Subcommand != "" {
		t.Fatalf("servers: %+v", l)
	}
}

func TestDefaultsAreBounded(t *testing.T) {
	for _, quick := range []bool{false, true} {
		for _, c := range []FanoutConfig{DefaultFanout(quick), DefaultFanoutTopics(quick)} {
			worst := time.Duration(len(c.Rates)) * (c.Step + c.Drain)
			if worst > 2*time.Minute || c.Subscribers > 10000 || c.Subscribers%c.Topics != 0 {
				t.Errorf("%s quick=%v: %d subscribers, %d topics, up to %v of steps", c.Name, quick, c.Subscribers, c.Topics, worst)
			}
		}
		if s := DefaultSlow(quick); s.Duration > 30*time.Second || int(float64(s.Subscribers)*s.SlowFraction) < 1 {
			t.Errorf("slow quick=%v: %+v", quick, s)
		}
	}
	if q := DefaultFanout(true); q.Subscribers > 1000 || q.Step > 2*time.Second {
		t.Errorf("quick fanout is not CI-sized: %+v", q)
	}
}

func TestFDCount(t *testing.T) {
	n0, err := FDCount(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n1, _ := FDCount(os.Getpid()); n1 != n0+1 {
		t.Fatalf("fds %d then %d", n0, n1)
	}
}

// TestFanoutStepSmoke runs one short publish step against an in-process
// node with 40 subscribers over 2 topics (about a second).
func TestFanoutStepSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	node, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown(context.Background())
	ctx := context.Background()
	fleet, err := startFleet(ctx, FleetConfig{WSAddr: node.WSAddr(), Paths: []string{"/ws?topics=s.0", "/ws?topics=s.1"},
		Conns: 40, Rate: 2000, Loops: 1, Ramp: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stopFleet(fleet)
	self, _ := os.FindProcess(os.Getpid())
	p := &Process{cmd: &exec.Cmd{Process: self}} // CPU is read from this process
	pub := &Publisher{API: "http://" + node.HTTPAddr(), Topics: []string{"s.0", "s.1"}, Size: 100, Workers: 2}
	defer pub.Close()
	st, err := fanoutStep(ctx, p, fleet, pub, 40, FanoutConfig{Step: 500 * time.Millisecond, Drain: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st.ratio != 1 || st.lat.Count != 20*20 || st.perSecond <= 0 || st.perCPU <= 0 {
		t.Fatalf("step: %+v", st)
	}
}

// TestBandwidthSmoke measures the four fanwire variants against an
// in-process node (50 subscribers, a few messages per feed): every message
// checked, deltas used, compressed and delta deliveries smaller.
func TestBandwidthSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Delta.Topics = "*"
	cfg.LastValue, cfg.History = "", 0 // the variants share this node: no snapshot for the later ones
	cfg.Compression.MinSize = 0
	node, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown(context.Background())
	self, _ := os.FindProcess(os.Getpid())
	p := &Process{cmd: &exec.Cmd{Process: self}, WSAddr: node.WSAddr(), HTTPAddr: node.HTTPAddr()} // CPU is read from this process
	bc := BandwidthConfig{Subscribers: 50, Messages: 6, Rate: 100, Drain: 10 * time.Second, ConnectRate: 5000, Rounds: 1}
	feeds := bandwidthFeeds(bc.Messages)
	variants := bandwidthVariants([]Server{{Name: "fanwire"}, {Name: "fanwire-flush5ms"}, {Name: "coderhub"}})
	if len(variants) != 4 {
		t.Fatalf("variants %+v", variants)
	}
	got := map[string]ServerResult{}
	for _, v := range variants {
		sr := ServerResult{Name: v.name, Figures: map[string]float64{}}
		bandwidthMeasure(context.Background(), p, v, feeds, bc, &sr, t.Logf)
		if sr.Error != "" {
			t.Fatalf("%s: %s", v.name, sr.Error)
		}
		for _, f := range feeds {
			if sr.Figures[f.key+"_checked"] != float64(bc.Messages) || sr.Figures[f.key+"_"+metricWireBytes] <= 0 {
				t.Fatalf("%s %s: %v", v.name, f.key, sr.Figures)
			}
		}
		got[v.name] = sr
	}
	wb := func(name string) float64 { return got[name].Figures["football_"+metricWireBytes] }
	if !(wb("fanwire-deflate") < wb("fanwire") && wb("fanwire-delta") < wb("fanwire") && wb("fanwire-delta+deflate") < wb("fanwire-delta")) {
		t.Errorf("football wire bytes: plain %.1f deflate %.1f delta %.1f delta+deflate %.1f", wb("fanwire"), wb("fanwire-deflate"), wb("fanwire-delta"), wb("fanwire-delta+deflate"))
	}
}

func TestMedianResult(t *testing.T) {
	m := medianResult("x", []ServerResult{
		{Figures: map[string]float64{"a": 3}}, {Figures: map[string]float64{"a": 1}, Error: "boom"}, {Figures: map[string]float64{"a": 2}}})
	if m.Name != "x" || m.Figures["a"] != 2 || m.Figures["a_min"] != 1 || m.Figures["a_max"] != 3 || m.Error != "boom" {
		t.Fatalf("%+v", m)
	}
}
