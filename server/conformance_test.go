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
	"fmt"
	"strings"
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
	p := make([]byte, size)
	for i := range p {
		if op == opText {
			p[i] = 'a' + byte(i%26)
		} else {
			p[i] = byte(i*31 + 7)
		}
	}
	return p
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
		{"3.3", "text, text with RSV3, ping (frame-wise chops)", afterEcho(frame(finBit|rsv1Bit|rsv2Bit|opText, hello), frameWise)},
		{"3.4", "text, text with RSV=4, ping (octet-wise chops)", afterEcho(frame(finBit|rsv3Bit|opText, hello), octetWise)},
		{"3.5", "binary with RSV=5", fails(protocolError, frame(finBit|rsv1Bit|rsv3Bit|opBinary, []byte{0, 1, 2, 3, 4, 5, 6, 7}))},
		{"3.6", "ping with RSV=6", fails(protocolError, frame(finBit|rsv1Bit|rsv2Bit|opPing, hello))},
		{"3.7", "close with RSV=7", fails(protocolError, frame(finBit|rsv1Bit|rsv2Bit|rsv3Bit|opClose, []byte{0x03, 0xe8}))},
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
