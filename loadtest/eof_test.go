package loadtest

import (
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
	"golang.org/x/sys/unix"
)

// When a server dies (kill -9 of a worker) its last frames and its FIN can
// arrive together: one edge-triggered event, one short read that takes the
// data. The EOF must still be seen, or the connection stays "open" for ever
// and everything published afterwards counts as lost (the `make chaos`
// failure: 1-4% of deliveries missing, no gap, no reset).
func TestReadSeesEOFThatCameWithData(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	plan := &Plan{Conns: 1, Rate: 1, Loops: 1, Resume: true}
	plan.withDefaults()
	l, err := newLoop(0, plan, &target{}, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.p.close()
	l.conns = []conn{{fd: int32(fds[0]), state: stOpen}}
	l.live, l.openLocal = 1, 1
	l.stats.open.Add(1)

	payload := []byte(`{"topic":"a","seq":1,"data":{}}`)
	frame := append(codec.AppendHeader(nil, codec.OpText, true, len(payload)), payload...)
	if _, err := unix.Write(fds[1], frame); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(fds[1], unix.SHUT_WR); err != nil { // the FIN, behind the data
		t.Fatal(err)
	}
	l.handle(unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: 0, Pad: int32(fds[0])}, time.Now().UnixNano())

	c := l.stats.counters()
	if c.Messages != 1 || l.conns[0].state != stFree || c.ClosedBy["eof"] != 1 || len(l.redials) != 1 {
		t.Fatalf("after data+FIN in one event: messages %d, state %d, closed by %v, redials %d; want the message, the EOF and a reconnect",
			c.Messages, l.conns[0].state, c.ClosedBy, len(l.redials))
	}
}
