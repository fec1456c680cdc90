package wire

import "strconv"

// Delta encodings a subscriber may ask for ("delta" in a subscribe op or
// ?delta= in the upgrade URL).
const DeltaFossil = "fossil"

// CodeBadDelta answers a subscribe op whose "delta" names an encoding the
// node does not speak.
const CodeBadDelta = "bad_delta"

// validDelta checks the "delta" field of a subscribe op.
func validDelta(d string) *OpError {
	if d == "" || d == DeltaFossil {
		return nil
	}
	return &OpError{CodeBadDelta, "unknown delta encoding " + strconv.Quote(d) + ": want \"fossil\" or none"}
}

// ParseDelta reads the URL form ?delta=fossil ("" when absent).
func ParseDelta(values []string) (string, error) {
	d := ""
	for _, v := range values {
		if e := validDelta(v); e != nil {
			return "", e
		}
		d = v
	}
	return d, nil
}

// AppendDeltaEnvelope appends the delta delivery
// {"topic":T,"seq":N,"delta":"fossil","data":"..."}: data is a JSON string
// holding the Fossil delta that turns seq N-1's data into seq N's, one
// character per byte (code points 0-255; bytes 0x80-0xff and controls as
// \u00XX, '"' and '\' backslash-escaped).
func AppendDeltaEnvelope(dst []byte, topic string, seq uint64, delta []byte) []byte {
	dst = append(dst, `{"topic":"`...)
	dst = append(dst, topic...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"delta":"fossil","data":"`...)
	for _, c := range delta {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c < 0x20 || c >= 0x80:
			dst = append(dst, '\\', 'u', '0', '0', hexDigit[c>>4], hexDigit[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, `"}`...)
}

const hexDigit = "0123456789abcdef"

// DeltaEnvelopeSize is the exact length AppendDeltaEnvelope will add.
func DeltaEnvelopeSize(topic string, seq uint64, delta []byte) int {
	n := len(`{"topic":"","seq":,"delta":"fossil","data":""}`) + len(topic) + decimalLen(seq)
	for _, c := range delta {
		switch {
		case c == '"' || c == '\\' || c == '\n':
			n += 2
		case c < 0x20 || c >= 0x80:
			n += 6
		default:
			n++
		}
	}
	return n
}

// AppendDeltaTopics turns an ack's closing '}' into ,"delta":[...]}: the
// topics of the op that receive deltas (the others get full messages).
func AppendDeltaTopics(dst []byte, topics []string) []byte {
	dst = append(dst[:len(dst)-1], `,"delta":[`...)
	for i, t := range topics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, t...)
		dst = append(dst, '"')
	}
	return append(dst, "]}"...)
}
