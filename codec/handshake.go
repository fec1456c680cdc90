package codec

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// Request is an HTTP/1.1 upgrade request. All slices point into the input
// given to ParseRequest (zero copy).
type Request struct {
	Method, Path, Query []byte // Path without the query; Query raw (after '?')
	Host, Key, Version  []byte
	Origin, Protocol    []byte // Protocol: the first Sec-WebSocket-Protocol header, raw
	Authorization       []byte // the first Authorization header, raw
	LastEventID         []byte // Last-Event-ID (an EventSource resuming a stream), raw
	ContentLength       []byte // the first Content-Length header, raw (POST /publish, /presence)
	TransferEncoding    bool   // a Transfer-Encoding header is present (a body we do not take)
	Upgrade             bool   // "Upgrade" lists the token "websocket"
	ConnectionUpgrade   bool   // "Connection" lists the token "upgrade"
	// Deflate is the permessage-deflate offer of the Sec-WebSocket-Extensions
	// headers (all of them, in order); see extensions.go.
	Deflate DeflateOffer
}

// HTTPError is a failed handshake: the status to answer with and why. The
// answer's body is JSON {"error":Code,"message":Message}; an empty Code is
// derived from the status (see ErrorCode).
type HTTPError struct {
	Status  int
	Message string
	Code    string
}

func (e *HTTPError) Error() string {
	return "websocket handshake: " + strconv.Itoa(e.Status) + " " + e.Message
}

const defaultMaxRequest = 8 << 10

// Handshake failures returned by ParseRequest and Request.Check.
var (
	ErrHeaderTooLarge   = &HTTPError{Status: 431, Message: "request header block too large"}
	ErrMalformedRequest = &HTTPError{Status: 400, Message: "malformed HTTP request"}
	ErrDuplicateHeader  = &HTTPError{Status: 400, Message: "duplicate Host or Sec-WebSocket-Key header"}
	ErrMethod           = &HTTPError{Status: 405, Message: "method not allowed: a WebSocket upgrade must be a GET"}
	ErrNotUpgrade       = &HTTPError{Status: 426, Message: "upgrade required: need \"Upgrade: websocket\" and \"Connection: Upgrade\""}
	ErrVersion          = &HTTPError{Status: 426, Message: "unsupported Sec-WebSocket-Version: need 13"}
	ErrBadKey           = &HTTPError{Status: 400, Message: "Sec-WebSocket-Key must be the base64 encoding of 16 bytes"}
	ErrNoHost           = &HTTPError{Status: 400, Message: "missing Host header"}
)

// ParseRequest parses the request line and header block at the start of in.
// n == 0 && err == nil means the header block is incomplete: call again with
// more bytes. len(in) >= maxSize without a complete header block, or a
// header block longer than maxSize, is 431. Malformed input is 400 (also a
// bare LF or an obsolete line folding). n is the number of bytes of the
// header block including the blank line. maxSize <= 0 means 8 KiB.
func ParseRequest(in []byte, maxSize int) (req Request, n int, err *HTTPError) {
	if maxSize <= 0 {
		maxSize = defaultMaxRequest
	}
	end, bad := headerEnd(in)
	switch {
	case bad:
		return Request{}, 0, ErrMalformedRequest
	case end == 0 && len(in) >= maxSize, end > maxSize:
		return Request{}, 0, ErrHeaderTooLarge
	case end == 0:
		return Request{}, 0, nil
	}
	block := in[:end]
	line, rest := cutLine(block)
	if !parseRequestLine(&req, line) {
		return Request{}, 0, ErrMalformedRequest
	}
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return Request{}, 0, ErrMalformedRequest
		}
		if err := req.setHeader(name, value); err != nil {
			return Request{}, 0, err
		}
	}
	return req, end, nil
}

func (r *Request) setHeader(name, value []byte) *HTTPError {
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			if r.Host != nil {
				return ErrDuplicateHeader
			}
			r.Host = value
		}
	case 6:
		if equalFold(name, "origin") && r.Origin == nil {
			r.Origin = value
		}
	case 7:
		if equalFold(name, "upgrade") && hasToken(value, "websocket") {
			r.Upgrade = true
		}
	case 10:
		if equalFold(name, "connection") && hasToken(value, "upgrade") {
			r.ConnectionUpgrade = true
		}
	case 13:
		switch {
		case equalFold(name, "authorization") && r.Authorization == nil:
			r.Authorization = value
		case equalFold(name, "last-event-id") && r.LastEventID == nil:
			r.LastEventID = value
		}
	case 14:
		if equalFold(name, "content-length") && r.ContentLength == nil {
			r.ContentLength = value
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			r.TransferEncoding = true
		}
		if equalFold(name, "sec-websocket-key") {
			if r.Key != nil {
				return ErrDuplicateHeader
			}
			r.Key = value
		}
	case 21:
		if equalFold(name, "sec-websocket-version") && r.Version == nil {
			r.Version = value
		}
	case 22:
		if equalFold(name, "sec-websocket-protocol") && r.Protocol == nil {
			r.Protocol = value
		}
	case 24:
		if equalFold(name, "sec-websocket-extensions") {
			r.Deflate.addExtensions(value)
		}
	}
	return nil
}

// Check validates the upgrade semantics, in this order: method GET (405),
// Upgrade and Connection tokens (426), Sec-WebSocket-Version 13 (426), key is
// the base64 of 16 bytes (400), Host present (400).
func (r *Request) Check() *HTTPError {
	switch {
	case string(r.Method) != "GET":
		return ErrMethod
	case !r.Upgrade || !r.ConnectionUpgrade:
		return ErrNotUpgrade
	case string(r.Version) != "13":
		return ErrVersion
	case !validKey(r.Key):
		return ErrBadKey
	case len(r.Host) == 0:
		return ErrNoHost
	}
	return nil
}

func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], key)
	return err == nil && n == 16
}

// parseRequestLine reads "METHOD SP target SP HTTP/1.1".
func parseRequestLine(r *Request, line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return false
	}
	r.Method = line[:sp]
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return false
	}
	target := line[:sp]
	for _, c := range target {
		if c <= ' ' || c == 0x7F {
			return false
		}
	}
	if target[0] != '/' {
		// absolute-form (RFC 7230 5.3.2): keep only the path and query.
		i := bytes.Index(target, []byte("://"))
		if i <= 0 || !validScheme(target[:i]) {
			return false
		}
		j := bytes.IndexByte(target[i+3:], '/')
		if j < 0 {
			return false
		}
		target = target[i+3+j:]
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		r.Path, r.Query = target[:q], target[q+1:]
	} else {
		r.Path = target
	}
	return true
}

func validScheme(s []byte) bool {
	return equalFold(s, "http") || equalFold(s, "https") || equalFold(s, "ws") || equalFold(s, "wss")
}

// AppendAcceptResponse appends the 101 response for a request with key.
func AppendAcceptResponse(dst []byte, key []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = appendAccept(dst, key)
	return append(dst, "\r\n\r\n"...)
}

// AppendAcceptDeflateResponse is AppendAcceptResponse accepting the
// permessage-deflate offer o.
func AppendAcceptDeflateResponse(dst []byte, key []byte, o DeflateOffer) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = appendAccept(dst, key)
	dst = append(dst, "\r\n"...)
	dst = AppendDeflateResponse(dst, o)
	return append(dst, "\r\n"...)
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// appendAccept appends base64(SHA-1(key + GUID)) without allocating.
func appendAccept(dst []byte, key []byte) []byte {
	var buf [128]byte
	var sum [sha1.Size]byte
	if len(key)+len(acceptGUID) <= len(buf) {
		n := copy(buf[:], key)
		n += copy(buf[n:], acceptGUID)
		sum = sha1.Sum(buf[:n])
	} else {
		h := sha1.New()
		h.Write(key)
		h.Write([]byte(acceptGUID))
		h.Sum(sum[:0])
	}
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendHTTPError appends a complete error response that closes the
// connection, with the JSON body {"error":code,"message":text}.
func AppendHTTPError(dst []byte, e *HTTPError) []byte {
	code := e.Code
	if code == "" {
		code = ErrorCode(e.Status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(e.Status)...)
	dst = append(dst, "\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: "...)
	n := len(`{"error":,"message":}`+"\n") + jsonStringLen(code) + jsonStringLen(e.Message)
	dst = strconv.AppendInt(dst, int64(n), 10)
	switch e.Status {
	case 401:
		dst = append(dst, "\r\nWWW-Authenticate: Bearer"...)
	case 405:
		dst = append(dst, "\r\nAllow: GET"...)
	case 426:
		dst = append(dst, "\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, `{"error":`...)
	dst = appendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.Message)
	return append(dst, "}\n"...)
}

// ErrorCode is the JSON error code of a handshake status without its own.
func ErrorCode(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 401:
		return "invalid_token"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 405:
		return "method_not_allowed"
	case 408:
		return "timeout"
	case 426:
		return "upgrade_required"
	case 429:
		return "too_many_requests"
	case 431:
		return "header_too_large"
	case 503:
		return "unavailable"
	}
	return "error"
}

// jsonStringLen is the length appendJSONString will add.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

// appendJSONString appends s as a JSON string, escaping what JSON requires.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func statusText(status int) string {
	switch status {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}
