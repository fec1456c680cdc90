package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/wire"
)

// Abuse limits (issue 11). Each is enforced where it is cheapest: the
// connection rate and the per-IP count at accept, the Origin during the
// handshake, the client message rate per message, and the handshake and
// message deadlines in the per-loop sweep. Each rejection is counted in
// LimitStats (GET /stats).

// conn.flags bits.
const (
	flagIPCounted  uint8 = 1 << iota // counted in the node's ipLimiter: release at close
	flagPartial                      // a frame or message is incomplete since loop.partialSince[c]
	flagRateWarned                   // got its rate_limited error; the next excess closes it
	flagKeyWait                      // the handshake already waited once for a JWKS re-fetch (authz.go)
	flagAssembling                   // a fragmented message is being assembled in loop.partial[c]
	flagProxyAwait                   // --proxy-protocol: the PROXY header has not arrived yet (proxy.go)
	flagProxied                      // the PROXY header named the client: its address is in loop.proxied (proxy.go)
	flagPinged                       // a ping is outstanding since lastRead (sweep.go)
)

// LimitStats counts what the limits refused; it is part of Stats.
type LimitStats struct {
	RejectedIP        uint64 `json:"rejected_ip"`        // upgrades refused: --max-conns-per-ip (429)
	RejectedRate      uint64 `json:"rejected_rate"`      // connections refused: --max-conn-rate (503)
	RejectedOrigin    uint64 `json:"rejected_origin"`    // upgrades refused: Origin not in --allowed-origins (403)
	HandshakeTimeouts uint64 `json:"handshake_timeouts"` // closed: no complete upgrade within --handshake-timeout of accept
	MessageTimeouts   uint64 `json:"message_timeouts"`   // closed 1008: a frame or message incomplete for --message-timeout
	RateLimited       uint64 `json:"rate_limited"`       // client messages dropped with a rate_limited error
	RateClosed        uint64 `json:"rate_closed"`        // connections closed 1008 for going on over --max-client-rate
}

// loopLimits is one loop's part of the limits; loop goroutine only, except
// the counters.
type loopLimits struct {
	stats        limitCounters
	connRate     connBucket
	clientRate   float64 // messages per second per connection; 0 = unlimited
	clientBurst  int
	clientCredit float64 // refill earned since the last sweep, not yet handed out
	lastRefill   uint32  // loop clock of the last client refill
	ipReject     []byte  // the 429 answer, built once
}

func (ll *loopLimits) init(n *Node) {
	lc := &n.cfg.Limits
	ll.connRate, ll.lastRefill = newConnBucket(lc, n.cfg.Loops, n.clock()), n.clock()
	ll.ipReject = httpJSONError(429, "too_many_connections",
		"too many connections from your address: at most "+strconv.Itoa(lc.MaxConnsPerIP), false)
	if !n.cfg.Echo && lc.ClientRate > 0 {
		ll.clientRate, ll.clientBurst = lc.ClientRate, lc.ClientBurst
	}
}

// limitCounters is one loop's LimitStats, written by the loop goroutine.
type limitCounters struct {
	rejectedIP, rejectedRate, rejectedOrigin atomic.Uint64
	handshakeTimeouts, messageTimeouts       atomic.Uint64
	rateLimited, rateClosed                  atomic.Uint64
}

func (s *LimitStats) add(c *limitCounters) {
	s.RejectedIP += c.rejectedIP.Load()
	s.RejectedRate += c.rejectedRate.Load()
	s.RejectedOrigin += c.rejectedOrigin.Load()
	s.HandshakeTimeouts += c.handshakeTimeouts.Load()
	s.MessageTimeouts += c.messageTimeouts.Load()
	s.RateLimited += c.rateLimited.Load()
	s.RateClosed += c.rateClosed.Load()
}

// ---------------------------------------------------------------------------
// Connections per client IP

// keyLimiter counts open connections per key (a client address here; a
// user works the same) for the whole process (all loops). Zero entries are
// deleted, so the map holds only keys with open connections.
type keyLimiter[K comparable] struct {
	max int32 // 0 = unlimited
	mu  sync.Mutex
	m   map[K]int32
}

// ipLimiter is --max-conns-per-ip.
type ipLimiter = keyLimiter[netip.Addr]

func newIPLimiter(max int) *ipLimiter { return newKeyLimiter[netip.Addr](max) }

func newKeyLimiter[K comparable](max int) *keyLimiter[K] {
	return &keyLimiter[K]{max: int32(min(max, math.MaxInt32)), m: make(map[K]int32)}
}

// admit counts one more connection for k, or reports false at the limit.
func (p *keyLimiter[K]) admit(k K) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.m[k]
	if n >= p.max {
		return false
	}
	p.m[k] = n + 1
	return true
}

// release forgets one connection of k.
func (p *keyLimiter[K]) release(k K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.m[k] - 1; n > 0 {
		p.m[k] = n
	} else {
		delete(p.m, k)
	}
}

// ipKey is what one "client IP" is: the IPv4 address, or the /64 of an
// IPv6 address (one subscriber line usually gets a whole /64).
func ipKey(addr net.Addr) netip.Addr {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ta.IP)
	return ipKeyOf(a)
}

// ipKeyOf is ipKey of an address (the client's, PROXY header included).
func ipKeyOf(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// peerAddr is the client address the per-IP limit counts. It must return
// the same value at admission and at release. (With PROXY protocol the real
// client address replaces the socket's: admitIP runs after the header.)
func (c *conn) peerAddr() netip.Addr { return ipKeyOf(c.clientAddr().Addr()) }

// admitIP counts c against its address; over the limit it returns the
// answer to send before closing.
func (l *loop) admitIP(c *conn) []byte {
	ips := l.node.ips
	if ips == nil {
		return nil
	}
	if !ips.admit(c.peerAddr()) {
		l.lim.stats.rejectedIP.Add(1)
		return l.lim.ipReject
	}
	c.flags |= flagIPCounted
	return nil
}

// releaseIP undoes admitIP when c closes.
func (l *loop) releaseIP(c *conn) {
	if c.flags&flagIPCounted != 0 {
		c.flags &^= flagIPCounted
		l.node.ips.release(c.peerAddr())
	}
}

// ---------------------------------------------------------------------------
// New connections per second: a token bucket per loop

type connBucket struct {
	rate   float64 // tokens per ms; 0 = unlimited
	burst  float64
	tokens float64
	last   uint32 // loop clock of the last refill
}

func newConnBucket(lc *LimitsConfig, loops int, now uint32) connBucket {
	if lc.ConnRate <= 0 {
		return connBucket{}
	}
	burst := max(1, math.Ceil(float64(lc.ConnBurst)/float64(loops)))
	return connBucket{rate: lc.ConnRate / float64(loops) / 1000, burst: burst, tokens: burst, last: now}
}

// take spends one token, refilling from the loop clock first.
func (b *connBucket) take(now uint32) bool {
	if b.rate == 0 {
		return true
	}
	b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

var http408 = httpJSONError(408, "handshake_timeout", "the upgrade request did not complete in time", false)

var http503Rate = httpJSONError(503, "rate_limited", "too many new connections, retry in a second", true)

// admitRate answers a connection over the rate with 503 (nil: admitted).
func (l *loop) admitRate() []byte {
	if l.lim.connRate.take(l.node.clock()) {
		return nil
	}
	l.lim.stats.rejectedRate.Add(1)
	return http503Rate
}

// httpJSONError is a complete HTTP response with a JSON error body, in the
// control API's shape.
func httpJSONError(status int, code, msg string, retry bool) []byte {
	body, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
	body = append(body, '\n')
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n", status, http.StatusText(status))
	if retry {
		b.WriteString("Retry-After: 1\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return []byte(b.String())
}

// ---------------------------------------------------------------------------
// Origin allow-list

// originPattern is one allowed origin: exact, or prefix*suffix where the *
// stands for one or more host labels.
type originPattern struct {
	prefix, suffix string
	wild           bool
}

type origins struct {
	any      bool
	patterns []originPattern
}

func parseOrigins(list string) (*origins, error) {
	o := &origins{}
	for _, p := range strings.Split(list, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "":
			continue
		case p == "*":
			o.any = true
			continue
		}
		pre, suf, wild := strings.Cut(p, "*")
		if wild && (strings.Contains(suf, "*") || !strings.HasSuffix(pre, "://") || !strings.HasPrefix(suf, ".")) {
			return nil, fmt.Errorf("config: bad allowed origin %q: want scheme://host[:port] with at most one * as the first host label (https://*.example.com)", p)
		}
		if !wild && !strings.Contains(p, "://") && p != "null" {
			return nil, fmt.Errorf("config: bad allowed origin %q: want scheme://host[:port]", p)
		}
		o.patterns = append(o.patterns, originPattern{prefix: pre, suffix: suf, wild: wild})
	}
	if len(o.patterns) == 0 {
		o.any = true // "" allows every origin
	}
	return o, nil
}

// allowed reports whether a request with this Origin header may upgrade;
// requests without one (not from a browser) always may.
func (o *origins) allowed(origin []byte) bool {
	if o.any || len(origin) == 0 {
		return true
	}
	s := strings.ToLower(string(origin))
	for _, p := range o.patterns {
		if !p.wild {
			if s == p.prefix {
				return true
			}
			continue
		}
		rest, ok := strings.CutPrefix(s, p.prefix)
		if !ok {
			continue
		}
		label, ok := strings.CutSuffix(rest, p.suffix)
		if ok && label != "" && validHostLabels(label) {
			return true
		}
	}
	return false
}

// validHostLabels: what a * may stand for (letters, digits, '-', '.').
func validHostLabels(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.') {
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.'
}

// errOrigin is the handshake's answer to an Origin not allowed.
var (
	errOrigin = &codec.HTTPError{Status: 403, Message: "origin not allowed"}
	http403   = httpJSONError(403, "origin_not_allowed", "this origin may not connect (--allowed-origins)", false)
)

// checkOrigin is the handshake's Origin check (nil: allowed).
func (l *loop) checkOrigin(origin []byte) *codec.HTTPError {
	if l.node.origins.allowed(origin) {
		return nil
	}
	l.lim.stats.rejectedOrigin.Add(1)
	return errOrigin
}

// appendHandshakeError is the answer to a failed upgrade: the limits'
// refusals in JSON, like the control API's errors; the rest from codec.
func appendHandshakeError(dst []byte, e *codec.HTTPError) []byte {
	if e == errOrigin {
		return append(dst, http403...)
	}
	return codec.AppendHTTPError(dst, e)
}

// ---------------------------------------------------------------------------
// Client messages per second per connection

// clientRateTokens is the bucket a new connection starts with.
func (l *loop) clientRateTokens() uint16 { return uint16(l.lim.clientBurst) }

// allowMessage spends one of c's tokens for a client message (data message
// or ping). Without one, the first excess message gets a rate_limited error
// and is dropped; another before the bucket is full again closes c with
// 1008. It reports whether the message may be handled.
func (l *loop) allowMessage(c *conn) bool {
	if l.lim.clientRate == 0 {
		return true
	}
	if c.tokens > 0 {
		c.tokens--
		return true
	}
	if c.flags&flagRateWarned == 0 {
		c.flags |= flagRateWarned
		l.lim.stats.rateLimited.Add(1)
		l.replyError(&wire.OpError{Code: "rate_limited", Message: "rate limit exceeded: at most " +
			strconv.FormatFloat(l.lim.clientRate, 'f', -1, 64) + " messages per second; this message was dropped, the next one closes the connection"})
		return false
	}
	l.lim.stats.rateClosed.Add(1)
	c.fail(codec.ClosePolicyViolation, "rate limit exceeded")
	return false
}

// refillClients gives every open connection its share of the time since
// the last sweep; a full bucket forgives an earlier warning. Loop goroutine.
func (l *loop) refillClients() uint16 {
	if l.lim.clientRate == 0 {
		return 0
	}
	l.lim.clientCredit += float64(l.now-l.lim.lastRefill) * l.lim.clientRate / 1000
	l.lim.lastRefill = l.now
	add := min(math.Floor(l.lim.clientCredit), float64(l.lim.clientBurst))
	l.lim.clientCredit -= add
	if l.lim.clientCredit > float64(l.lim.clientBurst) {
		l.lim.clientCredit = 0 // nothing to keep beyond a full bucket
	}
	return uint16(add)
}

func (l *loop) refillClient(c *conn, add uint16) {
	if add == 0 {
		return
	}
	c.tokens = uint16(min(int(c.tokens)+int(add), l.lim.clientBurst))
	if int(c.tokens) == l.lim.clientBurst {
		c.flags &^= flagRateWarned
	}
}

// ---------------------------------------------------------------------------
// Incomplete frames and messages

// coarse is the loop clock in 16 ms units, the resolution of partialSince.
// The time lives in a per-loop table (loop.partialSince) while flagPartial
// is set: few connections are ever mid-frame, and conn stays at 64 bytes.
func coarse(ms uint32) uint16 { return uint16(ms >> 4) }

// trackPartial records when c's input became incomplete (a frame not yet
// whole, or a message with fragments to come); the sweep closes c if it
// stays so for MessageTimeout. leftover: bytes of a frame header or control
// frame are still buffered.
func (l *loop) trackPartial(c *conn, leftover bool) {
	if !leftover && c.flags&flagAssembling == 0 && !l.inMessage(c) {
		l.forgetPartial(c)
		return
	}
	if c.flags&flagPartial == 0 {
		c.flags |= flagPartial
		if l.partialSince == nil {
			l.partialSince = make(map[*conn]uint16)
		}
		l.partialSince[c] = coarse(l.now)
	}
}

// forgetPartial clears flagPartial and its start time.
func (l *loop) forgetPartial(c *conn) {
	if c.flags&flagPartial != 0 {
		c.flags &^= flagPartial
		delete(l.partialSince, c)
	}
}

// partialExpired reports whether c's incomplete input is too old.
func (l *loop) partialExpired(c *conn, timeout uint32) bool {
	return c.flags&flagPartial != 0 && uint32(coarse(l.now)-l.partialSince[c])<<4 >= timeout
}

// handshakeExpired: the deadline counts from accept (lastRead is not moved
// by the bytes of the upgrade request), so trickling it does not extend it.
func (l *loop) handshakeExpired(c *conn, timeout uint32) bool {
	return l.now-c.lastRead >= timeout
}
