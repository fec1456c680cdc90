package server_test

// An Autobahn|Testsuite-like conformance suite (cases 1.* to 10.*) over raw
// sockets against a node in echo mode. Case ids follow Autobahn's where a
// case has an Autobahn counterpart; ".X." ids are extra cases of the group.
// Expectations are Autobahn's: echoed messages match exactly; a failed
// connection gets a close frame with the expected code and the server then
// closes the TCP connection.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/gorilla/websocket"
)

type confCase struct {
	id, desc string
	run      func(rc *rawConn)
}

// runConformance runs each case on its own upgraded connection to one echo
// node, then checks the node still serves an ordinary client.
func runConformance(t *testing.T, cases []confCase, parallel bool, edit func(*server.Config)) {
	n := startNode(t, true, edit)
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.id+" "+c.desc, func(t *testing.T) {
				if parallel {
					t.Parallel()
				}
				c.run(dialWS(t, n.WSAddr(), "/ws"))
			})
		}
	})
	checkSurvived(t, n)
}

// checkSurvived: after the hostile cases an independent client still gets
// its echo and a clean close.
func checkSurvived(t *testing.T, n *server.Node) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+n.WSAddr()+"/ws", nil)
	if err != nil {
		t.Fatalf("server did not survive: gorilla dial after the cases: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(frameTimeout))
	if err := c.WriteMessage(websocket.TextMessage, []byte("still alive")); err != nil {
		t.Fatalf("server did not survive: write: %v", err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "still alive" {
		t.Fatalf("server did not survive: echo = %q, %v", msg, err)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("server did not survive: closing handshake: %v", err)
	}
}

// payloadOf makes a recognisable payload (position-dependent, so an offset
// bug shows); text payloads are ASCII.
func payloadOf(op byte, size int) []byte {
	period := 256
	if op == opText {
		period = 26
	}
	pattern := make([]byte, period)
	for i := range pattern {
		if op == opText {
			pattern[i] = 'a' + byte(i)
		} else {
			pattern[i] = byte(i*31 + 7)
		}
	}
	return bytes.Repeat(pattern, size/period+1)[:size]
}

// echoes sends frames in one write and expects one echo of want (op).
func echoes(op byte, want []byte, frames ...[]byte) func(*rawConn) {
	return func(rc *rawConn) {
		rc.send(frames...)
		rc.expectMessage(op, want)
		rc.closeNormally()
	}
}

// fails sends frames in one write and expects the connection failed with code.
func fails(codes []uint16, frames ...[]byte) func(*rawConn) {
	return func(rc *rawConn) {
		rc.send(frames...)
		rc.expectFail(codes...)
	}
}

var (
	protocolError = []uint16{1002}
	invalidData   = []uint16{1007}
	tooBig        = []uint16{1009}
)

const pause = 5 * time.Millisecond // between chops: the server sees separate reads

// 1.* framing
func TestConformanceFraming(t *testing.T) {
	var cs []confCase
	for j, op := range []byte{opText, opBinary} {
		for i, size := range []int{0, 125, 126, 127, 128, 65535, 65536} {
			p := payloadOf(op, size)
			cs = append(cs, confCase{fmt.Sprintf("1.%d.%d", j+1, i+1), fmt.Sprintf("%s %d bytes", opName(op), size),
				echoes(op, p, frame(finBit|op, p))})
		}
		p := payloadOf(op, 65536)
		cs = append(cs, confCase{fmt.Sprintf("1.%d.8", j+1), opName(op) + " 65536 bytes in 997-byte chops", func(rc *rawConn) {
			rc.sendChopped(frame(finBit|op, p), 997, time.Millisecond)
			rc.expectMessage(op, p)
			rc.closeNormally()
		}})
	}
	msgs := []string{"one", "", "three"}
	cs = append(cs,
		confCase{"1.X.1", "300-byte text, header and payload in 1-byte chops", func(rc *rawConn) {
			p := payloadOf(opText, 300)
			rc.sendChopped(frame(finBit|opText, p), 1, 0)
			rc.expectMessage(opText, p)
			rc.closeNormally()
		}},
		confCase{"1.X.2", "three messages in one write", func(rc *rawConn) {
			rc.send(textFrame(msgs[0]), binFrame([]byte(msgs[1])), textFrame(msgs[2]))
			rc.expectMessage(opText, []byte(msgs[0]))
			rc.expectMessage(opBinary, []byte(msgs[1]))
			rc.expectMessage(opText, []byte(msgs[2]))
			rc.closeNormally()
		}},
		confCase{"1.X.3", "unmasked client frame", fails(protocolError, frameKey(finBit|opText, []byte("plain"), [4]byte{}, false))},
		confCase{"1.X.4", "64-bit length with the MSB set", fails(protocolError,
			[]byte{finBit | opBinary, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 0})},
		confCase{"1.X.5", "frame split between header and mask key", func(rc *rawConn) {
			f := textFrame("split header")
			rc.sendEach(pause, f[:2], f[2:4], f[4:6], f[6:])
			rc.expectMessage(opText, []byte("split header"))
			rc.closeNormally()
		}},
	)
	runConformance(t, cs, true, nil)
}

// 2.* pings and pongs
func TestConformancePings(t *testing.T) {
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	p125 := bytes.Repeat([]byte{0xfe}, 125)
	pings := func(rc *rawConn, chopped bool) {
		for i := range 10 {
			f := pingFrame([]byte(fmt.Sprintf("payload-%d", i)))
			if chopped {
				rc.sendChopped(f, 1, 0)
			} else {
				rc.send(f)
			}
		}
		for i := range 10 {
			rc.expectPong([]byte(fmt.Sprintf("payload-%d", i)))
		}
		rc.closeNormally()
	}
	pongs := func(ping []byte, frames ...[]byte) func(*rawConn) {
		return func(rc *rawConn) {
			rc.send(frames...)
			if ping != nil {
				rc.expectPong(ping)
			}
			rc.closeNormally() // an unsolicited pong must get no answer at all
		}
	}
	cs := []confCase{
		{"2.1", "ping without payload", pongs([]byte{}, pingFrame(nil))},
		{"2.2", "ping with text payload", pongs([]byte("Hello, world!"), pingFrame([]byte("Hello, world!")))},
		{"2.3", "ping with binary payload", pongs(bin, pingFrame(bin))},
		{"2.4", "ping with 125-byte payload", pongs(p125, pingFrame(p125))},
		{"2.5", "ping with 126-byte payload", fails(protocolError, pingFrame(bytes.Repeat([]byte{0xfe}, 126)))},
		{"2.6", "ping with 125-byte payload in 1-byte chops", func(rc *rawConn) {
			rc.sendChopped(pingFrame(p125), 1, 0)
			rc.expectPong(p125)
			rc.closeNormally()
		}},
		{"2.7", "unsolicited pong without payload", pongs(nil, pongFrame(nil))},
		{"2.8", "unsolicited pong with payload", pongs(nil, pongFrame([]byte("unsolicited pong payload")))},
		{"2.9", "unsolicited pong, then ping", pongs([]byte("ping payload"), pongFrame([]byte("unsolicited pong payload")), pingFrame([]byte("ping payload")))},
		{"2.10", "10 pings in one write", func(rc *rawConn) { pings(rc, false) }},
		{"2.11", "10 pings, each in 1-byte chops", func(rc *rawConn) { pings(rc, true) }},
	}
	runConformance(t, cs, true, nil)
}

// 3.* reserved bits
func TestConformanceReservedBits(t *testing.T) {
	hello := []byte("Hello, world!")
	afterEcho := func(bad []byte, send func(*rawConn, ...[]byte)) func(*rawConn) {
		return func(rc *rawConn) {
			send(rc, textFrame(string(hello)), bad, pingFrame(nil))
			rc.expectMessage(opText, hello)
			rc.expectFail(protocolError...) // and no pong: the ping follows the bad frame
		}
	}
	oneWrite := func(rc *rawConn, f ...[]byte) { rc.send(f...) }
	frameWise := func(rc *rawConn, f ...[]byte) { rc.sendEach(pause, f...) }
	octetWise := func(rc *rawConn, f ...[]byte) { rc.sendChopped(bytes.Join(f, nil), 1, 0) }
	cs := []confCase{
		{"3.1", "text with RSV1", fails(protocolError, frame(finBit|rsv1Bit|opText, hello))},
		{"3.2", "text, text with RSV2, ping", afterEcho(frame(finBit|rsv2Bit|opText, hello), oneWrite)},
		{"3.3", "text, text with RSV1+RSV2, ping (frame-wise chops)", afterEcho(frame(finBit|rsv1Bit|rsv2Bit|opText, hello), frameWise)},
		{"3.4", "text, text with RSV3, ping (octet-wise chops)", afterEcho(frame(finBit|rsv3Bit|opText, hello), octetWise)},
		{"3.5", "binary with RSV1+RSV3", fails(protocolError, frame(finBit|rsv1Bit|rsv3Bit|opBinary, []byte{0, 1, 2, 3, 4, 5, 6, 7}))},
		{"3.6", "ping with RSV1+RSV2", fails(protocolError, frame(finBit|rsv1Bit|rsv2Bit|opPing, hello))},
		{"3.7", "close with all RSV bits", fails(protocolError, frame(finBit|rsv1Bit|rsv2Bit|rsv3Bit|opClose, []byte{0x03, 0xe8}))},
		{"3.X.1", "continuation with RSV1", fails(protocolError, frame(opText, hello), frame(finBit|rsv1Bit|opCont, hello))},
	}
	runConformance(t, cs, true, nil)
}

// 4.* reserved opcodes
func TestConformanceReservedOpcodes(t *testing.T) {
	var cs []confCase
	for i, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		group := 1 + i/5
		cs = append(cs,
			confCase{fmt.Sprintf("4.%d.%d", group, 2*(i%5)+1), fmt.Sprintf("opcode 0x%X", op),
				fails(protocolError, frame(finBit|op, nil))},
			confCase{fmt.Sprintf("4.%d.%d", group, 2*(i%5)+2), fmt.Sprintf("text, opcode 0x%X with payload, ping", op), func(rc *rawConn) {
				rc.send(textFrame("Hello, world!"), frame(finBit|op, []byte("reserved opcode")), pingFrame(nil))
				rc.expectMessage(opText, []byte("Hello, world!"))
				rc.expectFail(protocolError...)
			}},
		)
	}
	runConformance(t, cs, true, nil)
}

// 5.* fragmentation
func TestConformanceFragmentation(t *testing.T) {
	f1 := frame(opText, []byte("fragment1"))
	f2 := frame(finBit|opCont, []byte("fragment2"))
	ping := pingFrame([]byte("ping payload"))
	whole := []byte("fragment1fragment2")
	type sender func(*rawConn, ...[]byte)
	senders := []struct {
		name string
		send sender
	}{
		{"one write", func(rc *rawConn, f ...[]byte) { rc.send(f...) }},
		{"octet-wise chops", func(rc *rawConn, f ...[]byte) { rc.sendChopped(bytes.Join(f, nil), 1, 0) }},
		{"frame-wise chops", func(rc *rawConn, f ...[]byte) { rc.sendEach(pause, f...) }},
	}
	cs := []confCase{
		{"5.1", "ping in 2 fragments", fails(protocolError, frame(opPing, []byte("frag")), frame(finBit|opCont, []byte("ment")))},
		{"5.2", "pong in 2 fragments", fails(protocolError, frame(opPong, []byte("frag")), frame(finBit|opCont, []byte("ment")))},
		{"5.X.1", "close in 2 fragments", fails(protocolError, frame(opClose, []byte{0x03}), frame(finBit|opCont, []byte{0xe8}))},
	}
	for i, s := range senders {
		cs = append(cs,
			confCase{fmt.Sprintf("5.%d", 3+i), "text in 2 fragments, " + s.name, func(rc *rawConn) {
				s.send(rc, f1, f2)
				rc.expectMessage(opText, whole)
				rc.closeNormally()
			}},
			confCase{fmt.Sprintf("5.%d", 6+i), "text in 2 fragments with a ping between, " + s.name, func(rc *rawConn) {
				s.send(rc, f1, ping, f2)
				rc.expectPong([]byte("ping payload"))
				rc.expectMessage(opText, whole)
				rc.closeNormally()
			}},
			confCase{fmt.Sprintf("5.%d", 9+i), "continuation FIN=1 with nothing to continue, then text, " + s.name, func(rc *rawConn) {
				s.send(rc, frame(finBit|opCont, []byte("fragment24")), textFrame("fragment1"))
				rc.expectFail(protocolError...)
			}},
			confCase{fmt.Sprintf("5.%d", 12+i), "continuation FIN=0 with nothing to continue, then text, " + s.name, func(rc *rawConn) {
				s.send(rc, frame(opCont, []byte("fragment24")), textFrame("fragment1"))
				rc.expectFail(protocolError...)
			}},
		)
	}
	bad := func(fin byte) func(*rawConn) {
		return func(rc *rawConn) {
			rc.send(frame(fin|opCont, []byte("fragment1")), frame(opText, []byte("fragment2")), frame(finBit|opCont, []byte("fragment3")),
				frame(fin|opCont, []byte("fragment4")), frame(opText, []byte("fragment5")), frame(finBit|opCont, []byte("fragment6")))
			rc.expectFail(protocolError...)
		}
	}
	interleaved := func(send sender) func(*rawConn) {
		return func(rc *rawConn) {
			parts := fragments(opText, []byte("fragment1fragment2fragment3fragment4fragment5"), 9)
			p1, p2 := pingFrame([]byte("pongme 1!")), pingFrame([]byte("pongme 2!"))
			send(rc, parts[0], parts[1], p1, parts[2], parts[3], p2, parts[4])
			rc.expectPong([]byte("pongme 1!"))
			rc.expectPong([]byte("pongme 2!"))
			rc.expectMessage(opText, []byte("fragment1fragment2fragment3fragment4fragment5"))
			rc.closeNormally()
		}
	}
	cs = append(cs,
		confCase{"5.15", "text in 2 fragments, stray continuation, text", func(rc *rawConn) {
			rc.send(f1, f2, frame(opCont, []byte("fragment3")), textFrame("fragment4"))
			rc.expectMessage(opText, whole)
			rc.expectFail(protocolError...)
		}},
		confCase{"5.16", "2x: stray continuation FIN=0, text in 2 fragments", bad(0)},
		confCase{"5.17", "2x: stray continuation FIN=1, text in 2 fragments", bad(finBit)},
		confCase{"5.18", "text start, then another text start", fails(protocolError, f1, frame(finBit|opText, []byte("fragment2")))},
		confCase{"5.19", "text in 5 fragments, pings between, paused frames", interleaved(func(rc *rawConn, f ...[]byte) { rc.sendEach(50*time.Millisecond, f...) })},
		confCase{"5.20", "text in 5 fragments, pings between, octet-wise chops", interleaved(func(rc *rawConn, f ...[]byte) {
			rc.sendChopped(bytes.Join(f, nil), 1, 0)
		})},
		confCase{"5.X.2", "text in 1-byte fragments", func(rc *rawConn) {
			msg := []byte("Hello, fragmented world!")
			rc.send(fragments(opText, msg, 1)...)
			rc.expectMessage(opText, msg)
			rc.closeNormally()
		}},
		confCase{"5.X.3", "binary in 1-byte fragments, frame-wise chops", func(rc *rawConn) {
			msg := payloadOf(opBinary, 20)
			rc.sendEach(time.Millisecond, fragments(opBinary, msg, 1)...)
			rc.expectMessage(opBinary, msg)
			rc.closeNormally()
		}},
		confCase{"5.X.4", "text with empty fragments at start, middle and end", echoes(opText, []byte("ab"),
			frame(opText, nil), frame(opCont, []byte("a")), frame(opCont, nil), frame(opCont, []byte("b")), frame(finBit|opCont, nil))},
		confCase{"5.X.5", "binary start during fragmented text", fails(protocolError, f1, frame(finBit|opBinary, []byte("x")))},
		confCase{"5.X.6", "close in the middle of a fragmented message", func(rc *rawConn) {
			rc.send(f1, closeFrame(1000, ""))
			rc.expectClose(1000)
		}},
	)
	runConformance(t, cs, true, nil)
}

// utf8Vectors are Autobahn's 6.* payloads (after Markus Kuhn's UTF-8 test
// file): whether each is valid UTF-8 as a whole message.
var utf8Vectors = []struct {
	name  string
	s     string
	valid bool
}{
	{"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
	{"latin", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", true},
	{"emoji", "\xf0\x9f\x98\x80 ok \xf0\x9f\x91\x8d", true},
	{"first 1-byte", "\x00", true},
	{"first 2-byte", "\xc2\x80", true},
	{"first 3-byte", "\xe0\xa0\x80", true},
	{"first 4-byte", "\xf0\x90\x80\x80", true},
	{"first 5-byte", "\xf8\x88\x80\x80\x80", false},
	{"first 6-byte", "\xfc\x84\x80\x80\x80\x80", false},
	{"last 1-byte", "\x7f", true},
	{"last 2-byte", "\xdf\xbf", true},
	{"last 3-byte", "\xef\xbf\xbf", true},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf", true},
	{"last 4-byte form", "\xf7\xbf\xbf\xbf", false},
	{"last 5-byte", "\xfb\xbf\xbf\xbf\xbf", false},
	{"last 6-byte", "\xfd\xbf\xbf\xbf\xbf\xbf", false},
	{"U+D7FF", "\xed\x9f\xbf", true},
	{"U+E000", "\xee\x80\x80", true},
	{"U+FFFD", "\xef\xbf\xbd", true},
	{"U+110000", "\xf4\x90\x80\x80", false},
	{"noncharacter U+FFFE", "\xef\xbf\xbe", true},
	{"noncharacter U+FDD0", "\xef\xb7\x90", true},
	{"noncharacter U+1FFFE", "\xf0\x9f\xbf\xbe", true},
	{"BOM", "\xef\xbb\xbf", true},
	{"lone continuation 80", "\x80", false},
	{"lone continuation BF", "\xbf", false},
	{"continuations 80 BF 80", "\x80\xbf\x80", false},
	{"continuation after ASCII", "a\x80b", false},
	{"lonely start C0", "\xc0 ", false},
	{"lonely start E0", "\xe0 ", false},
	{"lonely start F0", "\xf0 ", false},
	{"lonely start F8", "\xf8 ", false},
	{"truncated 2-byte at end", "ab\xc2", false},
	{"truncated 3-byte at end", "ab\xe1\x80", false},
	{"truncated 4-byte at end", "ab\xf1\x80\x80", false},
	{"truncated 3-byte then ASCII", "\xef\xbfa", false},
	{"concatenated incomplete", "\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf", false},
	{"impossible FE", "\xfe", false},
	{"impossible FF", "\xff", false},
	{"impossible FE FE FF FF", "\xfe\xfe\xff\xff", false},
	{"overlong / 2-byte", "\xc0\xaf", false},
	{"overlong / 3-byte", "\xe0\x80\xaf", false},
	{"overlong / 4-byte", "\xf0\x80\x80\xaf", false},
	{"overlong max 2-byte", "\xc1\xbf", false},
	{"overlong max 3-byte", "\xe0\x9f\xbf", false},
	{"overlong max 4-byte", "\xf0\x8f\xbf\xbf", false},
	{"overlong NUL", "\xc0\x80", false},
	{"surrogate U+D800", "\xed\xa0\x80", false},
	{"surrogate U+DB7F", "\xed\xad\xbf", false},
	{"surrogate U+DFFF", "\xed\xbf\xbf", false},
	{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", false},
	{"kosme + surrogate + edited", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", false},
}

// 6.* UTF-8 handling
func TestConformanceUTF8(t *testing.T) {
	outcome := func(valid bool, payload []byte) func(*rawConn) {
		return func(rc *rawConn) {
			if valid {
				rc.expectMessage(opText, payload)
				rc.closeNormally()
			} else {
				rc.expectFail(invalidData...)
			}
		}
	}
	cs := []confCase{
		{"6.1.1", "empty text", echoes(opText, []byte{}, textFrame(""))},
		{"6.1.2", "empty text in 3 empty fragments", echoes(opText, []byte{}, frame(opText, nil), frame(opCont, nil), frame(finBit|opCont, nil))},
		{"6.1.3", "text: empty, non-empty, empty fragment", echoes(opText, []byte("middle"), frame(opText, nil), frame(opCont, []byte("middle")), frame(finBit|opCont, nil))},
	}
	for i, v := range utf8Vectors {
		p := []byte(v.s)
		result := "invalid"
		if v.valid {
			result = "valid"
		}
		id := fmt.Sprintf("6.X.%d", i+1)
		check := outcome(v.valid, p)
		cs = append(cs,
			confCase{id + "a", result + " " + v.name + ", one frame", func(rc *rawConn) {
				rc.send(textFrame(v.s))
				check(rc)
			}},
			// code points split across fragments (one write)
			confCase{id + "b", result + " " + v.name + ", 1-byte fragments", func(rc *rawConn) {
				rc.send(fragments(opText, p, 1)...)
				check(rc)
			}},
			// code points split across TCP reads inside one frame
			confCase{id + "c", result + " " + v.name + ", one frame in 1-byte chops", func(rc *rawConn) {
				rc.sendChopped(textFrame(v.s), 1, time.Millisecond)
				check(rc)
			}},
		)
	}
	// 6.6.*: every prefix of "κόσμε"; valid only where it ends on a boundary.
	kosme := utf8Vectors[0].s
	for i := 1; i <= len(kosme); i++ {
		valid := i == 2 || i == 5 || i == 7 || i == 9 || i == 11
		cs = append(cs, confCase{fmt.Sprintf("6.6.%d", i), fmt.Sprintf("first %d bytes of kosme (valid=%v)", i, valid), func(rc *rawConn) {
			rc.send(textFrame(kosme[:i]))
			outcome(valid, []byte(kosme[:i]))(rc)
		}})
	}
	cs = append(cs, failFastCases()...)
	runConformance(t, cs, true, nil)
}

// failFastCases (6.4.*): the server must fail the connection with 1007 as
// soon as the invalid byte arrives, before the rest of the message is sent.
func failFastCases() []confCase {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	bad := "\xf4\x90\x80\x80" // > U+10FFFF: invalid at its second byte
	const tail = "edited"
	// chops are cut points in the whole frame's bytes (header included); the
	// last chop must bring the byte that makes the text invalid.
	failFast := func(f []byte, cuts ...int) func(*rawConn) {
		return func(rc *rawConn) {
			prev := 0
			for i, c := range cuts {
				if i > 0 {
					time.Sleep(pause)
				}
				rc.write(f[prev:c])
				prev = c
			}
			// The rest is withheld until the server has answered.
			rc.expectCloseFrame(invalidData...)
			rc.write(f[prev:]) // may fail: the server has hung up
			rc.expectEOF("after failing the connection")
		}
	}
	one := frame(finBit|opText, []byte(kosme+bad+tail))
	k := len(one) - len(bad+tail) // the frame up to the invalid code point
	first := frame(opText, []byte(kosme+bad))
	frags := append(append([]byte{}, first...), frame(finBit|opCont, []byte(tail))...)
	octets := make([]int, k+2)
	for i := range octets {
		octets[i] = i + 1
	}
	return []confCase{
		{"6.4.1", "valid part, invalid code point, rest withheld", failFast(one, k, k+len(bad))},
		{"6.4.2", "valid part with F4, then 90 80 80, rest withheld", failFast(one, k+1, k+len(bad))},
		{"6.4.3", "valid part, F4, 90 (now invalid), rest withheld", failFast(one, k, k+1, k+2)},
		{"6.4.4", "octet-wise chops up to the invalid byte, rest withheld", failFast(one, octets...)},
		{"6.X.fast.1", "invalid byte in the first chop of a frame", failFast(one, k+2)},
		{"6.X.fast.2", "invalid first fragment, later fragment withheld", failFast(frags, len(first))},
	}
}

// 7.* close handling
func TestConformanceClose(t *testing.T) {
	closeOnly := func(codes ...uint16) func(frames ...[]byte) func(*rawConn) {
		return func(frames ...[]byte) func(*rawConn) {
			return func(rc *rawConn) {
				rc.send(frames...)
				rc.expectClose(codes...)
			}
		}
	}
	normal := closeOnly(1000)
	big := payloadOf(opText, 256<<10)
	cs := []confCase{
		{"7.1.1", "text, then close", func(rc *rawConn) {
			rc.send(textFrame("Hello World!"))
			rc.expectMessage(opText, []byte("Hello World!"))
			rc.closeNormally()
		}},
		{"7.1.2", "close twice", normal(closeFrame(1000, ""), closeFrame(1000, ""))},
		{"7.1.3", "close, then ping (no pong)", normal(closeFrame(1000, ""), pingFrame([]byte("Hello World!")))},
		{"7.1.4", "close, then text (no echo)", normal(closeFrame(1000, ""), textFrame("Hello World!"))},
		{"7.1.5", "text fragment, close, continuation", normal(frame(opText, []byte("fragment1")), closeFrame(1000, ""), frame(finBit|opCont, []byte("fragment2")))},
		{"7.1.6", "256 KiB text, ping, close, text", func(rc *rawConn) {
			// Autobahn lets the echo and the pong come before the close
			// reply; nothing may follow it.
			rc.send(textFrame(string(big)), pingFrame([]byte("Hello World!")), closeFrame(1000, ""), textFrame("after close"))
			for step := 0; ; step++ {
				f := rc.next("echo, pong or close", frameTimeout)
				switch {
				case f.op == opText && step == 0 && f.fin && bytes.Equal(f.payload, big):
				case f.op == opPong && bytes.Equal(f.payload, []byte("Hello World!")):
				case f.op == opClose && len(f.payload) >= 2 && binary.BigEndian.Uint16(f.payload) == 1000:
					rc.expectEOF("after its close frame")
					return
				default:
					rc.t.Fatalf("expected (echo of 256 KiB text,) (pong,) close 1000; got %v as frame %d", f, step+1)
				}
			}
		}},
		{"7.3.1", "close without payload", closeOnly()(frame(finBit|opClose, nil))},
		{"7.3.2", "close with 1-byte payload", fails(protocolError, frame(finBit|opClose, []byte{0x03}))},
		{"7.3.3", "close 1000 without reason", normal(closeFrame(1000, ""))},
		{"7.3.4", "close 1000 with reason", normal(closeFrame(1000, "Hello World!"))},
		{"7.3.5", "close 1000 with 123-byte reason (125-byte payload)", normal(closeFrame(1000, strings.Repeat("*", 123)))},
		{"7.3.6", "close 1000 with 124-byte reason (126-byte payload)", fails(protocolError, closeFrame(1000, strings.Repeat("*", 124)))},
		{"7.5.1", "close 1000 with invalid UTF-8 reason", fails([]uint16{1007, 1002}, closeFrame(1000, utf8Vectors[len(utf8Vectors)-1].s))},
		{"7.X.1", "close 1000 with reason, octet-wise chops", func(rc *rawConn) {
			rc.sendChopped(closeFrame(1000, "bye κόσμε"), 1, 0)
			rc.expectClose(1000)
		}},
		{"7.X.2", "close after a completed fragmented message", func(rc *rawConn) {
			rc.send(frame(opBinary, []byte{1}), frame(finBit|opCont, []byte{2}), closeFrame(1000, ""))
			rc.expectMessage(opBinary, []byte{1, 2})
			rc.expectClose(1000)
		}},
	}
	for i, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cs = append(cs, confCase{fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("valid close code %d", code),
			closeOnly(code, 1000)(closeFrame(code, ""))})
	}
	for i, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, confCase{fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("invalid close code %d", code),
			fails(protocolError, closeFrame(code, ""))})
	}
	runConformance(t, cs, true, nil)
}

// 9.* limits: large messages, many fragments, many messages. The sender runs
// on its own goroutine so a large echo can flow back while we still write.
func TestConformanceLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("large messages; skipped with -short")
	}
	const kib, mib = 1 << 10, 1 << 20
	bulk := func(op byte, size, fragSize, chop int) func(*rawConn) {
		return func(rc *rawConn) {
			p := payloadOf(op, size)
			var wire []byte
			if fragSize == 0 {
				wire = frame(finBit|op, p)
			} else {
				wire = bytes.Join(fragments(op, p, fragSize), nil)
			}
			done := sendInBackground(rc, wire, chop)
			rc.expectMessageWithin(op, p, bigTimeout)
			<-done
			rc.closeNormally()
		}
	}
	var cs []confCase
	for _, op := range []byte{opText, opBinary} {
		group := 1
		if op == opBinary {
			group = 2
		}
		for _, size := range []int{1 * mib, 16 * mib} {
			name := fmt.Sprintf("%s %d MiB", opName(op), size/mib)
			cs = append(cs, confCase{fmt.Sprintf("9.%d.%d", group, size/mib), name + " in one frame", bulk(op, size, 0, 0)})
			if raceEnabled && size > mib {
				continue // ~5 s each under -race; the plain run covers them
			}
			cs = append(cs,
				confCase{fmt.Sprintf("9.%d.%d", group+2, size/mib), name + " in 64 KiB fragments", bulk(op, size, 64*kib, 0)},
				confCase{fmt.Sprintf("9.%d.%d", group+2, size/mib+100), name + " in 4 KiB fragments", bulk(op, size, 4*kib, 0)},
			)
		}
		cs = append(cs,
			confCase{fmt.Sprintf("9.%d.1", group+4), opName(op) + " 1 MiB in one frame, 4 KiB chops", bulk(op, mib, 0, 4*kib)},
			confCase{fmt.Sprintf("9.%d.2", group+4), opName(op) + " 1 MiB in one frame, 997-byte chops", bulk(op, mib, 0, 997)},
		)
	}
	many := func(op byte, count, size int) func(*rawConn) {
		return func(rc *rawConn) {
			var wire []byte
			for i := range count {
				p := payloadOf(op, size)
				if size > 0 {
					p[0] = 'A' + byte(i%26) // each message distinct, still ASCII
				}
				wire = append(wire, frame(finBit|op, p)...)
			}
			done := sendInBackground(rc, wire, 64*kib)
			for i := range count {
				p := payloadOf(op, size)
				if size > 0 {
					p[0] = 'A' + byte(i%26)
				}
				rc.expectMessage(op, p)
			}
			<-done
			rc.closeNormally()
		}
	}
	cs = append(cs,
		confCase{"9.7.1", "1000 empty text messages", many(opText, 1000, 0)},
		confCase{"9.7.5", "1000 text messages of 1 KiB", many(opText, 1000, kib)},
		confCase{"9.8.6", "1000 binary messages of 4 KiB", many(opBinary, 1000, 4*kib)},
	)
	runConformance(t, cs, false, nil) // one at a time: 16 MiB buffers add up
}

// sendInBackground writes b in chops of chop bytes (0: one write) on its own
// goroutine; write errors surface as a failed read on the test's side.
func sendInBackground(rc *rawConn, b []byte, chop int) <-chan struct{} {
	done := make(chan struct{})
	c := rc.c
	go func() {
		defer close(done)
		if chop == 0 {
			chop = len(b)
		}
		_ = c.SetWriteDeadline(time.Now().Add(bigTimeout))
		for len(b) > 0 {
			k := min(chop, len(b))
			if _, err := c.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}()
	return done
}

// 9.X: the message size limit fails the connection with 1009 as soon as
// the limit is known to be exceeded, without waiting for (or buffering) the rest.
func TestConformanceMessageLimit(t *testing.T) {
	const limit = 64 << 10
	header := func(op byte, n uint64) []byte {
		h := []byte{finBit | op, 0x80 | 127}
		h = binary.BigEndian.AppendUint64(h, n)
		return append(h, 1, 2, 3, 4) // mask key; the payload never comes
	}
	cs := []confCase{
		{"9.X.1", "text frame announcing limit+1 bytes, payload withheld", func(rc *rawConn) {
			rc.send(header(opText, limit+1))
			rc.expectFail(tooBig...)
		}},
		{"9.X.2", "binary frame announcing 1 GiB, payload withheld", func(rc *rawConn) {
			rc.send(header(opBinary, 1<<30))
			rc.expectFail(tooBig...)
		}},
		{"9.X.3", "fragments adding up past the limit", func(rc *rawConn) {
			half := payloadOf(opText, limit/2+1)
			rc.send(frame(opText, half), frame(opCont, half))
			rc.expectFail(tooBig...)
		}},
		{"9.X.4", "exactly the limit is echoed", echoes(opBinary, payloadOf(opBinary, limit), binFrame(payloadOf(opBinary, limit)))},
	}
	runConformance(t, cs, true, func(c *server.Config) { c.MaxMessage = limit })
}

// 10.* automatic fragmentation
func TestConformanceAutoFragmentation(t *testing.T) {
	p := payloadOf(opText, 65536)
	b := payloadOf(opBinary, 65536)
	cs := []confCase{
		{"10.1.1", "65536-byte text in 1300-byte fragments", echoes(opText, p, fragments(opText, p, 1300)...)},
		{"10.X.1", "65536-byte binary in 1300-byte fragments", echoes(opBinary, b, fragments(opBinary, b, 1300)...)},
	}
	runConformance(t, cs, true, nil)
}

// Handshake: bad upgrade requests get the documented HTTP status and the
// connection is closed; slow or silent sockets are closed after the
// handshake timeout; afterwards the node still serves clients.
func TestConformanceHandshake(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.HandshakeTimeout = time.Second })
	addr := n.WSAddr()
	key := newKey()
	req := func(reqLine string, headers ...string) string {
		return reqLine + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n"
	}
	host, upg, conn, ver, k := "Host: "+addr, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+key
	get := "GET /ws HTTP/1.1"
	cases := []struct {
		name    string
		request string
		status  []int
		header  string // a header the response must carry ("Name: value")
	}{
		{"other path", req("GET /other HTTP/1.1", host, upg, conn, ver, k), []int{404}, ""},
		{"POST", req("POST /ws HTTP/1.1", host, upg, conn, ver, k, "Content-Length: 0"), []int{405}, "Allow: GET"},
		{"missing Upgrade", req(get, host, conn, ver, k), []int{426}, ""},
		{"Upgrade not websocket", req(get, host, "Upgrade: h2c", conn, ver, k), []int{426}, ""},
		{"Connection without upgrade", req(get, host, upg, "Connection: keep-alive", ver, k), []int{426}, ""},
		{"version 8", req(get, host, upg, conn, "Sec-WebSocket-Version: 8", k), []int{426}, "Sec-WebSocket-Version: 13"},
		{"missing version", req(get, host, upg, conn, k), []int{426, 400}, ""},
		{"missing key", req(get, host, upg, conn, ver), []int{400}, ""},
		{"key not base64", req(get, host, upg, conn, ver, "Sec-WebSocket-Key: not base64!!"), []int{400}, ""},
		{"key of 15 bytes", req(get, host, upg, conn, ver, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), []int{400}, ""},
		{"missing Host", req(get, upg, conn, ver, k), []int{400}, ""},
		{"16 KiB header block", req(get, host, upg, conn, ver, k, "X-Filler: "+strings.Repeat("f", 16<<10)), []int{431}, ""},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", []int{400}, ""},
		{"garbage text", "HELLO THERE\r\n\r\n", []int{400}, ""},
		{"invalid topic in URL", req("GET /ws?topics=bad$$ HTTP/1.1", host, upg, conn, ver, k), []int{400}, ""},
		{"topic name of 129 chars", req("GET /ws?topics=a,"+strings.Repeat("t", 129)+" HTTP/1.1", host, upg, conn, ver, k), []int{400}, ""},
	}
	// Parallel cases in a group, so "survivor" runs after all of them.
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				rc := dialTCP(t, addr)
				rc.write([]byte(c.request))
				rc.expectHTTPError(c.status, c.header)
			})
		}
		t.Run("header block over the limit, never finished", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			// 9 KiB > the 8 KiB default, no blank line: 431 without waiting for more.
			rc.write([]byte(get + "\r\n" + host + "\r\nX-Filler: " + strings.Repeat("f", 9<<10)))
			rc.expectHTTPError([]int{431}, "")
		})
		t.Run("valid upgrade, unusual but legal header spelling", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			rc.write([]byte(req("GET /ws?topics=x,y HTTP/1.1", "host: "+addr, "upgrade: WebSocket", "connection: keep-alive, Upgrade",
				"sec-websocket-version: 13", "sec-websocket-key: "+key, "Origin: http://example.test")))
			expectSwitch(t, rc, key)
			rc.closeNormally()
		})
		t.Run("valid upgrade in 1-byte chops", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			rc.sendChopped([]byte(upgradeRequest(addr, "/ws", key, nil)), 1, 0)
			expectSwitch(t, rc, key)
			rc.closeNormally()
		})
		t.Run("upgrade and first message in one write", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			rc.send([]byte(upgradeRequest(addr, "/ws", key, nil)), textFrame(`{"op":"subscribe","topics":["pipelined"]}`))
			expectSwitch(t, rc, key)
			_, msg := rc.readMessage("subscribe ack", frameTimeout)
			if !strings.HasPrefix(string(msg), `{"type":"subscribed","topics":["pipelined"],"epochs":{"pipelined":"`) {
				t.Fatalf("pipelined subscribe: got %q", msg)
			}
			rc.closeNormally()
		})
		t.Run("half a request, then silence", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			rc.write([]byte(get + "\r\n" + host + "\r\n"))
			rc.expectHangUp("a stalled handshake (HandshakeTimeout 1s)")
		})
		t.Run("silent socket", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			rc.expectHangUp("a socket that never sends (HandshakeTimeout 1s)")
		})
		t.Run("HTTP/1.0 upgrade", func(t *testing.T) {
			t.Parallel()
			// RFC 6455 4.2.1: the upgrade must be HTTP/1.1 or higher.
			rc := dialTCP(t, addr)
			rc.write([]byte(req("GET /ws HTTP/1.0", host, upg, conn, ver, k)))
			rc.expectHTTPError([]int{400, 505}, "")
		})
	})
	t.Run("survivor", func(t *testing.T) {
		rc := dialWS(t, addr, "/ws?topics=alive")
		rc.closeNormally()
	})
}

// expectSwitch reads a 101 response with the right accept key.
func expectSwitch(t *testing.T, rc *rawConn, key string) {
	t.Helper()
	resp := rc.readResponse()
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		t.Fatalf("want 101 with Sec-WebSocket-Accept %s, got %d %v", acceptKey(key), resp.StatusCode, resp.Header)
	}
}

// expectHTTPError reads an HTTP error response: one of statuses, the
// documented headers, a body of Content-Length bytes, then the server hangs up.
func (rc *rawConn) expectHTTPError(statuses []int, header string) {
	rc.t.Helper()
	resp := rc.readResponse()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		rc.t.Fatalf("status %d: reading body: %v", resp.StatusCode, err)
	}
	ok := false
	for _, s := range statuses {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		rc.t.Fatalf("want status %v, got %d %q (body %q)", statuses, resp.StatusCode, resp.Status, body)
	}
	if header != "" {
		name, value, _ := strings.Cut(header, ": ")
		if resp.Header.Get(name) != value {
			rc.t.Fatalf("status %d: want header %q, got %s: %q", resp.StatusCode, header, name, resp.Header.Get(name))
		}
	}
	if resp.StatusCode == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
		rc.t.Fatalf("426 without Sec-WebSocket-Version: 13 (headers %v)", resp.Header)
	}
	if !resp.Close {
		rc.t.Errorf("status %d: want Connection: close", resp.StatusCode)
	}
	rc.expectEOF(fmt.Sprintf("after the %d response", resp.StatusCode))
}

// expectHangUp waits for the server to close a connection that never
// completed its handshake; an HTTP error response (e.g. 408) before is fine.
func (rc *rawConn) expectHangUp(what string) {
	rc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	_ = rc.c.SetReadDeadline(deadline)
	got, err := io.ReadAll(rc.br)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		rc.t.Fatalf("server kept %s open for 5s (received %q)", what, clip(got))
	case len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 4")):
		rc.t.Fatalf("server answered %s with %q, want an HTTP 4xx or nothing", what, clip(got))
	}
}

// Connection limit: above MaxConns a new connection gets HTTP 503.
func TestConformanceMaxConns(t *testing.T) {
	n := startNode(t, false, func(c *server.Config) { c.MaxConns = 3 })
	var open []*rawConn
	for range 3 {
		open = append(open, dialWS(t, n.WSAddr(), "/ws"))
	}
	rc := dialTCP(t, n.WSAddr())
	rc.write([]byte(upgradeRequest(n.WSAddr(), "/ws", newKey(), nil)))
	rc.expectHTTPError([]int{503}, "")
	open[0].closeNormally()
	// The freed slot is reusable once the server has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc := dialTCP(t, n.WSAddr())
		key := newKey()
		rc.write([]byte(upgradeRequest(n.WSAddr(), "/ws", key, nil)))
		resp := rc.readResponse()
		if resp.StatusCode == 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing one of 3 connections (MaxConns 3), a new upgrade still gets %d", resp.StatusCode)
		}
		rc.c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}
