package loadtest

import (
	"testing"

	"github.com/fanwire/fanwire/codec"
	"golang.org/x/sys/unix"
)

func TestCentrifugoKinds(t *testing.T) {
	cases := map[string]int{
		`{}`:   cfKindPing,
		` {} `: cfKindPing,
		`{"push":{"channel":"a","pub":{"data":{"t":1},"offset":3}}}`:    cfKindPub,
		`{"push":{"channel":"a","join":{"info":{"client":"x"}}}}`:       cfKindIgnore,
		`{"push":{"channel":"a","unsubscribe":{"code":2500}}}`:          cfKindLeave,
		`{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}`:     cfKindLeave,
		`{"id":1,"connect":{"client":"c","version":"6.9.1","ping":25}}`: cfKindReply,
		`{"id":2,"subscribe":{"recoverable":true,"offset":0}}`:          cfKindReply,
		`{"id":2,"error":{"code":102,"message":"unknown channel"}}`:     cfKindError,
		``:  cfOther,
		`x`: cfOther,
	}
	for msg, want := range cases {
		if got := centrifugoKind([]byte(msg)); got != want {
			t.Errorf("centrifugoKind(%s) = %d, want %d", msg, got, want)
		}
	}
}

func TestCentrifugoPubOffset(t *testing.T) {
	off, sent, ok := centrifugoPub([]byte(`{"push":{"channel":"fo.1","pub":{"data":{"t":1700000000000000000,"pad":"xxxx"},"offset":42}}}`))
	if !ok || off != 42 || sent != 1700000000000000000 {
		t.Fatalf("got offset %d sent %d ok %v", off, sent, ok)
	}
	// History off: no offset, the send time still counts.
	_, sent, ok = centrifugoPub([]byte(`{"push":{"channel":"c","pub":{"data":{"t":5}}}}`))
	if ok || sent != 5 {
		t.Fatalf("without offset: sent %d ok %v", sent, ok)
	}
}

func TestCentrifugoCommands(t *testing.T) {
	got := string(appendCentrifugoCommands(nil, queryValue("/connection/websocket?topics=fo.3,x&token=abc", "topics"), ""))
	want := `{"id":1,"connect":{"name":"fanwire-load"}}` + "\n" + `{"id":2,"subscribe":{"channel":"fo.3"}}`
	if got != want {
		t.Fatalf("commands\n%s\nwant\n%s", got, want)
	}
	if v := queryValue("/x?a=1&token=abc", "token"); v != "abc" {
		t.Fatalf("token %q", v)
	}
	if got := string(appendCentrifugoCommands(nil, "c", "T")); got != `{"id":1,"connect":{"name":"fanwire-load","token":"T"}}`+"\n"+`{"id":2,"subscribe":{"channel":"c"}}` {
		t.Fatalf("with token: %s", got)
	}
}

// A frame with several pushes and a ping, parsed by a loop's data path:
// every publication counted, offsets contiguous, the ping answered.
func TestCentrifugoBatchedFrame(t *testing.T) {
	l, peer := oracleLoop(t)
	l.plan.Dialect = DialectCentrifugo
	slot := int32(0)
	frame := `{"push":{"channel":"c","pub":{"data":{"t":1},"offset":1}}}` + "\n" +
		`{"push":{"channel":"c","pub":{"data":{"t":1},"offset":2}}}` + "\n" +
		`{}` + "\n" +
		`{"push":{"channel":"c","pub":{"data":{"t":1},"offset":4}}}`
	if _, alive := l.frames(slot, codec.AppendFrame(nil, codec.OpText, []byte(frame)), 2); !alive {
		t.Fatal("connection closed")
	}
	var pong [64]byte
	// A masked text frame with {}: 2 header bytes, 4 mask bytes, 2 payload bytes.
	if n, _ := unix.Read(peer, pong[:]); n != 8 || pong[0] != 0x81 {
		t.Fatalf("ping answer %x", pong[:max(n, 0)])
	}
	c := l.stats.counters()
	if c.Messages != 3 || c.Gaps != 1 || c.Pings != 1 {
		t.Fatalf("messages %d gaps %d pings %d, want 3 1 1", c.Messages, c.Gaps, c.Pings)
	}
	if l.conns[slot].lastSeq != 4 {
		t.Fatalf("lastSeq %d", l.conns[slot].lastSeq)
	}
}

// The subscribe reply, not the 101, opens a connection.
func TestCentrifugoSubscribeReplyOpens(t *testing.T) {
	l, _ := oracleLoop(t)
	l.plan.Dialect = DialectCentrifugo
	c := &l.conns[0]
	c.state, c.proto = stHandshake, cfSubscribing
	l.inflight, l.openLocal = 1, 0
	l.stats.open.Add(-1)
	f := codec.Frame{Kind: codec.DataChunk, First: true, Fin: true,
		Payload: []byte(`{"id":1,"connect":{"client":"x","ping":25,"pong":true}}` + "\n" + `{"id":2,"subscribe":{"recoverable":true}}`)}
	if !l.onCentrifugoData(0, &f, 2) {
		t.Fatal("closed")
	}
	if c.state != stOpen || l.inflight != 0 || l.openLocal != 1 {
		t.Fatalf("state %d inflight %d openLocal %d", c.state, l.inflight, l.openLocal)
	}
}

// oracleLoop is a loop with one open slot on one end of a socketpair (so
// the ping answer has somewhere to go) and the seq oracle on.
func oracleLoop(t *testing.T) (l *loop, peer int) {
	t.Helper()
	plan := Plan{URL: "ws://127.0.0.1:1/ws", Conns: 1, Rate: 1, TrackSeq: true}
	plan.withDefaults()
	l, err := newLoop(0, &plan, &target{}, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.p.close(); unix.Close(fds[0]); unix.Close(fds[1]) })
	slot := l.allocSlot()
	l.conns[slot].state, l.conns[slot].fd = stOpen, int32(fds[0])
	l.live, l.openLocal = 1, 1
	l.stats.open.Add(1)
	return l, fds[1]
}
