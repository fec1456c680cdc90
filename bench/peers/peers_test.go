// Package peers_test checks that every peer speaks fanwire's wire contract:
// a gorilla client subscribes by URL and in-band, 100 publishes arrive in
// order with contiguous seq and the data verbatim.
package peers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fanwire/fanwire/bench"
)

var peerNames = []string{"gorillahub", "nbiohub", "coderhub"}

func TestPeersSpeakTheWireContract(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./gorillahub", "./nbiohub", "./coderhub")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build peers: %v\n%s", err, out)
	}
	for _, name := range peerNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := bench.Start(context.Background(), bench.Server{Name: name, Path: filepath.Join(bin, name)}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if !p.Stop(5 * time.Second) {
					t.Errorf("%s did not exit on SIGTERM", name)
				}
			}()
			checkContract(t, p)
		})
	}
}

// TestUWSHubSpeaksTheWireContract builds the uWebSockets peer from its
// sources (UWS_SRC, the local mirrors or a git clone; skipped without) and
// checks both of its shapes.
func TestUWSHubSpeaksTheWireContract(t *testing.T) {
	bin, err := bench.BuildUWS(context.Background(), bench.UWSBuild{Script: "uwshub/build.sh"})
	if errors.Is(err, bench.ErrNoUWSSources) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--publish-thread=false"}} {
		t.Run(strings.Join(append([]string{"uwshub"}, args...), " "), func(t *testing.T) {
			p, err := bench.Start(context.Background(), bench.Server{Name: "uwshub", Path: bin, Args: args}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if !p.Stop(5 * time.Second) {
					t.Errorf("uwshub did not exit on SIGTERM")
				}
			}()
			checkContract(t, p)
			checkControlErrors(t, p)
		})
	}
}

// checkControlErrors: a batch publish and the API's error answers.
func checkControlErrors(t *testing.T, p *bench.Process) {
	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+p.HTTPAddr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/publish", "{\"topic\":\"x\",\"data\":1}\n\n{\"topic\":\"x\",\"data\":[2]}\n"); code != 200 ||
		body != `{"published":2,"results":[{"topic":"x","seq":1,"subscribers":0},{"topic":"x","seq":2,"subscribers":0}]}`+"\n" {
		t.Errorf("batch: %d %s", code, body)
	}
	for _, c := range []struct{ path, body, code string }{
		{"/publish/a", "{", "bad_json"},
		{"/publish/a", " ", "empty_body"},
		{"/publish/a%20b", "1", "invalid_topic"},
		{"/publish", `{"data":1}`, "missing_topic"},
		{"/publish", `{"topic":"a"}`, "missing_data"},
	} {
		code, body := post(c.path, c.body)
		if code/100 != 4 || !strings.Contains(body, `"error":"`+c.code+`"`) {
			t.Errorf("POST %s %.20q: %d %s, want %s", c.path, c.body, code, body, c.code)
		}
	}
	// Over the 1 MiB cap: refused from the header, before the body is read.
	c, err := net.Dial("tcp", p.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<20+1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized publish: %v %v", resp, err)
	}
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+p.WSAddr+"/ws?topics=a/b", nil); err == nil {
		t.Error("invalid URL topic accepted")
	}
}

type delivery struct {
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq"`
	Data  json.RawMessage `json:"data"`
}

func checkContract(t *testing.T, p *bench.Process) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.WSAddr+"/ws?topics=a,b", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))

	// Subscribed before the 101: the first publish must arrive.
	const n = 100
	for i := 1; i <= n; i++ {
		if got := publish(t, p, "a", fmt.Sprintf(`{"i":%d}`, i)); got.Seq != uint64(i) || got.Subscribers != 1 {
			t.Fatalf("publish %d answered %+v, want seq %d and 1 subscriber", i, got, i)
		}
	}
	for i := 1; i <= n; i++ {
		var d delivery
		readJSON(t, ws, &d)
		if d.Topic != "a" || d.Seq != uint64(i) || string(d.Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("delivery %d = %+v", i, d)
		}
	}

	// In-band subscribe is acknowledged before deliveries of the new topic.
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","topics":["c"]}`)); err != nil {
		t.Fatal(err)
	}
	_, ack, err := ws.ReadMessage()
	if err != nil || string(ack) != `{"type":"subscribed","topics":["c"]}` {
		t.Fatalf("ack %q, %v", ack, err)
	}
	publish(t, p, "c", `"x"`)
	var d delivery
	readJSON(t, ws, &d)
	if d.Topic != "c" || d.Seq != 1 || string(d.Data) != `"x"` {
		t.Fatalf("delivery on c = %+v", d)
	}

	// A bad op gets an error and the connection stays.
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"dance"}`))
	_, msg, err := ws.ReadMessage()
	if err != nil || !bytes.Contains(msg, []byte(`"code":"unknown_op"`)) {
		t.Fatalf("error reply %q, %v", msg, err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"unsubscribe","topics":["a"]}`))
	if _, msg, err = ws.ReadMessage(); err != nil || string(msg) != `{"type":"unsubscribed","topics":["a"]}` {
		t.Fatalf("unsubscribe ack %q, %v", msg, err)
	}
	if got := publish(t, p, "a", `1`); got.Seq != n+1 || got.Subscribers != 0 {
		t.Fatalf("publish after unsubscribe answered %+v", got)
	}

	// Other paths are 404.
	resp, err := http.Get("http://" + p.WSAddr + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nope: %d, want 404", resp.StatusCode)
	}
}

type publishResult struct {
	Topic       string `json:"topic"`
	Seq         uint64 `json:"seq"`
	Subscribers int    `json:"subscribers"`
}

func publish(t *testing.T, p *bench.Process, topic, body string) publishResult {
	t.Helper()
	resp, err := http.Post("http://"+p.HTTPAddr+"/publish/"+topic, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	var r publishResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("publish answer %q: %v", b, err)
	}
	return r
}

func readJSON(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(msg, v); err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
}
