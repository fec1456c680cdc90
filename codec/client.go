package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// Client-side handshake helpers, for the load generator and tests.

// maxResponseHeader bounds how long CheckAcceptResponse waits for the end of
// the header block.
const maxResponseHeader = 16 << 10

// Errors returned by CheckAcceptResponse.
var (
	ErrResponseTooLarge   = errors.New("websocket handshake: response header block too large")
	ErrMalformedResponse  = errors.New("websocket handshake: malformed HTTP response")
	ErrResponseStatus     = errors.New("websocket handshake: status is not 101 Switching Protocols")
	ErrResponseNotUpgrade = errors.New("websocket handshake: response lacks Upgrade: websocket / Connection: Upgrade")
	ErrResponseAccept     = errors.New("websocket handshake: wrong Sec-WebSocket-Accept")
	ErrResponseExtensions = errors.New("websocket handshake: server chose an extension we did not offer")
)

// NewKey returns a Sec-WebSocket-Key: the base64 encoding of rnd, which
// should be 16 random bytes.
func NewKey(rnd []byte) []byte {
	return base64.StdEncoding.AppendEncode(nil, rnd)
}

// AppendUpgradeRequest appends a client upgrade request for pathAndQuery
// (e.g. "/ws?topics=a,b") on host (e.g. "127.0.0.1:8080").
func AppendUpgradeRequest(dst []byte, host, pathAndQuery string, key []byte) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, pathAndQuery...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	return append(dst, "\r\nSec-WebSocket-Version: 13\r\n\r\n"...)
}

// CheckAcceptResponse checks the server's answer to an upgrade request sent
// with key. n == 0 && err == nil means the header block is incomplete. n is
// the length of the header block; frames may follow it in resp. status is
// the HTTP status once the status line is known (a non-101 status is an error).
func CheckAcceptResponse(resp []byte, key []byte) (n int, status int, err error) {
	end, bad := headerEnd(resp)
	switch {
	case bad:
		return 0, 0, ErrMalformedResponse
	case end == 0 && len(resp) >= maxResponseHeader:
		return 0, 0, ErrResponseTooLarge
	case end == 0:
		return 0, 0, nil
	}
	line, rest := cutLine(resp[:end])
	// "HTTP/1.1 101 Switching Protocols": the reason phrase is free text.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, 0, ErrMalformedResponse
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, ErrMalformedResponse
		}
		status = status*10 + int(c-'0')
	}
	if status != 101 {
		return end, status, ErrResponseStatus
	}
	var upgrade, connection, accepted bool
	var want [28]byte
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return 0, status, ErrMalformedResponse
		}
		switch {
		case equalFold(name, "upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case equalFold(name, "connection"):
			connection = connection || hasToken(value, "upgrade")
		case equalFold(name, "sec-websocket-accept"):
			if !bytes.Equal(value, appendAccept(want[:0], key)) {
				return 0, status, ErrResponseAccept
			}
			accepted = true
		case equalFold(name, "sec-websocket-extensions"):
			return 0, status, ErrResponseExtensions
		}
	}
	switch {
	case !upgrade || !connection:
		return 0, status, ErrResponseNotUpgrade
	case !accepted:
		return 0, status, ErrResponseAccept
	}
	return end, status, nil
}
