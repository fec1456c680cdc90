package codec

// permessage-deflate negotiation (RFC 7692 section 5 and 7.1).
//
// fanwire always answers
//
//	permessage-deflate; server_no_context_takeover; client_no_context_takeover
//
// (plus server_max_window_bits=N when the client asked for it): both sides
// start every message with an empty window, so the server keeps no
// compression state between messages and one compressed frame of a publish
// is valid for every subscriber. A client that asked for a window smaller
// than 32 KiB gets compressed frames only for messages that fit its window
// (a message of at most 2^N bytes cannot refer further back than 2^N); the
// larger ones go uncompressed, which RFC 7692 allows per message.

// DeflateOffer is what the Sec-WebSocket-Extensions headers of a request
// offered, as far as permessage-deflate goes: the first acceptable offer.
type DeflateOffer struct {
	Accept bool // an acceptable permessage-deflate offer was found
	// ServerMaxWindowBits is the window the client allows the server (8-15),
	// 0 if it did not say (15). The answer repeats it.
	ServerMaxWindowBits uint8
	// Malformed: a header value broke the extension-list grammar (RFC 6455
	// 9.1); the handshake is answered 400 when compression is enabled.
	Malformed bool
}

// ErrMalformedExtensions answers a Sec-WebSocket-Extensions header that does
// not parse.
var ErrMalformedExtensions = &HTTPError{Status: 400, Message: "malformed Sec-WebSocket-Extensions header"}

// addExtensions reads one Sec-WebSocket-Extensions header value. Offers are
// considered in order, over all header lines; the first acceptable
// permessage-deflate offer wins. A permessage-deflate offer with an unknown
// or duplicate parameter or a bad value is declined, as RFC 7692 section 5
// requires; other extensions are ignored.
func (o *DeflateOffer) addExtensions(value []byte) {
	p := extParser{s: value}
	for !p.done() {
		name, ok := p.token()
		if !ok {
			if p.empty() { // "a, , b": empty list elements are allowed (RFC 7230 7)
				continue
			}
			o.Malformed = true
			return
		}
		isDeflate := equalFold(name, "permessage-deflate")
		var d deflateParams
		valid := true
		for p.param() {
			pn, pv, hasValue, ok := p.paramBody()
			if !ok {
				o.Malformed = true
				return
			}
			if isDeflate && valid {
				valid = d.set(pn, pv, hasValue)
			}
		}
		if !p.endOfElement() {
			o.Malformed = true
			return
		}
		if isDeflate && valid && !o.Accept {
			o.Accept = true
			o.ServerMaxWindowBits = d.serverBits
		}
	}
}

// deflateParams collects the parameters of one permessage-deflate offer.
type deflateParams struct {
	seen       uint8 // bit per parameter: duplicates decline the offer
	serverBits uint8
}

// set applies one parameter and reports whether the offer is still acceptable.
func (d *deflateParams) set(name, value []byte, hasValue bool) bool {
	var bit uint8
	switch {
	case equalFold(name, "server_no_context_takeover"):
		bit = 1
		if hasValue {
			return false
		}
	case equalFold(name, "client_no_context_takeover"):
		bit = 2
		if hasValue {
			return false
		}
	case equalFold(name, "server_max_window_bits"):
		bit = 4
		bits, ok := windowBits(value)
		if !hasValue || !ok {
			return false
		}
		d.serverBits = bits
	case equalFold(name, "client_max_window_bits"):
		// Without a value: the client can take a smaller window if told.
		// With one: it will use at most that. Either way our inflater copes
		// with any window, so the answer leaves it out.
		bit = 8
		if _, ok := windowBits(value); hasValue && !ok {
			return false
		}
	default:
		return false
	}
	if d.seen&bit != 0 {
		return false
	}
	d.seen |= bit
	return true
}

// windowBits parses 8..15 without leading zeros (RFC 7692 7.1.2).
func windowBits(v []byte) (uint8, bool) {
	switch {
	case len(v) == 1 && (v[0] == '8' || v[0] == '9'):
		return v[0] - '0', true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + v[1] - '0', true
	}
	return 0, false
}

// extParser walks "ext; p=v; q="x", ext2" (RFC 6455 9.1 with RFC 7230
// lists, OWS and quoted strings).
type extParser struct {
	s []byte
	i int
}

func (p *extParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *extParser) done() bool { p.ows(); return p.i >= len(p.s) }

// empty consumes an empty list element (a lone comma).
func (p *extParser) empty() bool {
	p.ows()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return true
	}
	return false
}

func (p *extParser) token() ([]byte, bool) {
	p.ows()
	start := p.i
	for p.i < len(p.s) && tokenChar[p.s[p.i]] {
		p.i++
	}
	return p.s[start:p.i], p.i > start
}

// param consumes a ";" that introduces a parameter.
func (p *extParser) param() bool {
	p.ows()
	if p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		return true
	}
	return false
}

// paramBody reads name [= token / quoted-string]; a quoted value must
// unquote to a token (RFC 6455 9.1). Values here never need unescaping to
// be compared, so a backslash inside quotes is malformed.
func (p *extParser) paramBody() (name, value []byte, hasValue, ok bool) {
	name, ok = p.token()
	if !ok {
		return nil, nil, false, false
	}
	p.ows()
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return name, nil, false, true
	}
	p.i++
	p.ows()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		p.i++
		start := p.i
		for p.i < len(p.s) && tokenChar[p.s[p.i]] {
			p.i++
		}
		if p.i >= len(p.s) || p.s[p.i] != '"' || p.i == start {
			return nil, nil, false, false
		}
		value = p.s[start:p.i]
		p.i++
		return name, value, true, true
	}
	value, ok = p.token()
	return name, value, true, ok
}

// endOfElement consumes the "," after an element, or reports the end.
func (p *extParser) endOfElement() bool {
	p.ows()
	if p.i >= len(p.s) {
		return true
	}
	if p.s[p.i] == ',' {
		p.i++
		return true
	}
	return false
}

// AppendDeflateResponse appends the Sec-WebSocket-Extensions header line
// accepting offer o (CRLF-terminated).
func AppendDeflateResponse(dst []byte, o DeflateOffer) []byte {
	dst = append(dst, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"...)
	if o.ServerMaxWindowBits != 0 {
		dst = append(dst, "; server_max_window_bits="...)
		if o.ServerMaxWindowBits >= 10 {
			dst = append(dst, '1', '0'+o.ServerMaxWindowBits-10)
		} else {
			dst = append(dst, '0'+o.ServerMaxWindowBits)
		}
	}
	return append(dst, "\r\n"...)
}
