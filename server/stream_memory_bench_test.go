package server

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// BenchmarkIdleStreamMemory is BenchmarkIdleConnMemory per transport: the
// node's Go heap per idle connection subscribed to one topic, for a
// WebSocket next to an SSE stream and a held long-poll, in one run.
// Run: go test -run '^$' -bench IdleStreamMemory -benchtime 1x ./server/
func BenchmarkIdleStreamMemory(b *testing.B) {
	for _, tc := range []struct {
		name, req, ok string
	}{
		{"websocket", "GET /ws?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 101"},
		{"sse", "GET /sse?topics=prices.BTC-USD HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200"},
		{"poll", "GET /poll?topics=prices.BTC-USD&since=prices.BTC-USD:0 HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	} {
		b.Run(tc.name, func(b *testing.B) { benchIdleMemory(b, []byte(tc.req), tc.ok) })
	}
}

func benchIdleMemory(b *testing.B, req []byte, ok string) {
	const conns = 5000
	n := startRawNode(b, func(cfg *Config) {
		cfg.Streams.PollTimeout = time.Hour
		cfg.Limits.MaxConnsPerIP, cfg.Limits.ConnRate = 0, 0 // 5,000 connections from 127.0.0.1 at once
	})
	var answered func([]byte) error // a held poll answers nothing
	if ok != "" {
		answered = func(resp []byte) error {
			if !bytes.HasPrefix(resp, []byte(ok)) {
				return errors.New("want " + ok)
			}
			return nil
		}
	}
	idleHeapPerConn(b, n, conns, func(int) []byte { return req }, answered)
}
