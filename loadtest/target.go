package loadtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"golang.org/x/sys/unix"
)

// target is a resolved WebSocket endpoint.
type target struct {
	host string // Host header value, "host:port"
	addr unix.SockaddrInet4
	path string // path and query for the upgrade request
}

// parseTarget resolves a ws:// URL to an IPv4 socket address.
func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad url %q: %w", raw, err)
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("url %q: only ws:// is supported", raw)
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = "80"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("url %q: bad port", raw)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	t := &target{host: net.JoinHostPort(host, portStr), path: u.RequestURI()}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			copy(t.addr.Addr[:], v4)
			t.addr.Port = port
			return t, nil
		}
	}
	return nil, fmt.Errorf("url %q: no IPv4 address", raw)
}
