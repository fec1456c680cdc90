package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
)

// Tests of the SSE (GET /sse) and long-poll (GET /poll) transports over raw
// TCP: exact bytes on the wire.

// streamConn is a raw HTTP client of a stream endpoint.
type streamConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialStream(t testing.TB, addr, pathQuery string, headers ...string) *streamConn {
	t.Helper()
	// A small receive buffer: a client that does not read must show up as
	// slow to the node, not vanish into an autotuned kernel buffer.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET " + pathQuery + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return &streamConn{t: t, c: c, br: bufio.NewReader(c)}
}

// head reads the response head, exactly.
func (s *streamConn) head() string {
	s.t.Helper()
	var b strings.Builder
	for {
		line := s.line()
		b.WriteString(line)
		if line == "\r\n" {
			return b.String()
		}
	}
}

func (s *streamConn) line() string {
	s.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %v (so far %q)", err, line)
	}
	return line
}

// event reads one SSE event (or comment block) up to its blank line, raw.
func (s *streamConn) event() string {
	s.t.Helper()
	var b strings.Builder
	for {
		line := s.line()
		b.WriteString(line)
		if line == "\n" {
			return b.String()
		}
	}
}

// rest reads until EOF.
func (s *streamConn) rest() string {
	s.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(s.br)
	if err != nil {
		s.t.Fatalf("read to EOF: %v (got %q)", err, b)
	}
	return string(b)
}

const sseHeadWant = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"Access-Control-Allow-Origin: *\r\n" +
	"Connection: close\r\n\r\n"

func streamNode(t *testing.T, edit func(*server.Config)) *server.Node {
	return startNode(t, false, func(c *server.Config) {
		c.Epoch = "E"
		if edit != nil {
			edit(c)
		}
	})
}

func TestSSEWireFormat(t *testing.T) {
	n := streamNode(t, nil)
	publishN(t, n, "prices.x", 1, 2)
	s := dialStream(t, n.WSAddr(), "/sse?topics=prices.x,feed.x")
	if h := s.head(); h != sseHeadWant {
		t.Fatalf("head %q, want %q", h, sseHeadWant)
	}
	want := []string{
		// The ack's id is the starting cursor: prices.x is left out until its snapshot.
		"event: subscribed\nid: feed.x=0@E\ndata: {\"type\":\"subscribed\",\"topics\":[\"prices.x\",\"feed.x\"],\"epochs\":{\"prices.x\":\"E\",\"feed.x\":\"E\"},\"seqs\":{\"prices.x\":2,\"feed.x\":0}}\n\n",
		"event: snapshot\nid: prices.x=2@E,feed.x=0@E\ndata: {\"topic\":\"prices.x\",\"seq\":2,\"data\":2,\"snapshot\":true}\n\n",
	}
	for _, w := range want {
		if got := s.event(); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	publishN(t, n, "feed.x", 1, 1)
	if _, _, err := n.Publish("prices.x", []byte("{\n  \"p\": 3\r\n}")); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"id: feed.x=1@E,prices.x=2@E\ndata: {\"topic\":\"feed.x\",\"seq\":1,\"data\":1}\n\n",
		"id: prices.x=3@E,feed.x=1@E\ndata: {\"topic\":\"prices.x\",\"seq\":3,\"data\":{\ndata:   \"p\": 3\ndata: }}\n\n",
	} {
		if got := s.event(); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

// A resumed stream: Last-Event-ID wins over the URL's since for the topics
// it names; a reset arrives as "event: reset" with the position it implies.
func TestSSELastEventIDResume(t *testing.T) {
	n := streamNode(t, nil)
	publishN(t, n, "feed.a", 1, 5)
	publishN(t, n, "feed.b", 1, 3)
	s := dialStream(t, n.WSAddr(), "/sse?topics=feed.a,feed.b&since=feed.a:1,feed.b:0&epochs=feed.a:E,feed.b:E",
		"Last-Event-ID: feed.a=4@E,feed.b=2@E")
	s.head()
	if got := s.event(); !strings.HasPrefix(got, "event: subscribed\nid: feed.a=4@E,feed.b=2@E\n") {
		t.Fatalf("ack %q: want the resumed starting cursor as its id", got)
	}
	for _, w := range []string{
		"id: feed.a=5@E,feed.b=2@E\ndata: {\"topic\":\"feed.a\",\"seq\":5,\"data\":5}\n\n",
		"id: feed.b=3@E,feed.a=5@E\ndata: {\"topic\":\"feed.b\",\"seq\":3,\"data\":3}\n\n",
	} {
		if got := s.event(); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	// Another epoch: a reset, then what history holds.
	r := dialStream(t, n.WSAddr(), "/sse?topics=feed.b", "Last-Event-ID: feed.b=9@OLD")
	r.head()
	r.event()
	for _, w := range []string{
		"event: reset\nid: feed.b=0@E\ndata: {\"type\":\"reset\",\"topic\":\"feed.b\",\"from\":1,\"epoch\":\"E\"}\n\n",
		"id: feed.b=1@E\ndata: {\"topic\":\"feed.b\",\"seq\":1,\"data\":1}\n\n",
	} {
		if got := r.event(); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	bad := dialStream(t, n.WSAddr(), "/sse?topics=feed.b", "Last-Event-ID: nonsense")
	if h := bad.head(); !strings.HasPrefix(h, "HTTP/1.1 400 ") || !strings.Contains(h, "Access-Control-Allow-Origin: *\r\n") {
		t.Fatalf("bad Last-Event-ID: head %q, want 400 with CORS", h)
	}
}

func TestSSEHeartbeatAndShutdown(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.HTTPListen, cfg.Loops = "127.0.0.1:0", "", 1
	cfg.PingInterval = 100 * time.Millisecond
	cfg.DrainWindow = 50 * time.Millisecond
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	s := dialStream(t, n.WSAddr(), "/sse?topics=feed.h")
	s.head()
	s.event()
	for i := 0; i < 3; i++ { // several intervals: a silent client is not "idle"
		if got := s.event(); got != ":\n\n" {
			t.Fatalf("want a heartbeat comment, got %q", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go n.Shutdown(ctx) //nolint:errcheck
	rest := s.rest()
	rest = strings.TrimLeft(strings.ReplaceAll(rest, ":\n\n", ""), "\n")
	var ms int
	if _, err := fmt.Sscanf(rest, "event: close\nretry: %d\n", &ms); err != nil || ms >= 50 {
		t.Fatalf("want a close event with a retry under 50 ms, got %q (%v)", rest, err)
	}
	want := fmt.Sprintf("event: close\nretry: %d\ndata: {\"type\":\"close\",\"code\":1001,\"reason\":\"going away; reconnect in %dms\"}\n\n", ms, ms)
	if rest != want {
		t.Fatalf("got %q, want %q", rest, want)
	}
}

// pollAnswer is a long-poll response body.
type pollAnswer struct {
	Messages []json.RawMessage `json:"messages"`
	Since    map[string]uint64 `json:"since"`
	Epochs   map[string]string `json:"epochs"`
	Close    *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"close"`
}

func pollHTTP(t *testing.T, addr, pathQuery string) (string, pollAnswer) {
	t.Helper()
	resp, err := http.Get("http://" + addr + pathQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("poll %s: %d %v %s", pathQuery, resp.StatusCode, resp.Header, body)
	}
	var a pollAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("poll body %s: %v", body, err)
	}
	return string(body), a
}

func TestPollWireFormat(t *testing.T) {
	n := streamNode(t, func(c *server.Config) { c.Streams.PollTimeout = 300 * time.Millisecond })
	publishN(t, n, "feed.p", 1, 3)
	publishN(t, n, "prices.p", 1, 1)
	// History after since: answered at once, exactly.
	s := dialStream(t, n.WSAddr(), "/poll?topics=feed.p,prices.p&since=feed.p:1,prices.p:1&epochs=feed.p:E,prices.p:E")
	body := `{"messages":[{"topic":"feed.p","seq":2,"data":2},{"topic":"feed.p","seq":3,"data":3}],"since":{"feed.p":3,"prices.p":1},"epochs":{"feed.p":"E","prices.p":"E"}}`
	wantHead := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	if got := s.rest(); got != wantHead+body {
		t.Fatalf("got %q, want %q", got, wantHead+body)
	}
	// Nothing new: held until a publish, which completes the answer.
	done := make(chan pollAnswer, 1)
	go func() {
		_, a := pollHTTP(t, n.WSAddr(), "/poll?topics=feed.p,prices.p&since=feed.p:3,prices.p:1")
		done <- a
	}()
	waitFor(t, "the held poll to subscribe", func() bool { return n.Stats().Conns == 1 })
	publishN(t, n, "feed.p", 4, 4)
	a := <-done
	if len(a.Messages) != 1 || string(a.Messages[0]) != `{"topic":"feed.p","seq":4,"data":4}` || a.Since["feed.p"] != 4 || a.Since["prices.p"] != 1 {
		t.Fatalf("held poll answered %+v", a)
	}
	// Nothing within the timeout: an empty answer with the positions to continue from.
	if raw, a := pollHTTP(t, n.WSAddr(), "/poll?topics=feed.p&since=feed.p:4"); len(a.Messages) != 0 || a.Since["feed.p"] != 4 {
		t.Fatalf("timed-out poll answered %s", raw)
	}
	// A fresh topic is answered at once with its starting seq: the next poll continues there.
	start := time.Now()
	if raw, a := pollHTTP(t, n.WSAddr(), "/poll?topics=new.p,feed.p&since=feed.p:4"); len(a.Messages) != 0 || a.Since["new.p"] != 0 || a.Epochs["new.p"] != "E" || a.Since["feed.p"] != 4 {
		t.Fatalf("fresh poll answered %s", raw)
	}
	if d := time.Since(start); d > 250*time.Millisecond { // generous; the timeout is 300 ms
		t.Logf("fresh poll took %v: was it held?", d)
	}
	// A reset is a message of the answer too.
	if raw, a := pollHTTP(t, n.WSAddr(), "/poll?topics=feed.p&since=feed.p:2&epochs=feed.p:OLD"); len(a.Messages) != 5 ||
		string(a.Messages[0]) != `{"type":"reset","topic":"feed.p","from":1,"epoch":"E"}` || a.Since["feed.p"] != 4 {
		t.Fatalf("reset poll answered %s", raw)
	}
}

func TestStreamErrors(t *testing.T) {
	n := streamNode(t, nil)
	for _, c := range []struct{ req, status string }{
		{"POST /sse?topics=a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "405"},
		{"GET /poll?topics=bad$ HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"GET /sse?since=a:x HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
	} {
		rc := dialTCP(t, n.WSAddr())
		rc.write([]byte(c.req))
		resp := rc.readResponse()
		if fmt.Sprint(resp.StatusCode) != c.status || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%q: %d %v, want %s with CORS", c.req, resp.StatusCode, resp.Header, c.status)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A slow SSE client: a last-value topic is conflated into one
// "event: conflated" once it reads again; a topic without last value
// closes the stream with a final "event: close" (1008).
func TestSSESlowConsumer(t *testing.T) {
	n := streamNode(t, func(c *server.Config) {
		c.MaxPending = 16 << 10
		c.SendBuffer = 8 << 10
		c.SlowGrace = time.Minute
	})
	big := []byte(`"` + strings.Repeat("x", 1000) + `"`)
	publishAll := func(topic string, count int) {
		for i := 0; i < count; i++ {
			if _, _, err := n.Publish(topic, big); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := dialStream(t, n.WSAddr(), "/sse?topics=prices.slow")
	s.head()
	s.event()
	publishAll("prices.slow", 3000)
	waitFor(t, "slow mode", func() bool { return n.Stats().SlowMode >= 1 })
	var last uint64
	conflated := 0
	for last < 3000 {
		ev := s.event()
		var seq uint64
		if i := strings.Index(ev, `"seq":`); i >= 0 {
			fmt.Sscanf(ev[i+len(`"seq":`):], "%d", &seq)
		}
		wantID := fmt.Sprintf("id: prices.slow=%d@E\n", seq)
		if !strings.Contains(ev, wantID) {
			t.Fatalf("event %q: want %q", clip([]byte(ev)), wantID)
		}
		if strings.HasPrefix(ev, "event: conflated\n") {
			var a, b uint64
			j := strings.Index(ev, `"skipped":[`)
			fmt.Sscanf(ev[j+len(`"skipped":[`):], "%d,%d", &a, &b)
			if a != last+1 || b != seq-1 {
				t.Fatalf("after seq %d: conflated event %q, want it to skip %d..%d", last, clip([]byte(ev)), last+1, seq-1)
			}
			conflated++
		} else if seq != last+1 {
			t.Fatalf("after seq %d got %q", last, clip([]byte(ev)))
		}
		last = seq
	}
	if conflated == 0 {
		t.Fatal("no conflated event")
	}

	f := dialStream(t, n.WSAddr(), "/sse?topics=feed.slow")
	f.head()
	f.event()
	publishAll("feed.slow", 3000)
	rest := f.rest()
	i := strings.LastIndex(rest, "event: close\n")
	if i < 0 || !strings.Contains(rest[i:], `"code":1008`) || n.Stats().SlowClosed != 1 {
		t.Fatalf("stream ends %q (slow closes %d), want a close event with 1008", clip([]byte(rest[max(0, len(rest)-300):])), n.Stats().SlowClosed)
	}
}
