package loadtest

import "bytes"

const (
	seqKey  = `"seq":`
	sentKey = `"t":`
	fromKey = `"from":`
)

var (
	resetPrefix   = []byte(`{"type":"reset"`)
	conflatedMark = []byte(`"conflated":true`)
)

// resetFrom reads "from" of a reset frame.
func resetFrom(msg []byte) (uint64, bool) {
	i := bytes.Index(msg, []byte(fromKey))
	if i < 0 {
		return 0, false
	}
	v, n := parseUint(msg[i+len(fromKey):])
	return v, n > 0 && v > 0
}

// envelopeFields pulls seq and the publisher's send time out of a delivery
// {"topic":"x","seq":7,"data":{"t":1700000000000000000,"pad":"..."}}
// without allocating. ok is false when seq is missing; sent is 0 when the
// payload carries no send time (e.g. someone else's publish).
func envelopeFields(msg []byte) (seq uint64, sent int64, ok bool) {
	i := bytes.Index(msg, []byte(seqKey))
	if i < 0 {
		return 0, 0, false
	}
	rest := msg[i+len(seqKey):]
	seq, n := parseUint(rest)
	if n == 0 {
		return 0, 0, false
	}
	rest = rest[n:]
	if j := bytes.Index(rest, []byte(sentKey)); j >= 0 {
		v, m := parseUint(rest[j+len(sentKey):])
		if m > 0 {
			sent = int64(v)
		}
	}
	return seq, sent, true
}

// parseUint reads leading ASCII digits (after optional spaces).
func parseUint(b []byte) (v uint64, n int) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + uint64(b[i]-'0')
		i++
	}
	if i == start {
		return 0, 0
	}
	return v, i
}

// frameLen returns the total length of the server (unmasked or masked)
// frame starting at b, or -1 when the header itself is still incomplete.
// The loop uses it to keep only partial frames as leftovers, so the parser
// always sees whole frames and a message's fields are never split.
func frameLen(b []byte) int {
	if len(b) < 2 {
		return -1
	}
	hdr := 2
	n := uint64(b[1] & 0x7f)
	switch n {
	case 126:
		hdr = 4
		if len(b) < hdr {
			return -1
		}
		n = uint64(b[2])<<8 | uint64(b[3])
	case 127:
		hdr = 10
		if len(b) < hdr {
			return -1
		}
		n = 0
		for _, x := range b[2:10] {
			n = n<<8 | uint64(x)
		}
	}
	if b[1]&0x80 != 0 {
		hdr += 4
	}
	if n > 1<<40 {
		return 1 << 40 // absurd; the parser rejects it
	}
	return hdr + int(n)
}
