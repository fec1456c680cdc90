package server

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// --defer-accept sets TCP_DEFER_ACCEPT on every loop's listener (gnet opens
// one per loop, found by port), and connections still upgrade.
func TestDeferAcceptOnEveryListener(t *testing.T) {
	n := startRawNode(t, func(cfg *Config) { cfg.Loops, cfg.Accept.DeferAccept = 2, 3 })
	// gnet opens the second loop's listener after OnBoot; the first tick
	// (at most a second later) tunes it.
	deferred := func(fd int) bool {
		// The kernel stores it as SYN-ACK retransmits and reports it back in seconds, rounded up.
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		return err == nil && v >= 3
	}
	var fds []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fds = listeningFDs(n.wsPort())
		ok := len(fds) == 2
		for _, fd := range fds {
			ok = ok && deferred(fd)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners on port %d: %v, want 2 (one per loop), each with TCP_DEFER_ACCEPT >= 3", n.wsPort(), fds)
		}
	}
	for range 4 { // spread over both listeners
		rawUpgrade(t, n, "/ws?topics=a").Close()
	}
}

// TCP_NOTSENT_LOWAT is set once per listener, not per connection: accepted
// sockets inherit it, with one loop (tuned in OnBoot, before any accept) and
// with two (the second listener is tuned by the first tick, and OnOpen keeps
// setting it per connection until the tick after).
func TestNotSentLowatInheritedFromListener(t *testing.T) {
	for _, loops := range []int{1, 2} {
		cfg := DefaultConfig()
		cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", ""
		cfg.Loops = loops
		cfg.NotSentLowat = 48 << 10
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		lowat := func(fd int) int {
			v, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
			return v
		}
		if loops == 1 && !n.eng.lowatInherited.Load() {
			t.Errorf("1 loop: the listener was not tuned in OnBoot")
		}
		for deadline := time.Now().Add(10 * time.Second); !n.eng.lowatInherited.Load(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d loops: listeners never all carried TCP_NOTSENT_LOWAT", loops)
			}
		}
		fds := listeningFDs(n.wsPort())
		if len(fds) != loops {
			t.Fatalf("%d loops: %d listeners", loops, len(fds))
		}
		for _, fd := range fds {
			if v := lowat(fd); v != cfg.NotSentLowat {
				t.Errorf("%d loops: listener fd %d TCP_NOTSENT_LOWAT = %d, want %d", loops, fd, v, cfg.NotSentLowat)
			}
		}
		var clients []net.Conn
		for range 4 { // spread over the listeners
			clients = append(clients, rawUpgrade(t, n, "/ws?topics=a"))
		}
		accepted := acceptedFDs(n.wsPort())
		if len(accepted) != len(clients) {
			t.Fatalf("%d loops: %d accepted sockets on port %d, want %d", loops, len(accepted), n.wsPort(), len(clients))
		}
		for _, fd := range accepted {
			if v := lowat(fd); v != cfg.NotSentLowat {
				t.Errorf("%d loops: accepted fd %d TCP_NOTSENT_LOWAT = %d, want %d", loops, fd, v, cfg.NotSentLowat)
			}
		}
		for _, c := range clients {
			c.Close()
		}
		n.Shutdown(context.Background())
	}
}

// acceptedFDs lists this process's connected TCP sockets whose local port
// is port (the server's side of its connections).
func acceptedFDs(port int) []int {
	ents, _ := os.ReadDir("/proc/self/fd")
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 0 {
			continue
		}
		if sa, err := unix.Getsockname(fd); err == nil {
			if a, ok := sa.(*unix.SockaddrInet4); ok && a.Port == port {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}
