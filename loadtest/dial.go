package loadtest

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ipBindAddressNoPort defers the source port choice to connect(), so the
// kernel only needs the full 4-tuple to be unique (more ports per source IP).
const ipBindAddressNoPort = 24

// dialNonBlocking opens a non-blocking TCP socket, binds it to src when src
// is valid, and starts connecting to dst. The connection completes later
// (EPOLLOUT); a nil error means "in progress or done".
func dialNonBlocking(src netip.Addr, dst *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if src.IsValid() {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, ipBindAddressNoPort, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	err = unix.Connect(fd, dst)
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// socketError reads the pending error of a socket (connect result).
func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// Failure causes reported per connection attempt.
const (
	CauseRefused   = "refused"
	CauseTimeout   = "timeout"
	CauseReset     = "reset"
	CauseAddr      = "addr_unavailable"
	CauseFiles     = "too_many_files"
	CauseProtocol  = "protocol"
	CauseOther     = "other"
	causeStatusPfx = "status_"
)

// causeOf maps a socket error to a failure cause.
func causeOf(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return CauseOther
	}
	switch errno {
	case unix.ECONNREFUSED:
		return CauseRefused
	case unix.ETIMEDOUT:
		return CauseTimeout
	case unix.ECONNRESET, unix.EPIPE, unix.ECONNABORTED:
		return CauseReset
	case unix.EADDRNOTAVAIL, unix.EADDRINUSE:
		return CauseAddr
	case unix.EMFILE, unix.ENFILE:
		return CauseFiles
	}
	return CauseOther
}
