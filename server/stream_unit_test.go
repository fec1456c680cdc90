package server

import (
	"strings"
	"testing"
)

// recordConn is a gnet.Conn that keeps what is written to it.
type recordConn struct {
	fakeConn
	out strings.Builder
}

func (r *recordConn) Write(b []byte) (int, error) { r.out.Write(b); return len(b), nil }
func (r *recordConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		r.out.Write(b)
		n += len(b)
	}
	return n, nil
}

// A bus delivery that jumps past a gap reaches an SSE stream as
// "event: reset" whose id leaves the topic just before the new seq, then
// the delivery itself (not skipped as already seen); in one drain pass and
// in two.
func TestSSEGapReset(t *testing.T) {
	for _, batched := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Epoch = "E"
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := newLoop(n, nil)
		r := &recordConn{}
		c := &conn{gc: r, loop: l, phase: phaseOpen, kind: kindSSE}
		l.addConn(c)
		l.subscribe(c, "feed.g", resume{}, false)
		if _, err := n.hub.deliver("feed.g", 1, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if !batched {
			l.drain()
		}
		if _, err := n.hub.deliver("feed.g", 5, []byte("5")); err != nil {
			t.Fatal(err)
		}
		l.drain()
		want := "id: feed.g=1@E\ndata: {\"topic\":\"feed.g\",\"seq\":1,\"data\":1}\n\n" +
			"event: reset\nid: feed.g=4@E\ndata: {\"type\":\"reset\",\"topic\":\"feed.g\",\"from\":5,\"epoch\":\"E\"}\n\n" +
			"id: feed.g=5@E\ndata: {\"topic\":\"feed.g\",\"seq\":5,\"data\":5}\n\n"
		if got := r.out.String(); got != want {
			t.Fatalf("batched=%v:\n got %q\nwant %q", batched, got, want)
		}
	}
}
