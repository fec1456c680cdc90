package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/fdelta"
	"github.com/fanwire/fanwire/server/demo"
	"github.com/gorilla/websocket"
)

// BandwidthConfig is the bandwidth scenario: Subscribers on the demo's
// price and football topics; the recorded-looking feeds of both are
// published, one feed at a time, and every server variant (plain,
// permessage-deflate, Fossil deltas, both; the peers with and without
// compression) is charged the bytes its subscribers read and its CPU.
type BandwidthConfig struct {
	Subscribers int
	Messages    int     // publishes per feed
	Rate        float64 // publishes per second
	Drain       time.Duration
	ConnectRate float64 // new connections per second
	Start       time.Duration
	// Rounds: every variant runs this many times, round-robin, and each
	// figure is the median (the machine is shared: single runs are noisy).
	Rounds int
}

// DefaultBandwidth is 10,000 subscribers and 40 publishes per feed; quick is CI-sized.
func DefaultBandwidth(quick bool) BandwidthConfig {
	c := BandwidthConfig{Subscribers: 10000, Messages: 40, Rate: 10, Drain: 10 * time.Second, ConnectRate: 4000, Start: 10 * time.Second, Rounds: 3}
	if quick {
		c.Subscribers, c.Messages, c.Rate, c.Rounds = 500, 10, 20, 1
	}
	return c
}

// bandwidthFeed is one recorded feed, published on its demo topic.
type bandwidthFeed struct {
	key, topic string
	msgs       [][]byte
}

func bandwidthFeeds(n int) []bandwidthFeed {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	return []bandwidthFeed{
		{"prices", demo.TopicBTC, demo.RecordedPrices(42, "BTC-USD", 65000, start, n)},
		{"football", demo.TopicFootball, demo.RecordedFootball(42, n)},
	}
}

// bandwidthVariant is one server configuration and what its clients ask for.
type bandwidthVariant struct {
	name    string
	server  Server
	deflate bool // clients offer permessage-deflate
	delta   bool // clients ask for Fossil deltas (?delta=fossil)
}

// bandwidthVariants expands the servers: fanwire into plain, deflate, delta
// and delta+deflate (one node, run with --delta and --compress-min 0 so
// every message may be compressed, as the peers do), gorillahub and
// nbiohub into plain and --compression. Flush variants and coderhub are
// left out (coderhub has no compression switch here).
func bandwidthVariants(servers []Server) []bandwidthVariant {
	var out []bandwidthVariant
	for _, s := range servers {
		switch {
		case s.Name == "fanwire":
			f := s
			f.Args = append(append([]string(nil), s.Args...), "--delta", "*", "--compress-min", "0")
			out = append(out,
				bandwidthVariant{name: "fanwire", server: f},
				bandwidthVariant{name: "fanwire-deflate", server: f, deflate: true},
				bandwidthVariant{name: "fanwire-delta", server: f, delta: true},
				bandwidthVariant{name: "fanwire-delta+deflate", server: f, deflate: true, delta: true})
		case s.Name == "gorillahub" || s.Name == "nbiohub":
			z := s
			z.Args = append(append([]string(nil), s.Args...), "--compression")
			out = append(out, bandwidthVariant{name: s.Name, server: s}, bandwidthVariant{name: s.Name + "-deflate", server: z, deflate: true})
		}
	}
	return out
}

// Bandwidth metric keys: <feed>_<what>.
const (
	metricWireBytes = "wire_bytes_per_delivery"
	metricPerCPU    = "deliveries_per_cpu_s"
	metricCPUPer    = "cpu_us_per_delivery"
)

func bandwidthMetrics(feeds []bandwidthFeed) []Metric {
	var m []Metric
	for _, f := range feeds {
		m = append(m,
			Metric{Key: f.key + "_" + metricWireBytes, Label: f.key + ": wire bytes / delivery", Unit: "B", LowerIsBetter: true},
			Metric{Key: f.key + "_" + metricPerCPU, Label: f.key + ": deliveries / server CPU-s"},
			Metric{Key: f.key + "_" + metricCPUPer, Label: f.key + ": server CPU / delivery", Unit: "µs", LowerIsBetter: true, NoRatio: true})
	}
	return m
}

// RunBandwidth runs every variant in turn.
func RunBandwidth(ctx context.Context, servers []Server, cfg BandwidthConfig, logf func(string, ...any)) *Result {
	feeds := bandwidthFeeds(cfg.Messages)
	r := &Result{
		Scenario: "bandwidth", Date: time.Now(), Host: ThisHost(), Baseline: "fanwire", Metrics: bandwidthMetrics(feeds),
		Settings: map[string]any{"subscribers": cfg.Subscribers, "messages_per_feed": cfg.Messages, "rate": cfg.Rate, "rounds": cfg.Rounds,
			"feeds": map[string]string{"prices": demo.TopicBTC, "football": demo.TopicFootball}},
		Notes: []string{
			fmt.Sprintf("%d subscribers on %s and %s (URL topics); %d recorded-looking messages of each demo feed (server/demo RecordedPrices, RecordedFootball: the demo's own generators, seeded) POSTed to the control API at %.0f/s, one feed after the other.",
				cfg.Subscribers, demo.TopicBTC, demo.TopicFootball, cfg.Messages, cfg.Rate),
			fmt.Sprintf("Each variant ran %d time(s), round-robin, each time on a fresh server process; every figure is the median over the rounds (the JSON has _min and _max too).", cfg.Rounds),
			"Wire bytes / delivery = WebSocket bytes (frame headers + payloads; TCP/IP headers not counted) read by all subscribers during the feed's window / data frames they read. Deliveries / server CPU-s = those frames / the server's utime+stime over the window (/proc/PID/stat), from the first publish until every expected frame arrived.",
			"fanwire runs with --delta '*' --compress-min 0 (every message may be compressed, as gorilla and nbio do; fanwire still sends a message plain when compressing does not shrink it, and full when its delta is not smaller). Variants differ only in what the clients ask: -deflate offers permessage-deflate (no context takeover), -delta adds ?delta=fossil.",
			"The subscribers count bytes and frames without decoding; one extra subscriber per variant (gorilla, compression as its variant) decodes everything — inflating, applying every Fossil delta with fdelta — and checks each message against the published one, in seq order (<feed>_checked in the JSON).",
			"gorilla's PreparedMessage compresses once per publish too (it caches the frame per compression setting); nbio compresses every write, i.e. once per publish and connection. Both share the harness's 2 cores with the subscribers.",
		},
	}
	variants := bandwidthVariants(servers)
	runs := make([][]ServerResult, len(variants))
	for round := 1; round <= max(cfg.Rounds, 1); round++ {
		for i, v := range variants {
			if ctx.Err() != nil {
				break
			}
			logf("bandwidth: round %d: %s", round, v.name)
			runs[i] = append(runs[i], bandwidthOne(ctx, v, feeds, cfg, logf))
		}
	}
	for i, v := range variants {
		r.Servers = append(r.Servers, medianResult(v.name, runs[i]))
	}
	return r
}

// medianResult is the median of each figure over rounds (the first error
// kept), with the lowest and highest as <key>_min and <key>_max.
func medianResult(name string, rounds []ServerResult) ServerResult {
	out := ServerResult{Name: name, Figures: map[string]float64{}}
	values := map[string][]float64{}
	for _, sr := range rounds {
		if sr.Error != "" && out.Error == "" {
			out.Error = sr.Error
		}
		for k, v := range sr.Figures {
			values[k] = append(values[k], v)
		}
	}
	for k, vs := range values {
		slices.Sort(vs)
		out.Figures[k] = vs[len(vs)/2]
		if len(vs) > 1 {
			out.Figures[k+"_min"], out.Figures[k+"_max"] = vs[0], vs[len(vs)-1]
		}
	}
	return out
}

func bandwidthOne(ctx context.Context, v bandwidthVariant, feeds []bandwidthFeed, cfg BandwidthConfig, logf func(string, ...any)) ServerResult {
	p, sr, ok := startMeasured(ctx, v.server, cfg.Start)
	sr.Name = v.name
	if !ok {
		return sr
	}
	defer p.Stop(5 * time.Second)
	bandwidthMeasure(ctx, p, v, feeds, cfg, &sr, logf)
	return sr
}

// bandwidthMeasure connects the subscribers to p and publishes every feed.
func bandwidthMeasure(ctx context.Context, p *Process, v bandwidthVariant, feeds []bandwidthFeed, cfg BandwidthConfig, sr *ServerResult, logf func(string, ...any)) {
	topics := make([]string, len(feeds))
	for i, f := range feeds {
		topics[i] = f.topic
	}
	path := "/ws?topics=" + strings.Join(topics, ",")
	if v.delta {
		path += "&delta=fossil"
	}
	var counts wireCounts
	clients, err := dialWireClients(ctx, p.WSAddr, path, v.deflate, cfg.Subscribers, cfg.ConnectRate, &counts)
	if err != nil {
		sr.Error = err.Error()
		return
	}
	defer closeAll(clients)
	checker, err := newCheckingClient(p.WSAddr, path, v.deflate)
	if err != nil {
		sr.Error = "checking client: " + err.Error()
		return
	}
	defer checker.close()
	if v.deflate && counts.negotiated.Load() != int64(cfg.Subscribers) {
		sr.Error = fmt.Sprintf("only %d of %d subscribers negotiated permessage-deflate", counts.negotiated.Load(), cfg.Subscribers)
		return
	}
	sleep(ctx, time.Second)
	api := &http.Client{Timeout: 10 * time.Second}
	defer api.CloseIdleConnections()
	for _, f := range feeds {
		b0, n0 := counts.bytes.Load(), counts.frames.Load()
		cpu, err := startCPU(p.PID())
		if err != nil {
			sr.Error = err.Error()
			return
		}
		start := time.Now()
		for i, m := range f.msgs {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(time.Until(start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))))
			if err := postPublish(ctx, api, p.HTTPAddr, f.topic, m); err != nil {
				sr.Error = fmt.Sprintf("%s: publish: %v", f.key, err)
				return
			}
		}
		want := int64(len(f.msgs)) * int64(cfg.Subscribers)
		deadline := time.Now().Add(cfg.Drain)
		for counts.frames.Load()-n0 < want && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		serverCPU, _, _, err := cpu.since()
		if err != nil {
			sr.Error = err.Error()
			return
		}
		frames, bytes := counts.frames.Load()-n0, counts.bytes.Load()-b0
		if frames < want {
			sr.Error = fmt.Sprintf("%s: %d of %d deliveries within %v", f.key, frames, want, cfg.Drain)
		}
		if frames > 0 {
			sr.Figures[f.key+"_"+metricWireBytes] = float64(bytes) / float64(frames)
			sr.Figures[f.key+"_"+metricPerCPU] = float64(frames) / math.Max(serverCPU, 1.0/ClockTicks)
			sr.Figures[f.key+"_"+metricCPUPer] = 1e6 * serverCPU / float64(frames)
		}
		checked, cerr := checker.expect(f.topic, f.msgs, cfg.Drain)
		sr.Figures[f.key+"_checked"] = float64(checked)
		if cerr != nil && sr.Error == "" {
			sr.Error = fmt.Sprintf("%s: checking client: %v", f.key, cerr)
		}
		logf("bandwidth: %s %s: %.1f wire B/delivery, %.0f deliveries / server CPU-s (%.2f CPU-s for %d deliveries), %d of %d checked, deltas %d",
			v.name, f.key, sr.Figures[f.key+"_"+metricWireBytes], sr.Figures[f.key+"_"+metricPerCPU], serverCPU, frames, checked, len(f.msgs), checker.deltas)
	}
}

func postPublish(ctx context.Context, c *http.Client, addr, topic string, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/publish/"+topic, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// wireCounts are what all counting subscribers read.
type wireCounts struct {
	bytes, frames, negotiated atomic.Int64
}

// deflateOffer is what browsers offer, minus context takeover (which
// fanwire, gorilla and nbio decline anyway).
const deflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// dialWireClients opens n raw subscribers that upgrade, then count the
// bytes and data frames they read without decoding them.
func dialWireClients(ctx context.Context, addr, path string, deflate bool, n int, rate float64, counts *wireCounts) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	start := time.Now()
	for i := range conns {
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			src := &net.TCPAddr{IP: net.ParseIP(loopbackSources[i%len(loopbackSources)])}
			d := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			br, err := upgradeRaw(c, addr, path, deflate, counts)
			if err != nil {
				c.Close()
				errs <- err
				return
			}
			conns[i] = c
			go countFrames(br, counts)
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeAll(conns)
		return nil, fmt.Errorf("bench: connecting subscribers: %w", err)
	}
	return conns, ctx.Err()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// upgradeRaw sends the upgrade request and reads the 101.
func upgradeRaw(c net.Conn, addr, path string, deflate bool, counts *wireCounts) (*bufio.Reader, error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n"
	if deflate {
		req += "Sec-WebSocket-Extensions: " + deflateOffer + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 2048)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	if strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		counts.negotiated.Add(1)
	}
	_ = c.SetReadDeadline(time.Time{})
	return br, nil
}

// countFrames reads server frames (never masked) until the connection
// ends, counting their bytes and the data frames that end a message.
func countFrames(br *bufio.Reader, counts *wireCounts) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		b0, n, size := hdr[0], uint64(hdr[1]&0x7f), 2
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				return
			}
			n, size = uint64(hdr[0])<<8|uint64(hdr[1]), 4
		case 127:
			if _, err := io.ReadFull(br, hdr[:8]); err != nil {
				return
			}
			n, size = 0, 10
			for _, b := range hdr {
				n = n<<8 | uint64(b)
			}
		}
		if _, err := br.Discard(int(n)); err != nil {
			return
		}
		if op := b0 & 0x0f; op < 8 { // data frames only (no pings run here anyway)
			counts.bytes.Add(int64(size) + int64(n))
			if b0&0x80 != 0 {
				counts.frames.Add(1)
			}
		}
	}
}

// checkingClient decodes everything one subscriber receives (gorilla,
// inflating if negotiated, applying Fossil deltas) and compares it with
// what was published.
type checkingClient struct {
	ws     *websocket.Conn
	prev   map[string][]byte
	deltas int
}

func newCheckingClient(addr, path string, deflate bool) (*checkingClient, error) {
	d := websocket.Dialer{EnableCompression: deflate, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	return &checkingClient{ws: ws, prev: map[string][]byte{}}, nil
}

func (cc *checkingClient) close() { cc.ws.Close() }

// expect reads len(msgs) deliveries of topic and checks them; it returns
// how many matched.
func (cc *checkingClient) expect(topic string, msgs [][]byte, timeout time.Duration) (int, error) {
	_ = cc.ws.SetReadDeadline(time.Now().Add(timeout))
	var lastSeq uint64
	for i := range msgs {
		_, raw, err := cc.ws.ReadMessage()
		if err != nil {
			return i, err
		}
		var m struct {
			Topic string
			Seq   uint64
			Delta string
			Data  json.RawMessage
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return i, err
		}
		data := []byte(m.Data)
		if m.Delta == "fossil" {
			var s string
			if err := json.Unmarshal(m.Data, &s); err != nil {
				return i, err
			}
			patch := make([]byte, 0, len(s))
			for _, r := range s {
				patch = append(patch, byte(r))
			}
			if data, err = fdelta.Apply(cc.prev[m.Topic], patch); err != nil {
				return i, fmt.Errorf("seq %d: %w", m.Seq, err)
			}
			cc.deltas++
		}
		cc.prev[m.Topic] = data
		if m.Topic != topic || (lastSeq != 0 && m.Seq != lastSeq+1) || !bytes.Equal(data, msgs[i]) {
			return i, fmt.Errorf("message %d: topic %s seq %d data %q, want %q", i, m.Topic, m.Seq, data, msgs[i])
		}
		lastSeq = m.Seq
	}
	return len(msgs), nil
}
