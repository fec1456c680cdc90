package server

import (
	"net"
	"testing"
	"time"
)

// The rare per-connection state lives in per-loop maps keyed by the conn
// (sublist.go, slow.go, parser.go, limits.go): closing connections in every
// state that puts them there must leave those maps empty, or a node that
// lives for months would leak an entry per such connection.
func TestSideTablesEmptyAfterClose(t *testing.T) {
	n := startRawNode(t, func(cfg *Config) {
		cfg.Loops = 2
		cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0
	})
	// A masked text frame announcing 100 payload bytes, cut after 4: the
	// parser rests mid-frame and the input is incomplete.
	half := []byte{0x81, 0x80 | 100, 1, 2, 3, 4, 'a', 'b', 'c', 'd'}
	const clients = 40
	var conns []net.Conn
	for range clients {
		c := rawUpgrade(t, n, "/ws?topics=a,b,c")
		conns = append(conns, c)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	sizes := func() (moreSubs, parsers, partial, slow int) {
		for _, l := range n.eng.allLoops() {
			done := make(chan struct{})
			l.execute(runnable(func() {
				moreSubs += len(l.moreSubs)
				parsers += len(l.parsers)
				partial += len(l.partialSince)
				slow += len(l.slow)
				close(done)
			}))
			<-done
		}
		return
	}
	// Every client is subscribed to 3 topics and inside a frame.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, p, q, _ := sizes()
		if m == clients && p == clients && q == clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("side tables hold %d / %d / %d entries (more subs / parsers / partial), want %d each", m, p, q, clients)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, p, q, s := sizes()
		if m+p+q+s == 0 && n.Stats().Conns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every close: side tables hold %d / %d / %d / %d entries (more subs / parsers / partial / slow), want none", m, p, q, s)
		}
	}
}
