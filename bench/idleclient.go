package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/loadtest"
	"golang.org/x/sys/unix"
)

// IdleClients holds upgraded WebSocket connections that do nothing. They are
// raw blocking sockets, not net.Conns: no goroutine, no epoll registration
// and no Go buffers per connection in the harness, so the harness adds as
// little as possible to the kernel memory being measured.
type IdleClients struct {
	mu  sync.Mutex
	fds []int
}

// IdleConfig says where and how to connect.
type IdleConfig struct {
	Addr      string // server "127.0.0.1:PORT"
	Path      string // e.g. "/ws?topics=idle"
	SourceIPs int    // spread over 127.0.0.2 .. 127.0.0.(1+SourceIPs) to stay clear of port limits
	Workers   int    // concurrent dialers
	RcvBuf    int    // SO_RCVBUF before connect, 0 = kernel default (slow consumers: small, so the server's buffers fill)
	Dialect   string // Server.Dialect: after the upgrade, subscribe in the server's protocol (centrifugo.go)
	Transport string // "" (WebSocket), "sse" or "poll": idle streams instead (transports.go)
}

// Len is the number of open connections.
func (c *IdleClients) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fds)
}

// Open adds n upgraded connections. On error the ones opened so far stay.
func (c *IdleClients) Open(ctx context.Context, cfg IdleConfig, n int) error {
	dst, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !dst.Addr().Is4() {
		return fmt.Errorf("bench: idle clients need an IPv4 address, got %q", cfg.Addr)
	}
	workers := max(cfg.Workers, 1)
	ips := max(cfg.SourceIPs, 1)
	req := upgradeRequest(cfg.Addr, dialectPath(cfg.Dialect, cfg.Path))
	if cfg.Transport != "" {
		req = streamRequest(cfg.Addr, cfg.Path, cfg.Transport)
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				src := [4]byte{127, 0, 0, byte(2 + i%ips)}
				fd, err := dialUpgrade(src, dst, req, cfg.RcvBuf, cfg.Transport)
				if err == nil && cfg.Dialect == loadtest.DialectCentrifugo {
					if err = centrifugoSubscribe(fd, cfg.Path); err != nil {
						_ = syscall.Close(fd)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				c.mu.Lock()
				c.fds = append(c.fds, fd)
				c.mu.Unlock()
			}
		})
	}
	base := c.Len()
	var firstErr error
feed:
	for i := range n {
		select {
		case next <- base + i:
		case firstErr = <-errs:
			break feed
		case <-ctx.Done():
			firstErr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	return firstErr
}

// Alive counts connections the server has not closed: a non-blocking peek
// sees EAGAIN on an open idle socket and 0 bytes (EOF) or an error on a
// closed one.
func (c *IdleClients) Alive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	alive := 0
	var b [1]byte
	for _, fd := range c.fds {
		n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || n > 0 { // n > 0: a ping or other frame waiting, still open
			alive++
		}
	}
	return alive
}

// Close resets every connection (SO_LINGER 0), so no TIME_WAIT sockets are
// left to disturb the next server's kernel-memory baseline.
func (c *IdleClients) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fd := range c.fds {
		_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		_ = syscall.Close(fd)
	}
	c.fds = nil
}

// ipBindAddressNoPort (IP_BIND_ADDRESS_NO_PORT) lets connect pick the source
// port per 4-tuple, so each source IP gets the whole ephemeral range.
const ipBindAddressNoPort = 24

// dialUpgrade connects from src, sends the upgrade request and checks the
// 101 and its Sec-WebSocket-Accept. The socket stays blocking with 5 s
// send/receive timeouts. With a transport (sse, poll) the request opens an
// idle stream instead: an SSE head is checked, a held long-poll has none.
func dialUpgrade(src [4]byte, dst netip.AddrPort, req []byte, rcvBuf int, transport string) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("bench: socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		_ = syscall.Close(fd)
		return -1, fmt.Errorf("bench: %s %v: %w", what, src, err)
	}
	tv := syscall.Timeval{Sec: 5}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptInt(fd, syscall.SOL_IP, ipBindAddressNoPort, 1)
	if rcvBuf > 0 {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: src}); err != nil {
		return fail("bind", err)
	}
	err = syscall.Connect(fd, &syscall.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())})
	if err == syscall.EINTR {
		err = waitConnected(fd)
	}
	if err != nil {
		return fail("connect", err)
	}
	if err := writeAll(fd, req); err != nil {
		return fail("write", err)
	}
	if transport == transportPoll {
		return fd, nil
	}
	var buf [1024]byte
	got := 0
	for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
		if got == len(buf) {
			return fail("read", fmt.Errorf("response header too long"))
		}
		n, err := syscall.Read(fd, buf[got:])
		if err == syscall.EINTR { // Go's preemption signals interrupt blocking syscalls
			continue
		}
		if err != nil {
			return fail("read", err)
		}
		if n == 0 {
			return fail("read", fmt.Errorf("closed during handshake"))
		}
		got += n
	}
	check := checkAccept
	if transport != "" {
		check = checkStreamResponse
	}
	if err := check(buf[:got]); err != nil {
		return fail("handshake", err)
	}
	return fd, nil
}

// idleKey is a fixed Sec-WebSocket-Key: every connection is identical, so
// the server's work per connection is too.
var idleKey = []byte("dGhlIHNhbXBsZSBub25jZQ==")

func upgradeRequest(host, path string) []byte {
	return codec.AppendUpgradeRequest(nil, host, path, idleKey)
}

// checkAccept validates a 101 response header block.
func checkAccept(resp []byte) error {
	n, status, err := codec.CheckAcceptResponse(resp, idleKey)
	switch {
	case err != nil:
		return fmt.Errorf("status %d: %w", status, err)
	case n == 0:
		return fmt.Errorf("incomplete response")
	}
	return nil
}

// writeAll writes b on a blocking socket, retrying after signals.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// waitConnected finishes a connect that a signal interrupted: the
// connection goes on in the background; poll until it is writable.
func waitConnected(fd int) error {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return syscall.ETIMEDOUT
		}
		soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			return err
		}
		if soErr != 0 {
			return syscall.Errno(soErr)
		}
		return nil
	}
}

// Established counts connections in TCP state ESTABLISHED. Unlike Alive it
// is right for sockets that never read: a server's close behind unread
// data moves the socket to CLOSE_WAIT (or CLOSE after a reset).
func (c *IdleClients) Established() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, fd := range c.fds {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil && info.State == tcpEstablished {
			n++
		}
	}
	return n
}

const tcpEstablished = 1
