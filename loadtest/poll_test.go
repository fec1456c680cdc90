package loadtest

import (
	"context"
	"io"
	"testing"
	"time"
)

// Idle long-polls (connect): every subscriber stays open across the
// server's empty answers at its poll timeout.
func TestConnectRunOverPoll(t *testing.T) {
	n := startNode(t)
	cfg := DefaultConfig("connect")
	cfg.URL = "ws://" + n.WSAddr() + "/ws?topics=idle.a,idle.b"
	cfg.Transport = TransportPoll
	cfg.Conns = 300
	cfg.Rate = 10000
	cfg.Hold = time.Second
	cfg.Workers = 1
	cfg.Loops = 2
	relaxTimeouts(&cfg)
	r, err := Run(context.Background(), cfg, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Connections; !r.OK || c.Established != 300 || c.ClosedClean != 300 {
		t.Fatalf("report: ok=%v problems=%v connections=%+v", r.OK, r.Problems, c)
	}
}

func TestPollRequestAndAnswer(t *testing.T) {
	got := string(appendPollRequest(nil, "h:1", "/ws?topics=a,b", []byte("since=a:3,b:0&epochs=a:E1")))
	if want := "GET /poll?topics=a,b&since=a:3,b:0&epochs=a:E1 HTTP/1.1\r\nHost: h:1\r\nAccept: application/json\r\n\r\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if got := string(appendPollRequest(nil, "h", "/ws", nil)); got != "GET /poll HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n" {
		t.Fatalf("%q", got)
	}
	cur := appendPollPositions(nil, "since=", []byte(`{"a":3,"b.c":10}`))
	cur = appendPollPositions(cur, "&epochs=", []byte(`{"a":"E 1"}`))
	if string(cur) != "since=a:3,b.c:10&epochs=a:E%201" {
		t.Fatalf("cursor %q", cur)
	}
	for in, want := range map[string]int{`{"a":"}","b":[1,{"c":"\"]"}]}x`: 29, `[1,2],`: 5, `"x\"y"z`: 6, `12,`: 2, `{"a":`: -1} {
		if got := jsonValueLen([]byte(in)); got != want {
			t.Errorf("jsonValueLen(%s) = %d, want %d", in, got, want)
		}
	}
	if contentLength([]byte("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n")) != 12 || contentLength([]byte("HTTP/1.1 200 OK\r\n")) != -1 {
		t.Fatal("contentLength")
	}
}
