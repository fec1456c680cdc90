package codec

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// h decodes a hex string; spaces, underscores and newlines are ignored.
func h(s string) []byte {
	s = strings.NewReplacer(" ", "", "_", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("bad hex %q: %v", s, err))
	}
	return b
}

// result is what a parse produced, normalized so that any split of the input
// must give the same result: whole messages (chunks reassembled) and control
// frames, as strings, then the error if any.
type result struct {
	events []string
	err    *Error
}

func (r result) String() string {
	parts := r.events
	if r.err != nil {
		parts = append(parts[:len(parts):len(parts)], "ERR "+r.err.Reason)
	}
	return strings.Join(parts, " | ")
}

// collector reassembles parser output and checks the chunk invariants.
type collector struct {
	res    result
	inMsg  bool
	msgOp  OpCode
	msg    []byte
	broken string // first invariant violation
}

func (c *collector) add(f Frame) {
	fail := func(format string, args ...any) {
		if c.broken == "" {
			c.broken = fmt.Sprintf(format, args...)
		}
	}
	switch f.Kind {
	case DataChunk:
		if f.Op != OpText && f.Op != OpBinary {
			fail("DataChunk with op %v", f.Op)
		}
		if f.First == c.inMsg {
			fail("First=%v while inMsg=%v", f.First, c.inMsg)
		}
		if f.First {
			c.inMsg, c.msgOp, c.msg = true, f.Op, c.msg[:0]
		} else if f.Op != c.msgOp {
			fail("chunk op %v in a message of op %v", f.Op, c.msgOp)
		}
		c.msg = append(c.msg, f.Payload...)
		if f.Fin {
			c.inMsg = false
			if c.msgOp == OpText {
				c.res.events = append(c.res.events, "text:"+string(c.msg))
			} else {
				c.res.events = append(c.res.events, "binary:"+hex.EncodeToString(c.msg))
			}
		}
	case Ping:
		c.res.events = append(c.res.events, "ping:"+string(f.Payload))
	case Pong:
		c.res.events = append(c.res.events, "pong:"+string(f.Payload))
	case Close:
		c.res.events = append(c.res.events, fmt.Sprintf("close:%d:%s", f.CloseCode, f.CloseReason))
	default:
		fail("unexpected kind %d", f.Kind)
	}
}

// parseChunks feeds the chunks one after another the way a caller does:
// unconsumed bytes are kept and the next chunk is appended to them. The
// chunks' bytes are copied, so the caller's slices are not modified.
func parseChunks(cfg ParserConfig, chunks ...[]byte) (result, string) {
	return parseChunksResting(cfg, false, 0, chunks...)
}

// parseChunksResting is parseChunks; with rest, the parser is replaced by
// RestingParser(p.Ext()) after every result that leaves it Resting, as a
// caller keeping only the Ext byte between frames does. window is given to
// SetDeflate first (0: no permessage-deflate).
func parseChunksResting(cfg ParserConfig, rest bool, window uint8, chunks ...[]byte) (result, string) {
	var p Parser
	p.SetDeflate(window)
	var c collector
	var buf []byte
	for _, chunk := range chunks {
		buf = append(buf, chunk...)
		for {
			f, n, err := p.Next(buf, &cfg)
			if rest && err == nil && p.Resting() {
				p = RestingParser(p.Ext())
			}
			if err != nil {
				c.res.err = err
				return c.res, c.broken
			}
			if n < 0 || n > len(buf) {
				return c.res, fmt.Sprintf("n=%d out of range (len %d)", n, len(buf))
			}
			if f.Kind == NeedMore {
				buf = buf[n:]
				if n == 0 {
					break
				}
				continue
			}
			if n == 0 {
				return c.res, "frame returned with n == 0"
			}
			c.add(f)
			buf = buf[n:]
		}
		// Keep the leftover in a fresh buffer, as a ring buffer would.
		buf = append([]byte(nil), buf...)
	}
	return c.res, c.broken
}

// splits returns the input cut at each of the given points.
func splitAt(in []byte, points ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, p := range points {
		out = append(out, in[prev:p])
		prev = p
	}
	return append(out, in[prev:])
}

func bytewise(in []byte) [][]byte {
	out := make([][]byte, len(in))
	for i := range in {
		out[i] = in[i : i+1]
	}
	return out
}

// checkAllSplits parses in whole, split at every point, in three pieces at
// some points and byte by byte, and requires the same result every time.
func checkAllSplits(t *testing.T, name string, cfg ParserConfig, in []byte) result {
	t.Helper()
	want, broken := parseChunks(cfg, in)
	if broken != "" {
		t.Fatalf("%s: whole input: %s", name, broken)
	}
	check := func(how string, chunks [][]byte) {
		t.Helper()
		got, broken := parseChunks(cfg, chunks...)
		if broken != "" {
			t.Fatalf("%s (%s): %s", name, how, broken)
		}
		if got.String() != want.String() {
			t.Fatalf("%s (%s):\n got  %s\n want %s", name, how, got, want)
		}
	}
	// Big inputs: every split point within the first and last 300 bytes,
	// then every 997th; small ones: all points, and pairs of points.
	for i := 0; i <= len(in); i++ {
		if i > 300 && i < len(in)-300 && i%997 != 0 {
			continue
		}
		check(fmt.Sprintf("split at %d", i), splitAt(in, i))
	}
	if len(in) > 2048 {
		return want
	}
	for i := 0; i <= len(in); i += 3 {
		for j := i; j <= len(in); j += 5 {
			check(fmt.Sprintf("split at %d,%d", i, j), splitAt(in, i, j))
		}
	}
	check("bytewise", bytewise(in))
	return want
}
