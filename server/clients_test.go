package server_test

// Independent WebSocket clients against a pub/sub node over real sockets:
// gorilla/websocket and coder/websocket in process, Python's websockets and
// npm ws as child processes (testdata/pyclient.py, testdata/wsclient.js).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/gorilla/websocket"
)

// wsClient hides the differences between the client libraries.
type wsClient interface {
	sendText(s string) error
	sendBinary(b []byte) error
	// recv returns the next message; binary reports its type.
	recv(timeout time.Duration) (data []byte, binary bool, err error)
	// closeCode is the code of the close frame that ended recv's error (0: none).
	closeCode(err error) int
	close()
}

type library struct {
	name string
	dial func(t testing.TB, url string) wsClient
}

var libraries = []library{
	{"gorilla", dialGorilla},
	{"coder", dialCoder},
}

type gorillaClient struct{ c *websocket.Conn }

func dialGorilla(t testing.TB, url string) wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: frameTimeout}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("gorilla dial %s: %v (HTTP status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return gorillaClient{c}
}

func (g gorillaClient) sendText(s string) error {
	return g.c.WriteMessage(websocket.TextMessage, []byte(s))
}
func (g gorillaClient) sendBinary(b []byte) error {
	return g.c.WriteMessage(websocket.BinaryMessage, b)
}
func (g gorillaClient) recv(timeout time.Duration) ([]byte, bool, error) {
	_ = g.c.SetReadDeadline(time.Now().Add(timeout))
	typ, b, err := g.c.ReadMessage()
	return b, typ == websocket.BinaryMessage, err
}
func (g gorillaClient) closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
func (g gorillaClient) close() {
	_ = g.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	g.c.Close()
}

type coderClient struct{ c *cws.Conn }

func dialCoder(t testing.TB, url string) wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), frameTimeout)
	defer cancel()
	c, resp, err := cws.Dial(ctx, url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("coder dial %s: %v (HTTP status %d)", url, err, status)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return coderClient{c}
}

func (k coderClient) sendText(s string) error {
	ctx, cancel := context.WithTimeout(context.Background(), frameTimeout)
	defer cancel()
	return k.c.Write(ctx, cws.MessageText, []byte(s))
}
func (k coderClient) sendBinary(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), frameTimeout)
	defer cancel()
	return k.c.Write(ctx, cws.MessageBinary, b)
}
func (k coderClient) recv(timeout time.Duration) ([]byte, bool, error) {
	// coder closes the connection when a read's context expires, which is
	// what a failed test wants anyway.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := k.c.Read(ctx)
	return b, typ == cws.MessageBinary, err
}
func (k coderClient) closeCode(err error) int { return int(cws.CloseStatus(err)) }
func (k coderClient) close()                  { _ = k.c.Close(cws.StatusNormalClosure, "") }

// recvText reads one text message or fails the test.
func recvText(t testing.TB, c wsClient, what string) []byte {
	t.Helper()
	b, binary, err := c.recv(frameTimeout)
	if err != nil {
		t.Fatalf("expected %s: %v", what, err)
	}
	if binary {
		t.Fatalf("expected %s, got a binary message %q", what, clip(b))
	}
	return b
}

// expectDelivery reads one delivery and checks topic, seq and data (verbatim).
func expectDelivery(t testing.TB, c wsClient, topic string, seq uint64, data []byte) {
	t.Helper()
	what := fmt.Sprintf("delivery %s #%d", topic, seq)
	e, err := parseEnvelope(recvText(t, c, what))
	if err != nil {
		t.Fatalf("expected %s: %v", what, err)
	}
	if e.Topic != topic || e.Seq != seq || !bytes.Equal(e.Data, data) {
		t.Fatalf("expected %s with data %s, got topic %q seq %d data %s", what, data, e.Topic, e.Seq, clip(e.Data))
	}
}

// expectReply reads an ack or error reply.
func expectReply(t testing.TB, c wsClient, what string) reply {
	t.Helper()
	b := recvText(t, c, what)
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("expected %s, got non-JSON %q", what, clip(b))
	}
	return r
}

func expectAck(t testing.TB, c wsClient, kind string, topics ...string) {
	t.Helper()
	r := expectReply(t, c, kind+" ack")
	if r.Type != kind || strings.Join(r.Topics, ",") != strings.Join(topics, ",") {
		t.Fatalf("expected {\"type\":%q,\"topics\":%q}, got %+v", kind, topics, r)
	}
}

// TestClientsLibraries runs the wire contract against each in-process client library.
func TestClientsLibraries(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.MaxTopicsPerConn = 8 })
	base := "ws://" + n.WSAddr() + "/ws"
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			p := lib.name + "." // topics of this library's subtests
			t.Run("subscribe by URL", func(t *testing.T) {
				c := lib.dial(t, base+"?topics="+p+"a,"+p+"b")
				// The subscription is in effect before the 101: publish at once.
				if r := publishHTTP(t, n, p+"a", []byte(`{"x": [1, 2.5, "z"]}`)); r.Subscribers != 1 || r.Seq != 1 {
					t.Fatalf("publish %sa: got %+v, want seq 1, subscribers 1", p, r)
				}
				expectDelivery(t, c, p+"a", 1, []byte(`{"x": [1, 2.5, "z"]}`))
				publishHTTP(t, n, p+"b", []byte(`"text \u00e9 \"q\""`))
				expectDelivery(t, c, p+"b", 1, []byte(`"text \u00e9 \"q\""`))
				publishHTTP(t, n, p+"a", []byte(`null`))
				expectDelivery(t, c, p+"a", 2, []byte(`null`))
				c.close()
			})
			t.Run("subscribe in-band and unsubscribe", func(t *testing.T) {
				c := lib.dial(t, base+"?topics="+p+"marker")
				if err := c.sendText(`{"op":"subscribe","topics":["` + p + `c"]}`); err != nil {
					t.Fatal(err)
				}
				expectAck(t, c, "subscribed", p+"c")
				publishHTTP(t, n, p+"c", []byte(`42`))
				expectDelivery(t, c, p+"c", 1, []byte(`42`))
				if err := c.sendText(`{"op":"unsubscribe","topics":["` + p + `c"]}`); err != nil {
					t.Fatal(err)
				}
				expectAck(t, c, "unsubscribed", p+"c")
				if r := publishHTTP(t, n, p+"c", []byte(`43`)); r.Subscribers != 0 {
					t.Fatalf("publish after unsubscribe ack: %d subscribers, want 0", r.Subscribers)
				}
				publishHTTP(t, n, p+"marker", []byte(`true`))
				expectDelivery(t, c, p+"marker", 1, []byte(`true`)) // and not p+"c" #2
				c.close()
			})
			t.Run("invalid ops keep the connection open", func(t *testing.T) {
				c := lib.dial(t, base)
				tooMany := make([]string, 9)
				for i := range tooMany {
					tooMany[i] = fmt.Sprintf("%q", fmt.Sprintf("%smany%d", p, i))
				}
				for _, bad := range []struct{ msg, code string }{
					{`{"op":`, wire.CodeBadJSON},
					{`not json at all`, wire.CodeBadJSON},
					{`{"op":"dance","topics":["x"]}`, wire.CodeUnknownOp},
					{`{"op":"subscribe","topics":["bad topic!"]}`, wire.CodeInvalidTopic},
					{`{"op":"subscribe","topics":["` + strings.Repeat("t", 129) + `"]}`, wire.CodeInvalidTopic},
					{`{"op":"subscribe","topics":[]}`, wire.CodeMissingTopics},
					{`{"op":"subscribe","topics":[` + strings.Join(tooMany, ",") + `]}`, wire.CodeTooManyTopics},
				} {
					if err := c.sendText(bad.msg); err != nil {
						t.Fatal(err)
					}
					r := expectReply(t, c, "error reply to "+clip([]byte(bad.msg)))
					if r.Type != "error" || r.Code != bad.code || r.Message == "" {
						t.Fatalf("sent %s: want {\"type\":\"error\",\"code\":%q,\"message\":...}, got %+v", clip([]byte(bad.msg)), bad.code, r)
					}
				}
				// Still open and working.
				if err := c.sendText(`{"op":"subscribe","topics":["` + p + `after"]}`); err != nil {
					t.Fatal(err)
				}
				expectAck(t, c, "subscribed", p+"after")
				publishHTTP(t, n, p+"after", []byte(`{}`))
				expectDelivery(t, c, p+"after", 1, []byte(`{}`))
				c.close()
			})
			t.Run("binary message gets close 1003", func(t *testing.T) {
				c := lib.dial(t, base)
				if err := c.sendBinary([]byte{1, 2, 3}); err != nil {
					t.Fatal(err)
				}
				_, _, err := c.recv(frameTimeout)
				if code := c.closeCode(err); code != 1003 {
					t.Fatalf("after a binary message: want close 1003, got %v (code %d)", err, code)
				}
			})
		})
	}
}

// clientData is the i-th published value: JSON of varied shapes, published
// and expected verbatim (inner whitespace and escapes included).
func clientData(i int) []byte {
	switch i % 6 {
	case 0:
		return fmt.Appendf(nil, `{"i": %d, "s": "h\u00e9llo \"quoted\" ☃ 🚀"}`, i)
	case 1:
		return fmt.Appendf(nil, `[%d, true, false, null, -1.5e3, {"nested": [[]]}]`, i)
	case 2:
		return fmt.Appendf(nil, `%d`, i)
	case 3:
		return fmt.Appendf(nil, `"message %d with \\ and \n escapes"`, i)
	case 4:
		return fmt.Appendf(nil, `{ "spaced" : %d ,"tab":	1 }`, i)
	}
	return fmt.Appendf(nil, `{"big":"%s","i":%d}`, strings.Repeat("x", 2000), i)
}

// TestClientsOrderedDelivery: 500 publishes reach every subscriber (three
// client implementations) exactly once, in order, seq contiguous from 1.
func TestClientsOrderedDelivery(t *testing.T) {
	const N = 500
	n := startNode(t, false, nil)
	url := "ws://" + n.WSAddr() + "/ws?topics=bulk"
	subs := map[string]wsClient{"gorilla": dialGorilla(t, url), "coder": dialCoder(t, url)}
	raw := dialWS(t, n.WSAddr(), "/ws?topics=bulk")

	var wg sync.WaitGroup
	errs := make(chan error, len(subs)+1)
	for name, c := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				b, _, err := c.recv(frameTimeout)
				if err == nil {
					err = checkBulk(b, i)
				}
				if err != nil {
					errs <- fmt.Errorf("%s subscriber, message %d of %d: %w", name, i+1, N, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range N {
			f, err := raw.readFrame(frameTimeout)
			if err == nil && (f.op != opText || !f.fin) {
				err = fmt.Errorf("want one final text frame per delivery, got %v", f)
			}
			if err == nil {
				err = checkBulk(f.payload, i)
			}
			if err != nil {
				errs <- fmt.Errorf("raw subscriber, message %d of %d: %w", i+1, N, err)
				return
			}
		}
	}()
	for i := range N {
		r := publishHTTP(t, n, "bulk", clientData(i))
		if r.Seq != uint64(i+1) || r.Subscribers != 3 || r.Topic != "bulk" {
			t.Fatalf("publish #%d: got %+v, want topic bulk, seq %d, 3 subscribers", i+1, r, i+1)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func checkBulk(msg []byte, i int) error {
	e, err := parseEnvelope(msg)
	if err != nil {
		return err
	}
	if e.Topic != "bulk" || e.Seq != uint64(i+1) {
		return fmt.Errorf("got topic %q seq %d, want bulk seq %d", e.Topic, e.Seq, i+1)
	}
	if !bytes.Equal(e.Data, clientData(i)) {
		return fmt.Errorf("seq %d: data %s, want verbatim %s", e.Seq, clip(e.Data), clip(clientData(i)))
	}
	return nil
}

// TestClientsManyConcurrent: 2,000 gorilla clients on one topic each receive
// 20 broadcasts, all in order.
func TestClientsManyConcurrent(t *testing.T) {
	const clients, broadcasts, dialers = 2000, 20, 8
	n := startNode(t, false, func(c *server.Config) { c.Limits.MaxConnsPerIP = 0 }) // all from 127.0.0.1
	url := "ws://" + n.WSAddr() + "/ws?topics=crowd"
	conns := make([]*websocket.Conn, clients)
	var dialErr atomic.Value
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
			for i := d; i < clients; i += dialers {
				c, _, err := dialer.Dial(url, nil)
				if err != nil {
					dialErr.CompareAndSwap(nil, fmt.Errorf("client %d: %w", i, err))
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dialing %d clients: %v", clients, err)
	}

	var failed atomic.Int32
	errs := make(chan error, 10)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for k := range broadcasts {
				_, b, err := c.ReadMessage()
				if err == nil {
					var e envelope
					if e, err = parseEnvelope(b); err == nil && (e.Seq != uint64(k+1) || string(e.Data) != fmt.Sprint(k)) {
						err = fmt.Errorf("got seq %d data %s, want seq %d data %d", e.Seq, e.Data, k+1, k)
					}
				}
				if err != nil {
					failed.Add(1)
					select {
					case errs <- fmt.Errorf("client %d, broadcast %d: %w", i, k+1, err):
					default:
					}
					return
				}
			}
		}()
	}
	for k := range broadcasts {
		if r := publishHTTP(t, n, "crowd", []byte(fmt.Sprint(k))); r.Subscribers != clients {
			t.Fatalf("broadcast %d: %d subscribers, want %d", k+1, r.Subscribers, clients)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d clients did not receive all %d broadcasts in order", f, clients, broadcasts)
	}
}

// ---------------------------------------------------------------------------
// External clients

// requireClient skips when an external client is not installed, unless
// FANWIRE_REQUIRE_CLIENTS=1 (set by `make test` after installing them).
func requireClient(t *testing.T, missing string) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv("FANWIRE_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("%s, and FANWIRE_REQUIRE_CLIENTS=1: run the test setup (make deps)", missing)
	}
	t.Skipf("%s; run the test setup (make deps) to install it (FANWIRE_REQUIRE_CLIENTS=1 makes this fatal)", missing)
}

const debianPython = "/usr/bin/python3" // Debian's, where python3-websockets installs

func pythonMissing() string {
	if err := exec.Command(debianPython, "-c", "import websockets").Run(); err != nil {
		return fmt.Sprintf("Python websockets is not available (%s -c 'import websockets': %v; apt-get install python3-websockets)", debianPython, err)
	}
	return ""
}

func nodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat(filepath.Join("testdata", "node_modules", "ws", "package.json")); err != nil {
		return "npm ws is not installed in server/testdata/node_modules (npm ci --prefix server/testdata)"
	}
	return ""
}

// script is a running external client that prints one JSON object per line.
type script struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan map[string]any
	stderr *bytes.Buffer
	name   string
}

func startScript(t *testing.T, name string, args ...string) *script {
	t.Helper()
	return startScriptStdin(t, name, nil, args...)
}

// startScriptStdin is startScript with the script's stdin read from stdin.
func startScriptStdin(t *testing.T, name string, stdin io.Reader, args ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = stdin
	s := &script{t: t, cmd: cmd, lines: make(chan map[string]any, 16), stderr: new(bytes.Buffer), name: name}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"event": "garbage", "line": sc.Text()}
			}
			s.lines <- m
		}
	}()
	t.Cleanup(func() { _ = cmd.Wait() })
	return s
}

// event waits for the next line with "event":want.
func (s *script) event(want string, timeout time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-s.lines:
			if !ok {
				_ = s.cmd.Wait()
				s.t.Fatalf("%s exited before %q (%v); stderr:\n%s", s.name, want, s.cmd.ProcessState, s.stderr)
			}
			if m["event"] == want {
				return m
			}
			s.t.Logf("%s: %v", s.name, m)
		case <-deadline:
			s.t.Fatalf("%s: no %q within %v; stderr:\n%s", s.name, want, timeout, s.stderr)
		}
	}
}

// checkSummary fails on any error the script listed and on a failed exit.
func (s *script) checkSummary(sum map[string]any) {
	s.t.Helper()
	if errs, _ := sum["errors"].([]any); len(errs) > 0 {
		for _, e := range errs {
			s.t.Errorf("%s: %v", s.name, e)
		}
	}
	if err := s.cmd.Wait(); err != nil {
		s.t.Errorf("%s exited with %v; stderr:\n%s", s.name, err, s.stderr)
	}
}

// runSubscribeScript drives a script in "subscribe" mode: URL topic plus an
// in-band topic, count messages on each, contiguous seq.
func runSubscribeScript(t *testing.T, name string, argv ...string) {
	runSubscribeScriptOn(t, startNode(t, false, nil), name, argv...)
}

// runSubscribeScriptOn is runSubscribeScript against node n; it returns the
// script's "ready" event.
func runSubscribeScriptOn(t *testing.T, n *server.Node, name string, argv ...string) map[string]any {
	const count = 200
	url := "ws://" + n.WSAddr() + "/ws?topics=ext.url"
	s := startScript(t, name, append(argv, "subscribe", url, "ext.inband", fmt.Sprint(count))...)
	ready := s.event("ready", 30*time.Second)
	for i := 1; i <= count; i++ {
		data := fmt.Appendf(nil, `{"n":%d,"s":"h\u00e9llo \"quoted\" \u2603 \ud83d\ude80"}`, i)
		for _, topic := range []string{"ext.url", "ext.inband"} {
			if r := publishHTTP(t, n, topic, data); r.Subscribers != 1 || r.Seq != uint64(i) {
				t.Fatalf("publish %s #%d: %+v, want 1 subscriber", topic, i, r)
			}
		}
	}
	sum := s.event("summary", 60*time.Second)
	got, _ := sum["received"].(map[string]any)
	for _, topic := range []string{"ext.url", "ext.inband"} {
		if got[topic] != float64(count) {
			t.Errorf("%s: received %v on %s, want seq up to %d", name, got[topic], topic, count)
		}
	}
	s.checkSummary(sum)
	return ready
}

// runEchoScript drives a script in "echo" mode against an echo node.
func runEchoScript(t *testing.T, name string, argv ...string) {
	n := startNode(t, true, nil)
	s := startScript(t, name, append(argv, "echo", "ws://"+n.WSAddr()+"/ws", fmt.Sprint(1<<20))...)
	sum := s.event("summary", 60*time.Second)
	for _, k := range []string{"text_ok", "binary_ok", "pong_ok"} {
		if sum[k] != true {
			t.Errorf("%s: %s = %v", name, k, sum[k])
		}
	}
	s.checkSummary(sum)
}

func TestClientsPythonWebsockets(t *testing.T) {
	requireClient(t, pythonMissing())
	py := []string{debianPython, filepath.Join("testdata", "pyclient.py")}
	t.Run("subscribe", func(t *testing.T) { runSubscribeScript(t, "pyclient.py", py...) })
	t.Run("echo 1 MiB and ping", func(t *testing.T) { runEchoScript(t, "pyclient.py", py...) })
}

func TestClientsNodeWS(t *testing.T) {
	requireClient(t, nodeMissing())
	js := []string{"node", filepath.Join("testdata", "wsclient.js")}
	t.Run("subscribe", func(t *testing.T) { runSubscribeScript(t, "wsclient.js", js...) })
	t.Run("echo 1 MiB and ping", func(t *testing.T) { runEchoScript(t, "wsclient.js", js...) })
}
