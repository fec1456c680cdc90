package server

import (
	"net"
	"testing"
	"unsafe"
)

func TestOriginPatterns(t *testing.T) {
	o, err := parseOrigins("https://app.example.com, https://*.example.org, http://localhost:3000")
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"": true, "https://app.example.com": true, "https://APP.example.com": true,
		"https://a.example.org": true, "https://a-b.c.example.org": true, "http://localhost:3000": true,
		"https://example.org": false, "https://.example.org": false, "https://a..example.org": false,
		"https://a/b.example.org": false, "https://a:1@b.example.org": false, "http://localhost:3001": false,
		"https://app.example.com.evil.com": false, "null": false,
	} {
		if got := o.allowed([]byte(origin)); got != want {
			t.Errorf("allowed(%q) = %v, want %v", origin, got, want)
		}
	}
	for _, list := range []string{"", " , ", "*", "https://a.com,*"} {
		if o, err := parseOrigins(list); err != nil || !o.allowed([]byte("https://any.thing")) {
			t.Errorf("%q should allow any origin (%v)", list, err)
		}
	}
	for _, bad := range []string{"example.com", "https://*.a.*.com", "https://a*.com", "*.example.com", "https://*example.com"} {
		if _, err := parseOrigins(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIPLimiterForgetsZeroEntries(t *testing.T) {
	p := newIPLimiter(2)
	a := ipKey(&net.TCPAddr{IP: net.ParseIP("10.0.0.1")})
	b := ipKey(&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1")}) // the same client, v4-mapped
	if a != b || !p.admit(a) || !p.admit(b) || p.admit(a) {
		t.Fatalf("limit 2 for %v/%v", a, b)
	}
	p.release(a)
	p.release(a)
	if len(p.m) != 0 {
		t.Fatalf("map keeps %v", p.m)
	}
	// IPv6 clients count per /64.
	x := ipKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1")})
	y := ipKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9")})
	z := ipKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1")})
	if x != y || x == z {
		t.Fatalf("/64 keys: %v %v %v", x, y, z)
	}
}

func TestConnBucket(t *testing.T) {
	lc := LimitsConfig{ConnRate: 10, ConnBurst: 4} // 2 loops: 5/s and 2 each
	b := newConnBucket(&lc, 2, 1000)
	n := 0
	for b.take(1000) {
		n++
	}
	if n != 2 {
		t.Fatalf("burst per loop %d, want 2", n)
	}
	if !b.take(1200) || b.take(1200) { // 200 ms at 5/s: one token
		t.Fatal("refill after 200 ms")
	}
	if b := newConnBucket(&LimitsConfig{}, 2, 0); !b.take(0) {
		t.Fatal("no rate: unlimited")
	}
}

// The limits' per-connection state (3 bytes; the partial-input clock is in
// loop.partialSince) sits with the other small fields after lastRead, in
// the conn's last 16 bytes, so conn does not grow.
func TestConnLimitFieldsUsePadding(t *testing.T) {
	var c conn
	tail := unsafe.Offsetof(c.lastRead) + 4
	for name, off := range map[string]uintptr{"tokens": unsafe.Offsetof(c.tokens), "flags": unsafe.Offsetof(c.flags)} {
		if off < tail || off >= unsafe.Sizeof(c) || unsafe.Sizeof(c)-off > 16 {
			t.Fatalf("limit field %s at %d is not among the small fields after lastRead (%d); conn is %d bytes", name, off, tail, unsafe.Sizeof(c))
		}
	}
	if size := unsafe.Sizeof(c); size > 64 {
		t.Fatalf("conn is %d bytes: over 64 it moves to the 80-byte size class", size)
	}
}
