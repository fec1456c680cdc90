package server

import (
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// AcceptConfig tunes the WebSocket listening sockets.
type AcceptConfig struct {
	// DeferAccept is TCP_DEFER_ACCEPT in seconds: the kernel hands a
	// connection to accept only once its first bytes (the upgrade request)
	// are in, so the loop accepts and reads it in one wakeup instead of two.
	// A client that connects and says nothing then stays in the kernel
	// (no conn, no 408) until that period is over. 0 = off (the default:
	// the measured gain was within the noise of a shared box, issue 17).
	DeferAccept int
}

// listenerTuner applies AcceptConfig and TCP_NOTSENT_LOWAT to gnet's
// listeners (accepted sockets inherit both from their listener). gnet opens one
// SO_REUSEPORT listener per loop and does not hand them out (Engine.Dup
// works for one listener only), so they are found among the process's file
// descriptors by their local port. OnBoot sees the first loop's listener;
// the first tick (gnet starts it after every loop exists) sees all of them.
type listenerTuner struct {
	mu   sync.Mutex
	done map[int]bool // fds tuned
}

// tune sets the options on every listener of port not tuned yet and says
// how many listeners carry notSentLowat (> 0) so far.
func (t *listenerTuner) tune(port int, cfg *AcceptConfig, notSentLowat int) (lowat int) {
	if port <= 0 || (cfg.DeferAccept <= 0 && notSentLowat <= 0) {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done == nil {
		t.done = make(map[int]bool)
	}
	for _, fd := range listeningFDs(port) {
		if t.done[fd] {
			continue
		}
		ok := true
		if cfg.DeferAccept > 0 {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, cfg.DeferAccept)
		}
		if notSentLowat > 0 {
			ok = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat) == nil
		}
		t.done[fd] = ok
	}
	for _, ok := range t.done {
		if ok && notSentLowat > 0 {
			lowat++
		}
	}
	return lowat
}

// listeningFDs lists this process's listening TCP sockets bound to port.
func listeningFDs(port int) []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			if a.Port == port {
				fds = append(fds, fd)
			}
		case *unix.SockaddrInet6:
			if a.Port == port {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}

// wsPort is the WebSocket listener's port (0 if unknown).
func (n *Node) wsPort() int {
	_, p, err := net.SplitHostPort(n.wsAddr)
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(p)
	return port
}
