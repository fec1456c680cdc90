package bench

import (
	"context"
	"encoding/xml"
	"flag"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
)

// TestMain doubles as a fake server process for the Start/Stop tests: with
// BENCH_FAKE_SERVER=1 the test binary listens on --listen and --http.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_FAKE_SERVER") == "1" {
		fakeServer()
		return
	}
	os.Exit(m.Run())
}

func fakeServer() {
	fs := flag.NewFlagSet("fake", flag.ExitOnError)
	ws := fs.String("listen", "", "")
	ctl := fs.String("http", "", "")
	_ = fs.Parse(os.Args[1:])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	for _, a := range []string{*ws, *ctl} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			os.Exit(2)
		}
		go func() { _ = http.Serve(ln, http.HandlerFunc(upgradeOnly)) }()
	}
	<-sig
}

// upgradeOnly answers every request with a valid 101 and keeps the socket.
func upgradeOnly(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	_, _ = conn.Write(codec.AppendAcceptResponse(nil, []byte(r.Header.Get("Sec-WebSocket-Key"))))
	if r.URL.Query().Get("close") == "1" {
		_ = conn.Close()
	}
}

func fakeServerSpec(t *testing.T) Server {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BENCH_FAKE_SERVER", "1")
	return Server{Name: "fake", Path: exe}
}

func TestStartStopAndProcfs(t *testing.T) {
	p, err := Start(context.Background(), fakeServerSpec(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CPUSeconds(p.PID()); err != nil {
		t.Errorf("CPUSeconds: %v", err)
	}
	if rss, err := RSS(p.PID(), os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
	if !p.Stop(5 * time.Second) {
		t.Error("fake server did not exit on SIGTERM")
	}
}

func TestStartFailsWhenServerExits(t *testing.T) {
	_, err := Start(context.Background(), Server{Name: "false", Path: "/bin/false"}, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("err = %v", err)
	}
}

func TestIdleClients(t *testing.T) {
	p, err := Start(context.Background(), fakeServerSpec(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	var c IdleClients
	defer c.Close()
	cfg := IdleConfig{Addr: p.WSAddr, Path: "/ws?topics=idle", SourceIPs: 3, Workers: 4}
	if err := c.Open(context.Background(), cfg, 50); err != nil {
		t.Fatal(err)
	}
	cfg.Path = "/ws?close=1" // the server closes these right after the 101
	if err := c.Open(context.Background(), cfg, 5); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 55 {
		t.Fatalf("Len = %d, want 55", c.Len())
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Alive() != 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := c.Alive(); a != 50 {
		t.Fatalf("Alive = %d, want 50", a)
	}
}

func TestCheckAccept(t *testing.T) {
	if err := checkAccept(codec.AppendAcceptResponse(nil, idleKey)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: x\r\n\r\n", "HTTP/1.1 101 OK\r\n\r\n"} {
		if checkAccept([]byte(bad)) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	line := "1234 (we (ird) name) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 4 0 100 200 300"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 3.8 {
		t.Fatalf("parseStatCPU = %v, %v; want 3.8", got, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("no error for garbage")
	}
}

func TestKBField(t *testing.T) {
	in := "MemTotal:       24684000 kB\nSlab:             123456 kB\nHugePages_Total:       0\n"
	if v, err := kbField(strings.NewReader(in), "Slab:"); err != nil || v != 123456*1024 {
		t.Errorf("Slab = %d, %v", v, err)
	}
	if v, err := kbField(strings.NewReader(in), "HugePages_Total:"); err != nil || v != 0 {
		t.Errorf("HugePages_Total = %d, %v", v, err)
	}
	if _, err := kbField(strings.NewReader(in), "VmRSS:"); err == nil {
		t.Error("no error for a missing field")
	}
}

func TestParseSlabinfo(t *testing.T) {
	in := `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
TCP                  100    104   2368   13    8 : tunables    0    0    0 : slabdata      8      8      0
dentry              5000   5000    192   21    1 : tunables    0    0    0 : slabdata    200    200      0
eventpoll_epi         10     32    128   32    1 : tunables    0    0    0 : slabdata      1      1      0
`
	got, err := parseSlabinfo(strings.NewReader(in), []string{"TCP", "eventpoll_epi", "missing"})
	if want := int64(100*2368 + 10*128); err != nil || got != want {
		t.Fatalf("parseSlabinfo = %d, %v; want %d", got, err, want)
	}
	if _, err := parseSlabinfo(strings.NewReader(in), []string{"nope"}); err == nil {
		t.Error("no error when no cache matches")
	}
}

func sampleResult() *Result {
	return &Result{
		Scenario: "density",
		Date:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Baseline: "fanwire",
		Settings: map[string]any{"conns": 10000},
		Metrics: []Metric{
			{Key: "rss", Label: "RSS / conn", Unit: "B", LowerIsBetter: true},
			{Key: "alive", Label: "alive", NoRatio: true},
		},
		Servers: []ServerResult{
			{Name: "fanwire", Figures: map[string]float64{"rss": 500, "alive": 10000},
				Series: []Series{{Name: "rss", X: []float64{5000, 10000}, Y: []float64{600, 500}}}},
			{Name: "gorillahub", Figures: map[string]float64{"rss": 16000, "alive": 10000},
				Series: []Series{{Name: "rss", X: []float64{5000, 10000}, Y: []float64{15000, 16000}}}},
			{Name: "nbiohub", Figures: map[string]float64{}, Error: "boom"},
		},
	}
}

func TestMarkdown(t *testing.T) {
	got := Markdown(sampleResult())
	want := `| server | RSS / conn (B) | fanwire/this | alive |
|---|---:|---:|---:|
| fanwire | 500 | 1.00 | 10,000 |
| gorillahub | 16,000 | 0.03 | 10,000 |
| nbiohub | – | – | – |

nbiohub: boom
`
	if got != want {
		t.Fatalf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestRatioAndFormatting(t *testing.T) {
	if !math.IsNaN(Ratio(1, 0)) || Ratio(1, 4) != 0.25 {
		t.Error("Ratio")
	}
	for in, want := range map[string]string{"1": "1", "123": "123", "1234": "1,234", "1234567": "1,234,567", "-1234": "-1,234"} {
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%s) = %s", in, got)
		}
	}
	if cell(3.14159, true) != "3.14" || cell(42.42, true) != "42.4" || cell(math.NaN(), true) != "–" {
		t.Error("cell")
	}
}

func TestResultRoundTripAndWriteAll(t *testing.T) {
	dir := t.TempDir()
	r := sampleResult()
	paths, err := WriteAll(r, map[string]Chart{"rss": SeriesChart(r, "rss", "RSS")}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2026-01-02-density.json", "2026-01-02-density-rss.svg", "2026-01-02-density.md"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("missing %s (wrote %v)", want, paths)
		}
	}
	back, err := ReadResult(filepath.Join(dir, "2026-01-02-density.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Server("gorillahub").Figures["rss"] != 16000 || back.Server("nbiohub").Error != "boom" {
		t.Fatalf("round trip lost data: %+v", back)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "2026-01-02-density.md"))
	if !strings.Contains(string(md), "](2026-01-02-density-rss.svg)") {
		t.Errorf("markdown does not link the chart:\n%s", md)
	}
}

func TestChartSVGIsWellFormed(t *testing.T) {
	c := SeriesChart(sampleResult(), "rss", `RSS <per> "conn"`)
	if len(c.Lines) != 2 {
		t.Fatalf("lines = %d", len(c.Lines))
	}
	for _, chart := range []Chart{c, {Title: "empty"}} {
		svg := chart.SVG()
		d := xml.NewDecoder(strings.NewReader(string(svg)))
		for {
			_, err := d.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: bad XML: %v\n%s", chart.Title, err, svg)
				}
				break
			}
		}
	}
	if !strings.Contains(string(c.SVG()), "<polyline") {
		t.Error("no line drawn")
	}
}

func TestNiceTicks(t *testing.T) {
	got := niceTicks(0, 16550)
	if got[0] != 0 || got[len(got)-1] < 16550 || len(got) > 8 {
		t.Fatalf("niceTicks(0, 16550) = %v", got)
	}
	if tickLabel(12000) != "12k" || tickLabel(2.5e6) != "2.5M" || tickLabel(500) != "500" {
		t.Error("tickLabel")
	}
}

func TestParseSocketsUsed(t *testing.T) {
	got, err := parseSocketsUsed([]byte("sockets: used 571\nTCP: inuse 557 orphan 0 tw 76982 alloc 557 mem 0\n"))
	if err != nil || got != 571 {
		t.Fatalf("parseSocketsUsed = %d, %v", got, err)
	}
}
