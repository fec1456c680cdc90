package loadtest

import (
	"golang.org/x/sys/unix"
)

// poller is a thin epoll wrapper owned by one event loop goroutine.
// Sockets are registered edge-triggered for both directions once, so the
// loop never has to re-arm interest with epoll_ctl while a connection lives.
type poller struct {
	epfd   int
	events []unix.EpollEvent
}

const pollEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

func newPoller(batch int) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{epfd: fd, events: make([]unix.EpollEvent, batch)}, nil
}

// add registers fd; slot comes back in every event so the loop can find
// the connection without a map lookup.
func (p *poller) add(fd int, slot int32) error {
	ev := unix.EpollEvent{Events: pollEvents, Fd: slot, Pad: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// wait blocks at most timeoutMs and returns the ready events.
func (p *poller) wait(timeoutMs int) ([]unix.EpollEvent, error) {
	n, err := unix.EpollWait(p.epfd, p.events, timeoutMs)
	if err != nil {
		if err == unix.EINTR {
			return nil, nil
		}
		return nil, err
	}
	return p.events[:n], nil
}

func (p *poller) close() error { return unix.Close(p.epfd) }
