package codec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const browserRequest = "GET /ws?topics=scores.football,prices.BTC-USD HTTP/1.1\r\n" +
	"Host: 127.0.0.1:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: http://127.0.0.1:8081\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"\r\n"

func TestParseBrowserRequest(t *testing.T) {
	in := []byte(browserRequest + "\x81\x85") // a frame may follow the request
	req, n, err := ParseRequest(in, 8192)
	if err != nil || n != len(browserRequest) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	checks := map[string][]byte{
		"GET": req.Method, "/ws": req.Path, "topics=scores.football,prices.BTC-USD": req.Query,
		"127.0.0.1:8080": req.Host, "dGhlIHNhbXBsZSBub25jZQ==": req.Key, "13": req.Version,
		"http://127.0.0.1:8081": req.Origin,
	}
	for want, got := range checks {
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if !req.Upgrade || !req.ConnectionUpgrade || req.Protocol != nil {
		t.Errorf("flags: %+v", req)
	}
	if err := req.Check(); err != nil {
		t.Fatal(err)
	}
	// Zero copy: the fields point into the input.
	if &req.Key[0] != &in[strings.Index(browserRequest, "dGhl")] {
		t.Error("Key is not a slice of the input")
	}
	// Every strict prefix is incomplete.
	for i := range len(browserRequest) {
		if _, n, err := ParseRequest(in[:i], 8192); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	// RFC 6455 section 1.3 example key.
	resp := AppendAcceptResponse(nil, req.Key)
	if !bytes.Contains(resp, []byte("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")) {
		t.Fatalf("accept response:\n%s", resp)
	}
}

const okRequest = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

var requestCases = []struct {
	name string
	in   string
	max  int
	want int // 0: parses and checks fine; -1: incomplete
}{
	{"ok", okRequest + "\r\n", 0, 0},
	{"lower-case names, odd spacing", "GET /ws HTTP/1.1\r\nhost:h\r\nupgrade:   WebSocket  \r\nCONNECTION: keep-alive, Upgrade\r\nsec-websocket-key:\tdGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n", 0, 0},
	{"connection in two headers", "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 0},
	{"absolute form", strings.Replace(okRequest, "GET /ws", "GET http://h/ws", 1) + "\r\n", 0, 0},
	{"absolute form, bad scheme", strings.Replace(okRequest, "GET /ws", "GET 0://h/ws", 1) + "\r\n", 0, 400},
	{"incomplete", okRequest, 0, -1},
	{"incomplete at limit", okRequest, len(okRequest), 431},
	{"complete but over limit", okRequest + "\r\n", len(okRequest), 431},
	{"bare LF", "GET /ws HTTP/1.1\nHost: h\n\n", 0, 400},
	{"bare LF in incomplete block", "GET /ws HTTP/1.1\r\nHost: h\n", 0, 400},
	{"obs-fold", "GET /ws HTTP/1.1\r\nHost: h\r\n  folded\r\n\r\n", 0, 400},
	{"space before colon", "GET /ws HTTP/1.1\r\nHost : h\r\n\r\n", 0, 400},
	{"no colon", "GET /ws HTTP/1.1\r\nHost h\r\n\r\n", 0, 400},
	{"control char in value", "GET /ws HTTP/1.1\r\nHost: h\x00\r\n\r\n", 0, 400},
	{"bare CR in value", "GET /ws HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 0, 400},
	{"request line two parts", "GET /ws\r\n\r\n", 0, 400},
	{"request line double space", "GET  /ws HTTP/1.1\r\n\r\n", 0, 400},
	{"HTTP/1.0", "GET /ws HTTP/1.0\r\n\r\n", 0, 400},
	{"bad target", "GET ws HTTP/1.1\r\n\r\n", 0, 400},
	{"empty request line", "\r\n\r\n", 0, 400},
	{"duplicate host", strings.Replace(okRequest, "Host: h\r\n", "Host: h\r\nHost: i\r\n", 1) + "\r\n", 0, 400},
	{"duplicate key", okRequest + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, 400},
	{"POST", strings.Replace(okRequest, "GET", "POST", 1) + "\r\n", 0, 405},
	{"no upgrade", strings.Replace(okRequest, "Upgrade: websocket\r\n", "", 1) + "\r\n", 0, 426},
	{"upgrade h2c", strings.Replace(okRequest, "Upgrade: websocket", "Upgrade: h2c", 1) + "\r\n", 0, 426},
	{"no connection", strings.Replace(okRequest, "Connection: Upgrade\r\n", "", 1) + "\r\n", 0, 426},
	{"connection keep-alive only", strings.Replace(okRequest, "Connection: Upgrade", "Connection: keep-alive", 1) + "\r\n", 0, 426},
	{"version 8", strings.Replace(okRequest, "Version: 13", "Version: 8", 1) + "\r\n", 0, 426},
	{"no version", strings.Replace(okRequest, "Sec-WebSocket-Version: 13\r\n", "", 1) + "\r\n", 0, 426},
	{"no key", strings.Replace(okRequest, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1) + "\r\n", 0, 400},
	{"short key", strings.Replace(okRequest, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", 1) + "\r\n", 0, 400},
	{"key not base64", strings.Replace(okRequest, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZ!=", 1) + "\r\n", 0, 400},
	{"no host", strings.Replace(okRequest, "Host: h\r\n", "", 1) + "\r\n", 0, 400},
	{"method checked first", "POST /ws HTTP/1.1\r\n\r\n", 0, 405},
	{"upgrade checked before version", "GET /ws HTTP/1.1\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 426},
	{"version checked before key", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 0, 426},
	{"key checked before host", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 400},
}

func TestParseRequestErrors(t *testing.T) {
	cases := requestCases
	for _, c := range cases {
		max := c.max
		if max == 0 {
			max = 8192
		}
		req, n, err := ParseRequest([]byte(c.in), max)
		if err == nil && n > 0 {
			err = req.Check()
		}
		got := 0
		switch {
		case err != nil:
			got = err.Status
		case n == 0:
			got = -1
		}
		if got != c.want {
			t.Errorf("%s: got %d (%v), want %d", c.name, got, err, c.want)
		}
	}
}

// A request as net/http writes it parses.
func TestParseNetHTTPRequest(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://example.com:8080/ws?topics=a,b", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Protocol", "chat, superchat")
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	req, n, err := ParseRequest(buf.Bytes(), 8192)
	if err != nil || n != buf.Len() {
		t.Fatalf("n=%d err=%v\n%s", n, err, buf.Bytes())
	}
	if err := req.Check(); err != nil {
		t.Fatal(err)
	}
	if string(req.Host) != "example.com:8080" || string(req.Path) != "/ws" || string(req.Query) != "topics=a,b" || string(req.Protocol) != "chat, superchat" {
		t.Fatalf("%+v", req)
	}
}

func TestAppendHTTPError(t *testing.T) {
	for _, e := range []*HTTPError{ErrMethod, ErrVersion, ErrHeaderTooLarge, ErrBadKey, {Status: 404, Message: "not found"}, {Status: 401, Message: "bad \"token\"", Code: "invalid_token"}} {
		raw := AppendHTTPError(nil, e)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%d: %v\n%s", e.Status, err, raw)
		}
		body := new(bytes.Buffer)
		body.ReadFrom(resp.Body)
		if resp.StatusCode != e.Status || !resp.Close || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%d: %+v body %q", e.Status, resp, body)
		}
		var got struct{ Error, Message string }
		if err := json.Unmarshal(body.Bytes(), &got); err != nil || got.Message != e.Message || got.Error == "" || (e.Code != "" && got.Error != e.Code) {
			t.Errorf("%d: body %q: %v", e.Status, body, err)
		}
		if resp.ContentLength != int64(body.Len()) {
			t.Errorf("%d: Content-Length %d, body %d bytes", e.Status, resp.ContentLength, body.Len())
		}
		if (resp.Header.Get("Allow") == "GET") != (e.Status == 405) {
			t.Errorf("%d: Allow %q", e.Status, resp.Header.Get("Allow"))
		}
		if e.Status == 426 && (resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-WebSocket-Version") != "13") {
			t.Errorf("426 headers: %v", resp.Header)
		}
	}
}

// gorilla/websocket's Dialer accepts our 101 response, then frames flow both
// ways through our parser and encoder.
func TestGorillaDialerAgainstOurHandshake(t *testing.T) {
	clientConn, serverConn := net.Pipe()
	defer clientConn.Close()
	done := make(chan error, 1)
	go func() {
		done <- serveEchoOnce(serverConn)
	}()
	d := websocket.Dialer{
		NetDial:          func(string, string) (net.Conn, error) { return clientConn, nil },
		HandshakeTimeout: 5 * time.Second,
	}
	ws, resp, err := d.Dial("ws://fanwire.test/ws?topics=a", nil)
	if err != nil {
		t.Fatalf("dial: %v (resp %+v)", err, resp)
	}
	msg := "héllo, echo " + strings.Repeat("€", 100)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	typ, got, err := ws.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(got) != msg {
		t.Fatalf("echo: %v %d %q", err, typ, got)
	}
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4000 {
		t.Fatalf("close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// serveEchoOnce is a tiny blocking server built on the codec: handshake,
// echo messages, answer the close.
func serveEchoOnce(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 4096)
	var req Request
	for {
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return err
		}
		buf = buf[:len(buf)+n]
		r, used, herr := ParseRequest(buf, 4096)
		if herr != nil {
			return herr
		}
		if used > 0 {
			if herr := r.Check(); herr != nil {
				return herr
			}
			req = r
			buf = buf[used:]
			break
		}
	}
	if _, err := c.Write(AppendAcceptResponse(nil, req.Key)); err != nil {
		return err
	}
	var p Parser
	var msg []byte
	pending := append([]byte(nil), buf...)
	rd := make([]byte, 1024)
	for {
		for {
			f, n, perr := p.Next(pending, &ParserConfig{})
			if perr != nil {
				return perr
			}
			pending = pending[n:]
			switch f.Kind {
			case DataChunk:
				msg = append(msg, f.Payload...)
				if f.Fin {
					if _, err := c.Write(AppendFrame(nil, f.Op, msg)); err != nil {
						return err
					}
					msg = msg[:0]
				}
				continue
			case Close:
				_, err := c.Write(AppendCloseFrame(nil, f.CloseCode, string(f.CloseReason)))
				return err
			case Ping:
				c.Write(AppendFrame(nil, OpPong, f.Payload))
				continue
			}
			if n == 0 {
				break
			}
		}
		n, err := c.Read(rd)
		if err != nil {
			return err
		}
		pending = append(pending, rd[:n]...)
	}
}

// Our client handshake against gorilla's server-side Upgrader.
func TestClientHandshakeAgainstGorillaServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		typ, msg, err := ws.ReadMessage()
		if err == nil {
			ws.WriteMessage(typ, append([]byte("echo:"), msg...))
		}
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	key := NewKey([]byte("0123456789abcdef"))
	if _, err := c.Write(AppendUpgradeRequest(nil, srv.Listener.Addr().String(), "/ws?x=1", key)); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	rd := make([]byte, 512)
	var n int
	for n == 0 {
		m, err := c.Read(rd)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, rd[:m]...)
		var status int
		n, status, err = CheckAcceptResponse(buf, key)
		if err != nil {
			t.Fatalf("status %d: %v\n%s", status, err, buf)
		}
	}
	buf = buf[n:]
	if _, err := c.Write(AppendMaskedFrame(nil, OpText, true, []byte("ping?"), [4]byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	var p Parser
	for {
		f, used, perr := p.Next(buf, &ParserConfig{Client: true})
		if perr != nil {
			t.Fatal(perr)
		}
		if f.Kind == DataChunk {
			if string(f.Payload) != "echo:ping?" || !f.Fin {
				t.Fatalf("%+v", f)
			}
			return
		}
		buf = buf[used:]
		m, err := c.Read(rd)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, rd[:m]...)
	}
}

func TestCheckAcceptResponse(t *testing.T) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	good := AppendAcceptResponse(nil, key)
	if n, status, err := CheckAcceptResponse(good, key); err != nil || status != 101 || n != len(good) {
		t.Fatalf("n=%d status=%d err=%v", n, status, err)
	}
	for i := range len(good) {
		if n, _, err := CheckAcceptResponse(good[:i], key); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	if _, _, err := CheckAcceptResponse(good, []byte("x3JJHMbDL1EzLkh9GBhXDw==")); err != ErrResponseAccept {
		t.Fatalf("wrong key: %v", err)
	}
	if _, status, err := CheckAcceptResponse(AppendHTTPError(nil, ErrVersion), key); err != ErrResponseStatus || status != 426 {
		t.Fatalf("426: %d %v", status, err)
	}
	noUpgrade := bytes.Replace(good, []byte("Upgrade: websocket\r\n"), nil, 1)
	if _, _, err := CheckAcceptResponse(noUpgrade, key); err != ErrResponseNotUpgrade {
		t.Fatalf("no upgrade: %v", err)
	}
	ext := bytes.Replace(good, []byte("\r\n\r\n"), []byte("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"), 1)
	if _, _, err := CheckAcceptResponse(ext, key); err != ErrResponseExtensions {
		t.Fatalf("extensions: %v", err)
	}
	if got := string(NewKey([]byte("0123456789abcdef"))); got != "MDEyMzQ1Njc4OWFiY2RlZg==" || !validKey([]byte(got)) {
		t.Fatalf("NewKey: %s", got)
	}
}

func TestValidValue(t *testing.T) {
	for c := range 256 {
		want := c >= ' ' && c != 0x7F || c == '\t'
		for pos := range 20 {
			b := []byte(strings.Repeat("v", 20))
			b[pos] = byte(c)
			if validValue(b) != want {
				t.Fatalf("byte %#x at %d: got %v", c, pos, !want)
			}
		}
	}
}
