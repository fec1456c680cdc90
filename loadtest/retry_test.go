package loadtest

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A connection whose handshake fails is dialed again (--retries) and the
// run still holds every connection; without retries the failures stay.
func TestConnectRetriesFailedHandshakes(t *testing.T) {
	n := startNode(t)
	for _, retries := range []int{0, 3} {
		proxy := flakyProxy(t, n.WSAddr(), 20)
		cfg := DefaultConfig("connect")
		cfg.URL = "ws://" + proxy + "/ws?topics=retry-test"
		cfg.Conns = 60
		cfg.Rate = 5000
		cfg.Retries = retries
		cfg.Hold = 100 * time.Millisecond
		cfg.Workers = 1
		cfg.SourceIPs = "none"
		relaxTimeouts(&cfg)
		r, err := Run(context.Background(), cfg, io.Discard, true)
		if err != nil {
			t.Fatal(err)
		}
		c := r.Connections
		wantFailed, wantRetried, wantEst := int64(20), int64(0), int64(40)
		if retries > 0 {
			wantFailed, wantRetried, wantEst = 0, 20, 60
		}
		if c.Failed != wantFailed || c.Retried != wantRetried || c.Established != wantEst || c.Attempted != 80-wantFailed {
			t.Fatalf("retries=%d: %+v", retries, c)
		}
		if c.FailedBy["status_503"] != 20 {
			t.Fatalf("retries=%d: failed by %v", retries, c.FailedBy)
		}
		if r.OK != (retries > 0) {
			t.Fatalf("retries=%d: ok=%v problems=%v", retries, r.OK, r.Problems)
		}
	}
}

// flakyProxy answers the first `fail` connections with 503 and relays the
// rest to target.
func flakyProxy(t *testing.T, target string, fail int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) <= fail {
				go func() {
					defer c.Close()
					buf := make([]byte, 4096)
					_, _ = c.Read(buf)
					_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				}()
				continue
			}
			go relay(c, target)
		}
	}()
	return ln.Addr().String()
}

func relay(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(c, s)
}
