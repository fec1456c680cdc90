package server_test

// permessage-deflate (RFC 7692) over raw sockets: negotiation, compressed
// messages in and out, the violations Autobahn's 12.*/13.* do not send, and
// a zip bomb. Compression on the test side is the standard library's
// compress/flate, not the klauspost implementation the server uses.

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

const (
	offerDefault = "permessage-deflate; client_max_window_bits" // what Chromium offers
	wantAnswer   = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
)

var syncTail = []byte{0, 0, 0xff, 0xff}

// deflateMessage compresses p as a client without context takeover does.
func deflateMessage(p []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), syncTail)
}

// inflateMessage inflates a compressed message from the server.
func inflateMessage(t testing.TB, z []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(syncTail))))
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("server's compressed message does not inflate: %v", err)
	}
	return out
}

// dialDeflate upgrades with the given Sec-WebSocket-Extensions lines and
// returns the connection and the 101's extension answer ("" = declined).
func dialDeflate(t testing.TB, addr, pathQuery string, offers ...string) (*rawConn, string) {
	t.Helper()
	rc := dialTCP(t, addr)
	key := newKey()
	var extra []string
	for _, o := range offers {
		extra = append(extra, "Sec-WebSocket-Extensions: "+o)
	}
	rc.write([]byte(upgradeRequest(addr, pathQuery, key, extra)))
	resp := rc.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("upgrade with %q: status %d (%q), want 101", offers, resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	answer := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
	rc.deflate = answer != ""
	return rc, answer
}

func TestDeflateNegotiation(t *testing.T) {
	n := startNode(t, true, nil)
	cases := []struct {
		name   string
		offers []string
		want   string
	}{
		{"no offer", nil, ""},
		{"chromium", []string{offerDefault}, wantAnswer},
		{"gorilla", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, wantAnswer},
		{"python websockets", []string{"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"}, wantAnswer + "; server_max_window_bits=12"},
		{"window 8", []string{"permessage-deflate; server_max_window_bits=8"}, wantAnswer + "; server_max_window_bits=8"},
		{"quoted", []string{`permessage-deflate; server_max_window_bits="9"`}, wantAnswer + "; server_max_window_bits=9"},
		{"second offer", []string{"permessage-deflate; server_max_window_bits=16, permessage-deflate"}, wantAnswer},
		{"second header line", []string{"x-unknown", "permessage-deflate"}, wantAnswer},
		{"unknown parameter declined", []string{"permessage-deflate; foo=1"}, ""},
		{"duplicate parameter declined", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, ""},
		{"bad window declined", []string{"permessage-deflate; server_max_window_bits=7"}, ""},
		{"window without value declined", []string{"permessage-deflate; server_max_window_bits"}, ""},
		{"other extension only", []string{"x-webkit-deflate-frame"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, got := dialDeflate(t, n.WSAddr(), "/ws", c.offers...)
			if got != c.want {
				t.Fatalf("answer %q, want %q", got, c.want)
			}
			rc.send(textFrame("hi"))
			rc.expectMessage(opText, []byte("hi"))
			rc.closeNormally()
		})
	}
	t.Run("malformed header is 400", func(t *testing.T) {
		for _, h := range []string{"permessage-deflate;", `permessage-deflate; server_max_window_bits="9`, "permessage-deflate @"} {
			rc := dialTCP(t, n.WSAddr())
			rc.write([]byte(upgradeRequest(n.WSAddr(), "/ws", newKey(), []string{"Sec-WebSocket-Extensions: " + h})))
			rc.expectHTTPError([]int{400}, "")
		}
	})
	t.Run("compression off", func(t *testing.T) {
		off := startNode(t, true, func(c *server.Config) { c.Compression.Enabled = false })
		rc, got := dialDeflate(t, off.WSAddr(), "/ws", offerDefault)
		if got != "" {
			t.Fatalf("answer %q with compression off", got)
		}
		rc.send(frame(finBit|rsv1Bit|opText, deflateMessage([]byte("hi"))))
		rc.expectFail(protocolError...)
	})
	checkSurvived(t, n)
}

// TestDeflateConformance: compressed echoes and violations.
func TestDeflateConformance(t *testing.T) {
	const maxMessage = 1 << 20
	n := startNode(t, true, func(c *server.Config) { c.MaxMessage = maxMessage })
	text := bytes.Repeat([]byte("fanwire \u2603 compresses JSON {\"seq\":1} "), 100) // 3.6 KB
	bin := payloadOf(opBinary, 5000)
	cases := []struct {
		id, desc string
		offer    string
		run      func(rc *rawConn)
	}{
		{"12.X.1", "compressed text, reply compressed", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, deflateMessage(text)))
			rc.expectMessage(opText, text)
			if !rc.wasCompressed {
				t.Error("reply to a compressing client was not compressed")
			}
			rc.closeNormally()
		}},
		{"12.X.2", "compressed binary", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opBinary, deflateMessage(bin)))
			rc.expectMessage(opBinary, bin)
			rc.closeNormally()
		}},
		{"12.X.3", "fragmented compressed message, ping in between, 97-byte chops", offerDefault, func(rc *rawConn) {
			z := deflateMessage(text)
			a, b, c := z[:10], z[10:len(z)/2], z[len(z)/2:]
			msg := bytes.Join([][]byte{frame(rsv1Bit|opText, a), frame(opCont, b), pingFrame([]byte("p")), frame(finBit|opCont, c)}, nil)
			rc.sendChopped(msg, 97, time.Millisecond)
			rc.expectPong([]byte("p"))
			rc.expectMessage(opText, text)
			rc.closeNormally()
		}},
		{"12.X.4", "compressed then plain then compressed", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, deflateMessage([]byte("one"))), textFrame("two"), frame(finBit|rsv1Bit|opText, deflateMessage(text)))
			rc.expectMessage(opText, []byte("one"))
			if rc.wasCompressed {
				t.Error("a 3-byte reply was compressed (below --compress-min)")
			}
			rc.expectMessage(opText, []byte("two"))
			rc.expectMessage(opText, text)
			rc.closeNormally()
		}},
		{"12.X.5", "empty compressed message", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, []byte{0x00}), frame(finBit|rsv1Bit|opBinary, nil))
			rc.expectMessage(opText, []byte{})
			rc.expectMessage(opBinary, []byte{})
			rc.closeNormally()
		}},
		{"12.X.6", "window 9: large replies uncompressed, small ones compressed", "permessage-deflate; server_max_window_bits=9", func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, deflateMessage(text)), frame(finBit|rsv1Bit|opText, deflateMessage(text[:500])))
			rc.expectMessage(opText, text)
			if rc.wasCompressed {
				t.Error("a 3.6 KB reply was compressed with a window over 2^9")
			}
			rc.expectMessage(opText, text[:500])
			if !rc.wasCompressed {
				t.Error("a 500-byte reply was not compressed")
			}
			rc.closeNormally()
		}},
		{"12.X.7", "compressed ping", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opPing, nil))
			rc.expectFail(protocolError...)
		}},
		{"12.X.8", "compressed close", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opClose, []byte{0x03, 0xe8}))
			rc.expectFail(protocolError...)
		}},
		{"12.X.9", "RSV1 on a continuation frame", offerDefault, func(rc *rawConn) {
			z := deflateMessage(text)
			rc.send(frame(rsv1Bit|opText, z[:5]), frame(finBit|rsv1Bit|opCont, z[5:]))
			rc.expectFail(protocolError...)
		}},
		{"12.X.10", "RSV1 on a continuation of a plain message", offerDefault, func(rc *rawConn) {
			rc.send(frame(opText, []byte("ab")), frame(finBit|rsv1Bit|opCont, []byte("cd")))
			rc.expectFail(protocolError...)
		}},
		{"12.X.11", "RSV2 with deflate negotiated", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv2Bit|opText, []byte("x")))
			rc.expectFail(protocolError...)
		}},
		{"12.X.12", "RSV1 without negotiation", "", func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, deflateMessage([]byte("hi"))))
			rc.expectFail(protocolError...)
		}},
		{"12.X.13", "invalid UTF-8 inside compressed text", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, deflateMessage([]byte("ok \xce\xba then \xff"))))
			rc.expectFail(invalidData...)
		}},
		{"12.X.14", "data that does not inflate", offerDefault, func(rc *rawConn) {
			rc.send(frame(finBit|rsv1Bit|opText, []byte{0xff, 0xff, 0xff, 0xff, 0xff}))
			rc.expectFail(invalidData...)
		}},
		{"12.X.15", "zip bomb: 64 MiB of zeros in 80 KiB, limit 1 MiB", offerDefault, func(rc *rawConn) {
			bomb := deflateMessage(make([]byte, 64<<20))
			if len(bomb) > maxMessage/8 {
				t.Fatalf("bomb is %d bytes", len(bomb))
			}
			rc.send(frame(finBit|rsv1Bit|opBinary, bomb))
			rc.expectFail(tooBig...)
		}},
		{"12.X.16", "zip bomb in 100 fragments", offerDefault, func(rc *rawConn) {
			bomb := deflateMessage(make([]byte, 16<<20))
			fr := fragments(opBinary, bomb, len(bomb)/100+1)
			fr[0][0] |= rsv1Bit
			rc.send(fr...)
			rc.expectFail(tooBig...)
		}},
		{"12.X.17", "compressed message larger than the limit on the wire", offerDefault, func(rc *rawConn) {
			rc.send(frame(rsv1Bit|opBinary, make([]byte, maxMessage+maxMessage>>12+65)))
			rc.expectFail(tooBig...)
		}},
		{"12.X.18", "inflated exactly at the limit", offerDefault, func(rc *rawConn) {
			p := payloadOf(opBinary, maxMessage)
			rc.send(frame(finBit|rsv1Bit|opBinary, deflateMessage(p)))
			rc.expectMessageWithin(opBinary, p, bigTimeout)
			rc.closeNormally()
		}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.id+" "+c.desc, func(t *testing.T) {
				t.Parallel()
				var offers []string
				if c.offer != "" {
					offers = []string{c.offer}
				}
				rc, answer := dialDeflate(t, n.WSAddr(), "/ws", offers...)
				if (answer != "") != (c.offer != "") {
					t.Fatalf("offer %q answered %q", c.offer, answer)
				}
				c.run(rc)
			})
		}
	})
	checkSurvived(t, n)
}

// TestDeflateSharedFrames: one publish reaches compressing and plain
// subscribers, each in its own form, the compressed one built once.
func TestDeflateSharedFrames(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.LastValue = "" })
	var z [3]*rawConn
	for i := range z {
		z[i], _ = dialDeflate(t, n.WSAddr(), "/ws?topics=big", offerDefault)
	}
	small, _ := dialDeflate(t, n.WSAddr(), "/ws?topics=big", "permessage-deflate; server_max_window_bits=8")
	plain := dialWS(t, n.WSAddr(), "/ws?topics=big")
	gor, resp, err := (&websocket.Dialer{EnableCompression: true}).Dial("ws://"+n.WSAddr()+"/ws?topics=big", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gor.Close()
	if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("gorilla with EnableCompression: answer %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	data := []byte(`{"rows":[` + strings.Repeat(`{"symbol":"BTC-USD","price":64012.25},`, 50) + `{}]}`)
	for seq := 1; seq <= 3; seq++ {
		if r := publishHTTP(t, n, "big", data); r.Subscribers != 6 {
			t.Fatalf("publish: %+v, want 6 subscribers", r)
		}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		want := fmt.Sprintf(`{"topic":"big","seq":%d,"data":%s}`, seq, data)
		for i, rc := range append(z[:], small, plain) {
			rc.expectMessage(opText, []byte(want))
			if compressed := i < len(z); rc.wasCompressed != compressed {
				t.Errorf("subscriber %d: compressed=%v, want %v", i, rc.wasCompressed, compressed)
			}
		}
		_ = gor.SetReadDeadline(time.Now().Add(frameTimeout))
		if _, msg, err := gor.ReadMessage(); err != nil || string(msg) != want {
			t.Fatalf("gorilla: %q, %v", clip(msg), err)
		}
	}
	// Small publishes stay plain even for compressing clients.
	publishHTTP(t, n, "big", []byte(`1`))
	z[0].expectMessage(opText, []byte(`{"topic":"big","seq":4,"data":1}`))
	if z[0].wasCompressed {
		t.Error("a 32-byte delivery was compressed")
	}
}
