package loadtest

import (
	"net"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
)

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFleetConnectsAndClosesCleanly(t *testing.T) {
	n := startNode(t)
	f, err := StartFleet(Plan{
		URL:     "ws://" + n.WSAddr() + "/ws?topics=fleet",
		Conns:   300,
		Rate:    20000,
		Loops:   2,
		Sources: []string{"127.0.0.2", "127.0.0.3"},
		// Generous bounds: a loaded machine must not fail a clean close.
		ConnectTimeout: 30 * time.Second,
		CloseTimeout:   30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ramp", 10*time.Second, f.RampDone)
	c := f.Counters()
	if c.Established != 300 || c.Open != 300 || c.Failed != 0 {
		t.Fatalf("after ramp: %+v", c)
	}
	if _, subs, err := n.Publish("fleet", []byte(`{"x":1}`)); err != nil || subs != 300 {
		t.Fatalf("publish: subs=%d err=%v", subs, err)
	}
	waitFor(t, "delivery", 5*time.Second, func() bool { return f.Counters().Messages == 300 })
	f.Stop()
	if err := f.Wait(); err != nil {
		t.Fatal(err)
	}
	c = f.Counters()
	if c.ClosedClean != 300 || c.Open != 0 || c.ClosedByServer != 0 {
		t.Fatalf("after stop: %+v", c)
	}
}

// A scripted server: the client must answer a ping with a masked pong of
// the same payload, and answer the server's close with its own close.
func TestFleetAnswersPingAndServerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() { got <- scriptedServer(ln) }()
	f, err := StartFleet(Plan{URL: "ws://" + ln.Addr().String() + "/ws", Conns: 1, Rate: 100, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if msg := <-got; msg != "ok" {
		t.Fatal(msg)
	}
	waitFor(t, "close", 10*time.Second, func() bool { return f.Counters().ClosedByServer == 1 })
	f.Stop()
	if err := f.Wait(); err != nil {
		t.Fatal(err)
	}
	if c := f.Counters(); c.Pings != 1 || c.ClosedBy["close_1001"] != 1 || c.Established != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// scriptedServer accepts one connection, upgrades it, pings, checks the
// pong, closes with 1001 and checks the client's close; "ok" or a problem.
func scriptedServer(ln net.Listener) string {
	nc, err := ln.Accept()
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	var in []byte
	buf := make([]byte, 4096)
	read := func() bool {
		n, err := nc.Read(buf)
		in = append(in, buf[:n]...)
		return err == nil
	}
	for {
		req, n, herr := codec.ParseRequest(in, 8192)
		if herr != nil {
			return "bad upgrade request: " + herr.Message
		}
		if n > 0 {
			if _, err := nc.Write(codec.AppendAcceptResponse(nil, req.Key)); err != nil {
				return err.Error()
			}
			in = in[n:]
			break
		}
		if !read() {
			return "no upgrade request"
		}
	}
	next := func(want codec.FrameKind) (codec.Frame, string) {
		var p codec.Parser
		cfg := codec.ParserConfig{}
		for {
			f, n, perr := p.Next(in, &cfg)
			if perr != nil {
				return f, "client frame: " + perr.Error()
			}
			if f.Kind != codec.NeedMore {
				f.Payload = append([]byte(nil), f.Payload...)
				in = in[n:]
				if f.Kind != want {
					return f, "unexpected frame kind"
				}
				return f, ""
			}
			if !read() {
				return f, "connection ended early"
			}
		}
	}
	if _, err := nc.Write(codec.AppendFrame(nil, codec.OpPing, []byte("abc"))); err != nil {
		return err.Error()
	}
	if f, msg := next(codec.Pong); msg != "" || string(f.Payload) != "abc" {
		return "pong: " + msg + " payload " + string(f.Payload)
	}
	if _, err := nc.Write(codec.AppendCloseFrame(nil, codec.CloseGoingAway, "bye")); err != nil {
		return err.Error()
	}
	if f, msg := next(codec.Close); msg != "" || f.CloseCode != codec.CloseGoingAway {
		return "close reply: " + msg
	}
	return "ok"
}
