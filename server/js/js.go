// Package js holds fanwire.js, the browser client, and its TypeScript
// declarations, embedded so that both listeners can serve them: the control
// listener (server/api) and the WebSocket listener (the gnet handshake).
package js

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"strconv"
)

// Source is fanwire.js.
//
//go:embed fanwire.js
var Source []byte

// Types is fanwire.d.ts.
//
//go:embed fanwire.d.ts
var Types []byte

// Served at these paths, with these headers.
const (
	Path         = "/fanwire.js"
	TypesPath    = "/fanwire.d.ts"
	ContentType  = "text/javascript; charset=utf-8"
	CacheControl = "public, max-age=300" // short: a node upgrade reaches browsers within minutes
)

// ETag is a strong validator of Source: a prefix of its SHA-256, quoted.
var ETag = etag(Source)

// TypesETag is Types' ETag.
var TypesETag = etag(Types)

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// Response is the complete HTTP/1.1 answer to GET /fanwire.js on a listener
// that speaks HTTP by hand (the gnet loop): status, headers, body, and
// Connection: close. Built once; HeaderLen is where the body starts (HEAD).
var Response, HeaderLen = buildResponse()

func buildResponse() ([]byte, int) {
	h := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: " + ContentType + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(Source)) + "\r\n" +
		"Cache-Control: " + CacheControl + "\r\n" +
		"ETag: " + ETag + "\r\n" +
		"Access-Control-Allow-Origin: *\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Connection: close\r\n\r\n"
	out := make([]byte, 0, len(h)+len(Source))
	out = append(out, h...)
	out = append(out, Source...)
	return out, len(h)
}
