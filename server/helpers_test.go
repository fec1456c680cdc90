package server_test

// Shared helpers for the conformance and independent-client tests: an
// in-process node, a deliberately dumb raw WebSocket client that can send any
// bytes (valid or not), and publishing through the control API.
//
// The raw client builds its frames by hand instead of using package codec on
// purpose: a test that shares code with the implementation under test cannot
// catch that code's mistakes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fanwire/fanwire/server"
)

// Frame opcodes and header bits, spelled out here (not taken from codec).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA

	finBit  byte = 0x80
	rsv1Bit byte = 0x40
	rsv2Bit byte = 0x20
	rsv3Bit byte = 0x10
)

// Generous bounds: they only decide how fast a broken server fails a test.
const (
	frameTimeout = 5 * time.Second  // one ordinary frame
	bigTimeout   = 30 * time.Second // one multi-MiB message (slow under -race)
	closeTimeout = 5 * time.Second  // server must hang up within this after a close
)

// startNode runs an in-process node on free loopback ports and stops it when
// the test ends. edit may adjust the config (nil: defaults).
func startNode(t testing.TB, echo bool, edit func(*server.Config)) *server.Node {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Echo = echo
	if echo {
		// Autobahn's 9.* cases send 16 MiB messages. DefaultConfig's 64 KiB
		// is the pub/sub default; set the documented echo default explicitly.
		cfg.MaxMessage = 64 << 20
	}
	cfg.Loops = 2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if edit != nil {
		edit(&cfg)
	}
	n, err := server.NewNode(cfg)
	if err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return n
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ---------------------------------------------------------------------------
// Raw client

// rawConn is a blocking WebSocket client over a plain TCP socket. Every read
// has a deadline, so a server that hangs fails the test instead of hanging it.
type rawConn struct {
	t       testing.TB
	c       net.Conn
	br      *bufio.Reader
	writeEr error // first write error; reported if a later expectation fails
	// deflate: permessage-deflate was negotiated, so RSV1 may mark a data
	// message compressed (deflate_test.go); wasCompressed tells whether the
	// last message read was.
	deflate, wasCompressed bool
}

// dialTCP opens a plain TCP connection (no handshake).
func dialTCP(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

// dialWS opens a connection and completes the upgrade for pathQuery
// (e.g. "/ws?topics=a"), checking the 101 response strictly.
func dialWS(t testing.TB, addr, pathQuery string) *rawConn {
	t.Helper()
	rc := dialTCP(t, addr)
	key := newKey()
	rc.write([]byte(upgradeRequest(addr, pathQuery, key, nil)))
	resp := rc.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("upgrade %s: status %d (%q), want 101", pathQuery, resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		t.Fatalf("upgrade %s: Sec-WebSocket-Accept %q, want %q", pathQuery, got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("upgrade %s: Upgrade header %q, want websocket", pathQuery, resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		t.Fatalf("upgrade %s: Connection header %q, want upgrade", pathQuery, resp.Header.Get("Connection"))
	}
	return rc
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// upgradeRequest is a valid upgrade request; extra lines ("Name: value")
// are appended to the header block.
func upgradeRequest(addr, pathQuery, key string, extra []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", pathQuery, addr)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// readResponse reads one HTTP response head (and leaves the body readable).
func (rc *rawConn) readResponse() *http.Response {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(frameTimeout))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("reading HTTP response: %v%s", err, rc.writeNote())
	}
	return resp
}

// write sends b in one write. Write errors are remembered, not fatal: after a
// protocol violation the server may legitimately have hung up already.
func (rc *rawConn) write(b []byte) {
	_ = rc.c.SetWriteDeadline(time.Now().Add(bigTimeout))
	if _, err := rc.c.Write(b); err != nil && rc.writeEr == nil {
		rc.writeEr = err
	}
}

// send writes the frames in one write.
func (rc *rawConn) send(frames ...[]byte) { rc.write(bytes.Join(frames, nil)) }

// sendChopped writes b in pieces of chop bytes with a pause between them, so
// the server sees frame headers, payloads and code points split across reads.
func (rc *rawConn) sendChopped(b []byte, chop int, pause time.Duration) {
	for len(b) > 0 {
		k := min(chop, len(b))
		rc.write(b[:k])
		b = b[k:]
		if len(b) > 0 && pause > 0 {
			time.Sleep(pause)
		}
	}
}

// sendEach writes each frame in its own write with a pause in between.
func (rc *rawConn) sendEach(pause time.Duration, frames ...[]byte) {
	for i, f := range frames {
		if i > 0 {
			time.Sleep(pause)
		}
		rc.write(f)
	}
}

func (rc *rawConn) writeNote() string {
	if rc.writeEr != nil {
		return fmt.Sprintf(" (an earlier write failed: %v)", rc.writeEr)
	}
	return ""
}

// frame builds one masked client frame. b0 is the first header byte as sent
// (FIN, RSV bits, opcode), so invalid combinations are easy to make.
func frame(b0 byte, payload []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	return frameKey(b0, payload, key, true)
}

// frameKey builds a frame with the given mask key; masked=false sends the
// payload in the clear with the MASK bit unset (a violation from a client).
func frameKey(b0 byte, payload []byte, key [4]byte, masked bool) []byte {
	out := make([]byte, 0, 14+len(payload))
	out = append(out, b0)
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, m|byte(n))
	case n <= 0xFFFF:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	maskBytes(out[start:], key)
	return out
}

// maskBytes XORs b with the repeated key, 8 bytes at a time (multi-MiB
// payloads are slow byte by byte under the race detector).
func maskBytes(b []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// Shorthands for the common frames.
func textFrame(s string) []byte { return frame(finBit|opText, []byte(s)) }
func binFrame(b []byte) []byte  { return frame(finBit|opBinary, b) }
func pingFrame(p []byte) []byte { return frame(finBit|opPing, p) }
func pongFrame(p []byte) []byte { return frame(finBit|opPong, p) }
func closeFrame(code uint16, reason string) []byte {
	return frame(finBit|opClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// fragments splits payload into frames of size bytes: the first carries op,
// the rest are continuations, the last has FIN.
func fragments(op byte, payload []byte, size int) [][]byte {
	var out [][]byte
	for first := true; first || len(payload) > 0; first = false {
		k := min(size, len(payload))
		b0 := opCont
		if first {
			b0 = op
		}
		if k == len(payload) {
			b0 |= finBit
		}
		out = append(out, frame(b0, payload[:k]))
		payload = payload[k:]
	}
	return out
}

// wsFrame is one frame as received from the server.
type wsFrame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (f wsFrame) String() string {
	name := map[byte]string{opCont: "continuation", opText: "text", opBinary: "binary", opClose: "close", opPing: "ping", opPong: "pong"}[f.op]
	if name == "" {
		name = fmt.Sprintf("opcode 0x%X", f.op)
	}
	s := fmt.Sprintf("%s frame (fin=%v, %d bytes", name, f.fin, len(f.payload))
	if f.op == opClose && len(f.payload) >= 2 {
		s += fmt.Sprintf(", code %d, reason %q", binary.BigEndian.Uint16(f.payload), f.payload[2:])
	} else if len(f.payload) <= 40 {
		s += fmt.Sprintf(", %q", f.payload)
	}
	return s + ")"
}

// readFrame reads one server frame within timeout and checks what RFC 6455
// requires of a server frame (unmasked, no RSV bits, known opcode, control
// frames final and <= 125 bytes).
func (rc *rawConn) readFrame(timeout time.Duration) (wsFrame, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: h[0]&finBit != 0, rsv: h[0] & 0x70, op: h[0] & 0x0F}
	if h[1]&0x80 != 0 {
		return f, errors.New("server sent a masked frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<30 {
		return f, fmt.Errorf("server frame claims %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, f.payload); err != nil {
		return f, fmt.Errorf("reading %d-byte payload: %w", n, err)
	}
	switch {
	case f.rsv == rsv1Bit && rc.deflate && (f.op == opText || f.op == opBinary):
		// a compressed message (permessage-deflate)
	case f.rsv != 0:
		return f, fmt.Errorf("server set RSV bits 0x%X on %v", f.rsv, f)
	case f.op >= 3 && f.op <= 7 || f.op > 0xA:
		return f, fmt.Errorf("server used reserved opcode 0x%X", f.op)
	case f.op >= 8 && (!f.fin || n > 125):
		return f, fmt.Errorf("server sent invalid control frame: %v", f)
	case f.op == opClose && n == 1:
		return f, errors.New("server sent a 1-byte close payload")
	}
	return f, nil
}

// next reads one frame or fails the test, saying what was expected.
func (rc *rawConn) next(want string, timeout time.Duration) wsFrame {
	rc.t.Helper()
	f, err := rc.readFrame(timeout)
	if err != nil {
		rc.t.Fatalf("expected %s, %s%s", want, describeReadErr(err, timeout), rc.writeNote())
	}
	return f
}

func describeReadErr(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "but the server closed the TCP connection (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "but the server reset the TCP connection"
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("but nothing arrived within %v", timeout)
	}
	return "but: " + err.Error()
}

// expectMessage reads one whole data message (reassembling fragments; any
// control frame in between is a failure) and compares it exactly.
func (rc *rawConn) expectMessage(op byte, want []byte) {
	rc.t.Helper()
	rc.expectMessageWithin(op, want, frameTimeout)
}

func (rc *rawConn) expectMessageWithin(op byte, want []byte, timeout time.Duration) {
	rc.t.Helper()
	what := fmt.Sprintf("echo of a %d-byte %s message", len(want), opName(op))
	gotOp, got := rc.readMessage(what, timeout)
	if gotOp != op {
		rc.t.Fatalf("expected %s, got a %s message of %d bytes", what, opName(gotOp), len(got))
	}
	if !bytes.Equal(got, want) {
		rc.t.Fatalf("expected %s, got %d bytes that differ %s", what, len(got), firstDiff(got, want))
	}
}

// readMessage reassembles one data message.
func (rc *rawConn) readMessage(what string, timeout time.Duration) (byte, []byte) {
	rc.t.Helper()
	var msg []byte
	var op byte
	for first := true; ; first = false {
		f := rc.next(what, timeout)
		switch {
		case f.op >= 8:
			rc.t.Fatalf("expected %s, got %v", what, f)
		case first && f.op == opCont:
			rc.t.Fatalf("expected %s, got a continuation frame with no message started", what)
		case !first && f.op != opCont:
			rc.t.Fatalf("expected %s, got a new %v inside a fragmented message", what, f)
		}
		if first {
			op = f.op
			rc.wasCompressed = f.rsv == rsv1Bit
		}
		msg = append(msg, f.payload...)
		if f.fin {
			break
		}
	}
	if rc.wasCompressed {
		msg = inflateMessage(rc.t, msg)
	}
	if op == opText && !utf8.Valid(msg) {
		rc.t.Fatalf("expected %s, got a text message that is not valid UTF-8", what)
	}
	return op, msg
}

func opName(op byte) string {
	if op == opText {
		return "text"
	}
	return "binary"
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("from offset %d (got 0x%02X, want 0x%02X)", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("in length (got %d, want %d)", len(got), len(want))
}

// expectPong reads one frame that must be a pong with payload.
func (rc *rawConn) expectPong(payload []byte) {
	rc.t.Helper()
	f := rc.next(fmt.Sprintf("pong with %d-byte payload", len(payload)), frameTimeout)
	if f.op != opPong || !bytes.Equal(f.payload, payload) {
		rc.t.Fatalf("expected pong with payload %q, got %v", payload, f)
	}
}

// expectClose reads the server's close frame, checks its code is one of
// codes (none given: an empty close or 1000) and that the server then closes
// the TCP connection without sending anything more.
func (rc *rawConn) expectClose(codes ...uint16) {
	rc.t.Helper()
	rc.expectCloseFrame(codes...)
	rc.expectEOF("after its close frame")
}

// expectCloseFrame reads the next frame, which must be a close frame with
// one of codes (none given: an empty close or 1000).
func (rc *rawConn) expectCloseFrame(codes ...uint16) {
	rc.t.Helper()
	want := "close frame"
	if len(codes) > 0 {
		want = fmt.Sprintf("close frame with code %s", codeList(codes))
	}
	f := rc.next(want, frameTimeout)
	if f.op != opClose {
		rc.t.Fatalf("expected %s, got %v", want, f)
	}
	code := uint16(0) // none
	if len(f.payload) >= 2 {
		code = binary.BigEndian.Uint16(f.payload)
		if !utf8.Valid(f.payload[2:]) {
			rc.t.Fatalf("server close reason is not valid UTF-8: %q", f.payload[2:])
		}
	}
	if len(codes) == 0 {
		if code != 0 && code != 1000 {
			rc.t.Fatalf("expected an empty close or 1000, got %v", f)
		}
	} else if !containsCode(codes, code) {
		rc.t.Fatalf("expected %s, got %v", want, f)
	}
}

// expectFail is expectClose for a connection the server must fail: it must
// send close with one of codes and hang up.
func (rc *rawConn) expectFail(codes ...uint16) {
	rc.t.Helper()
	rc.expectClose(codes...)
}

// expectEOF checks the server closes the TCP connection within closeTimeout
// and sends no further frames. A reset also counts as closed.
func (rc *rawConn) expectEOF(context string) {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(closeTimeout))
	var buf [512]byte
	n, err := rc.br.Read(buf[:])
	var ne net.Error
	switch {
	case n > 0:
		rc.t.Fatalf("server sent %d more bytes %s (%q), want the TCP connection closed", n, context, buf[:min(n, 32)])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	case errors.As(err, &ne) && ne.Timeout():
		rc.t.Fatalf("server did not close the TCP connection within %v %s", closeTimeout, context)
	case err != nil:
		rc.t.Fatalf("waiting for the server to close the connection %s: %v", context, err)
	}
}

// closeNormally performs the client-initiated closing handshake.
func (rc *rawConn) closeNormally() {
	rc.t.Helper()
	rc.send(closeFrame(1000, ""))
	rc.expectClose(1000)
}

func codeList(codes []uint16) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, " or ")
}

func containsCode(codes []uint16, c uint16) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Control API

type publishResult struct {
	Topic       string `json:"topic"`
	Seq         uint64 `json:"seq"`
	Subscribers int    `json:"subscribers"`
}

// publishHTTP posts data to /publish/{topic} and returns the decoded reply.
func publishHTTP(t testing.TB, n *server.Node, topic string, data []byte) publishResult {
	t.Helper()
	resp, err := http.Post("http://"+n.HTTPAddr()+"/publish/"+topic, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST /publish/%s: %v", topic, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /publish/%s: status %d, body %q", topic, resp.StatusCode, body)
	}
	var r publishResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("POST /publish/%s: reply %q is not the documented JSON: %v", topic, body, err)
	}
	return r
}

// envelope is a delivery as documented: {"topic":..,"seq":..,"data":<verbatim>}.
type envelope struct {
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq"`
	Data  json.RawMessage `json:"data"`
}

// parseEnvelope decodes a delivery strictly (exactly these three fields).
func parseEnvelope(msg []byte) (envelope, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(msg, &raw); err != nil {
		return envelope{}, fmt.Errorf("delivery %q is not a JSON object: %w", clip(msg), err)
	}
	if len(raw) != 3 || raw["topic"] == nil || raw["seq"] == nil || raw["data"] == nil {
		return envelope{}, fmt.Errorf("delivery %q: want exactly the fields topic, seq, data", clip(msg))
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return envelope{}, fmt.Errorf("delivery %q: %w", clip(msg), err)
	}
	return e, nil
}

// reply is an ack or error from the server: {"type":..,"topics":..} or
// {"type":"error","code":..,"message":..}.
type reply struct {
	Type    string   `json:"type"`
	Topics  []string `json:"topics"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
