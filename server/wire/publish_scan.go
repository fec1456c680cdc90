package wire

// Fast path for the commonest client message, a publish: a hand-written
// scan instead of json.Unmarshal (9 allocations per publish, all of them
// in the decoder). It accepts only a strict subset of what ParseOp
// accepts, where both give the same Op: one flat object with the keys op
// ("publish"), topic, data, and optionally id and ephemeral, each at most
// once, spelled exactly, strings without escapes, a valid topic. Anything
// else (other keys, escapes, case variants, duplicates, data null, a
// number json would refuse, too deep data, trailing bytes, any error) is
// left to ParseOp, which keeps every precise error answer. FuzzScanPublish
// checks the subset against ParseOp.

// maxScanDepth bounds nesting inside data for the scan (deeper: ParseOp).
const maxScanDepth = 64

// ScanPublish parses msg as a publish op if it is in the fast subset.
// op.Data aliases msg (valid while msg is); the topic comes from intern
// (nil: a fresh string), so a caller can reuse one string per topic.
func ScanPublish(msg []byte, intern func([]byte) string) (op Op, ok bool) {
	s := scanner{b: msg}
	s.ws()
	if !s.byte('{') {
		return op, false
	}
	var topic, data []byte
	var haveOp, haveID, haveEph bool
	for {
		s.ws()
		key, kok := s.plainString()
		if !kok {
			return op, false
		}
		s.ws()
		if !s.byte(':') {
			return op, false
		}
		s.ws()
		switch string(key) {
		case "op":
			v, vok := s.plainString()
			if !vok || haveOp || string(v) != OpPublish {
				return op, false
			}
			haveOp = true
		case "topic":
			v, vok := s.plainString()
			if !vok || topic != nil || !ValidTopicBytes(v) {
				return op, false
			}
			topic = v
		case "data":
			start := s.i
			if data != nil || s.i >= len(s.b) || s.b[s.i] == 'n' || !s.value(0) {
				return op, false // null data: ParseOp's answer
			}
			data = s.b[start:s.i]
		case "id":
			v, vok := s.uint()
			if !vok || haveID {
				return op, false
			}
			op.ID, haveID = v, true
		case "ephemeral":
			switch {
			case haveEph:
				return op, false
			case s.literal("true"):
				op.Ephemeral = true
			case s.literal("false"):
			default:
				return op, false
			}
			haveEph = true
		default:
			return op, false
		}
		s.ws()
		if s.byte(',') {
			continue
		}
		if !s.byte('}') {
			return op, false
		}
		break
	}
	s.ws()
	if s.i != len(s.b) || !haveOp || topic == nil || data == nil {
		return op, false
	}
	op.Op = OpPublish
	if intern != nil {
		op.Topic = intern(topic)
	} else {
		op.Topic = string(topic)
	}
	op.Data = data
	return op, true
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes (what a
// key or a topic is); anything else is not for the fast path.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// uint reads a JSON integer that fits uint64 (no sign, fraction, exponent
// or leading zero).
func (s *scanner) uint() (uint64, bool) {
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false // overflow: json refuses it
		}
		v = v*10 + d
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 1 && s.b[start] == '0' {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E', '-', '+':
			return 0, false
		}
	}
	return v, true
}

// value skips one JSON value, validating it as encoding/json does.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxScanDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		s.ws()
		if s.byte('}') {
			return true
		}
		for {
			s.ws()
			if !s.string() {
				return false
			}
			s.ws()
			if !s.byte(':') {
				return false
			}
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.byte('}') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.byte(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.byte(']') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == '"':
		return s.string()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// string skips a JSON string; escapes must be valid, control characters
// are refused, other bytes pass (json keeps invalid UTF-8 in a RawMessage).
func (s *scanner) string() bool {
	if !s.byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				s.i += 5
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.byte('.') && !s.digits() {
		return false
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if !s.byte('+') {
			s.byte('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
