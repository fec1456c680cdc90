package codec

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

var (
	ap4  = netip.MustParseAddrPort("203.0.113.7:51234")
	ap4d = netip.MustParseAddrPort("10.0.0.1:443")
	ap6  = netip.MustParseAddrPort("[2001:db8::7]:40000")
	ap6d = netip.MustParseAddrPort("[2001:db8::1]:443")
)

type proxyCase struct {
	name string
	in   string
	want ProxyHeader // zero: an error is expected
	err  *ProxyError
	n    int // bytes used; 0 = len(in) when no error
}

func proxyCases() []proxyCase {
	v2 := func(src, dst netip.AddrPort, tlv string) string {
		return string(AppendProxyHeaderV2(nil, src, dst, []byte(tlv)))
	}
	raw2 := func(cmd, fam byte, body string) string {
		b := append([]byte(nil), proxyV2Sig...)
		b = append(b, cmd, fam)
		b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
		return string(b) + body
	}
	sig := string(proxyV2Sig)
	return []proxyCase{
		{name: "v1 tcp4", in: "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", want: ProxyHeader{Version: 1, Source: ap4, Destination: ap4d}},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n", want: ProxyHeader{Version: 1, Source: ap6, Destination: ap6d}},
		{name: "v1 unknown", in: "PROXY UNKNOWN\r\n", want: ProxyHeader{Version: 1, Local: true}},
		{name: "v1 unknown with addresses", in: "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", want: ProxyHeader{Version: 1, Local: true}},
		{name: "v1 then request", in: "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET /ws HTTP/1.1\r\n", want: ProxyHeader{Version: 1, Source: ap4, Destination: ap4d}, n: 43},
		{name: "v1 max length", in: "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			want: ProxyHeader{Version: 1, Source: netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{name: "v1 port 0", in: "PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n", want: ProxyHeader{Version: 1, Source: netip.MustParseAddrPort("1.2.3.4:0"), Destination: netip.MustParseAddrPort("5.6.7.8:0")}},
		{name: "v1 too long", in: "PROXY UNKNOWN " + strings.Repeat("x", 100), err: ErrProxyV1TooLong},
		{name: "v1 bare LF", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", err: ErrProxyV1Malformed},
		{name: "v1 CR without LF", in: "PROXY TCP4 1.2.3.4\r 5.6.7.8", err: ErrProxyV1Malformed},
		{name: "v1 lower case", in: "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 double space", in: "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 trailing space", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", err: ErrProxyV1Malformed},
		{name: "v1 missing port", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", err: ErrProxyV1Malformed},
		{name: "v1 port too big", in: "PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n", err: ErrProxyV1Malformed},
		{name: "v1 port leading zero", in: "PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n", err: ErrProxyV1Malformed},
		{name: "v1 port sign", in: "PROXY TCP4 1.2.3.4 5.6.7.8 +80 1\r\n", err: ErrProxyV1Malformed},
		{name: "v1 ipv6 in tcp4", in: "PROXY TCP4 ::1 ::1 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 ipv4 in tcp6", in: "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 ipv4 leading zero", in: "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 zone", in: "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 hostname", in: "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", err: ErrProxyV1Malformed},
		{name: "v1 no protocol", in: "PROXY \r\n", err: ErrProxyV1Malformed},
		{name: "v1 unknown with CR", in: "PROXY UNKNOWN a\rb\r\n", err: ErrProxyV1Malformed},
		{name: "plain HTTP", in: "GET /ws HTTP/1.1\r\n", err: ErrProxyMissing},
		{name: "lower-case proxy", in: "proxy TCP4", err: ErrProxyMissing},
		{name: "TLS client hello", in: "\x16\x03\x01\x02\x00", err: ErrProxyMissing},
		{name: "v2 tcp4", in: v2(ap4, ap4d, ""), want: ProxyHeader{Version: 2, Source: ap4, Destination: ap4d}},
		{name: "v2 tcp6", in: v2(ap6, ap6d, ""), want: ProxyHeader{Version: 2, Source: ap6, Destination: ap6d}},
		{name: "v2 tcp4 with TLVs", in: v2(ap4, ap4d, "\x02\x00\x0bexample.com\x04\x00\x00\x01\x00\x02h2"), want: ProxyHeader{Version: 2, Source: ap4, Destination: ap4d}},
		{name: "v2 then request", in: v2(ap4, ap4d, "") + "GET /ws", want: ProxyHeader{Version: 2, Source: ap4, Destination: ap4d}, n: 28},
		{name: "v2 local", in: raw2(0x20, 0x00, ""), want: ProxyHeader{Version: 2, Local: true}},
		{name: "v2 local ignores its block", in: raw2(0x20, 0x12, "whatever"), want: ProxyHeader{Version: 2, Local: true}},
		{name: "v2 unspec", in: raw2(0x21, 0x00, ""), want: ProxyHeader{Version: 2, Local: true}},
		{name: "v2 unix stream", in: raw2(0x21, 0x31, strings.Repeat("\x00", 216)), want: ProxyHeader{Version: 2, Local: true}},
		{name: "v2 version 1", in: sig + "\x11\x11\x00\x0c", err: ErrProxyV2Version},
		{name: "v2 command 2", in: sig + "\x22\x11", err: ErrProxyV2Version},
		{name: "v2 udp4", in: raw2(0x21, 0x12, strings.Repeat("\x00", 12)), err: ErrProxyV2Family},
		{name: "v2 family 4", in: raw2(0x21, 0x41, strings.Repeat("\x00", 12)), err: ErrProxyV2Family},
		{name: "v2 tcp4 short", in: raw2(0x21, 0x11, strings.Repeat("\x00", 11)), err: ErrProxyV2Length},
		{name: "v2 tcp6 short", in: raw2(0x21, 0x21, strings.Repeat("\x00", 12)), err: ErrProxyV2Length},
		{name: "v2 too long", in: sig + "\x21\x11\x08\x01", err: ErrProxyV2Length},
		{name: "v2 truncated TLV", in: v2(ap4, ap4d, "\x02\x00\x0bexample"), err: ErrProxyV2TLV},
		{name: "v2 TLV stub", in: v2(ap4, ap4d, "\x02\x00"), err: ErrProxyV2TLV},
	}
}

func TestParseProxyHeader(t *testing.T) {
	for _, c := range proxyCases() {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			hdr, n, err := ParseProxyHeader(in)
			if c.err != nil {
				if err != c.err {
					t.Fatalf("err = %v, want %v (hdr %+v n %d)", err, c.err, hdr, n)
				}
				if n != 0 {
					t.Fatalf("n = %d with an error", n)
				}
				return
			}
			want := c.n
			if want == 0 {
				want = len(in)
			}
			if err != nil || n != want || hdr != c.want {
				t.Fatalf("got %+v n=%d err=%v, want %+v n=%d", hdr, n, err, c.want, want)
			}
			// Every strict prefix is incomplete, never an error or a header.
			for i := range n {
				if h, m, e := ParseProxyHeader(in[:i]); m != 0 || e != nil {
					t.Fatalf("prefix %d of %d: %+v n=%d err=%v", i, n, h, m, e)
				}
			}
		})
	}
}

// An error is reported at the first byte that rules out both versions.
func TestParseProxyHeaderRejectsEarly(t *testing.T) {
	for _, in := range []string{"G", "\r\n\r\nX", "PROXX", "\x16"} {
		if _, n, err := ParseProxyHeader([]byte(in)); err != ErrProxyMissing || n != 0 {
			t.Errorf("%q: n=%d err=%v, want ErrProxyMissing", in, n, err)
		}
	}
	// The v1 line is cut off at 107 bytes even while no LF has come.
	long := []byte("PROXY UNKNOWN " + strings.Repeat("a", ProxyV1MaxLen-14))
	if _, _, err := ParseProxyHeader(long); err != ErrProxyV1TooLong {
		t.Errorf("107 bytes without LF: %v", err)
	}
	if _, n, err := ParseProxyHeader(long[:ProxyV1MaxLen-1]); n != 0 || err != nil {
		t.Errorf("106 bytes without LF: n=%d err=%v, want incomplete", n, err)
	}
}

func TestAppendProxyHeaderRoundTrip(t *testing.T) {
	for _, p := range [][2]netip.AddrPort{{ap4, ap4d}, {ap6, ap6d}, {{}, {}}} {
		for _, b := range [][]byte{AppendProxyHeaderV1(nil, p[0], p[1]), AppendProxyHeaderV2(nil, p[0], p[1], nil)} {
			hdr, n, err := ParseProxyHeader(b)
			if err != nil || n != len(b) || hdr.Source != p[0] || hdr.Destination != p[1] || hdr.Local != !p[0].IsValid() {
				t.Errorf("%q: %+v n=%d err=%v", b, hdr, n, err)
			}
		}
	}
}

func BenchmarkParseProxyHeader(b *testing.B) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"v1", AppendProxyHeaderV1(nil, ap4, ap4d)},
		{"v2", AppendProxyHeaderV2(nil, ap6, ap6d, nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, n, _ := ParseProxyHeader(c.in); n == 0 {
					b.Fatal("not parsed")
				}
			}
		})
	}
}

// FuzzParseProxyHeader: never panics; a header parses the same from any
// prefix on (incomplete, then the same result), never claims more bytes
// than it was given, and re-encodes to an equivalent header.
func FuzzParseProxyHeader(f *testing.F) {
	for _, c := range proxyCases() {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		hdr, n, err := ParseProxyHeader(in)
		if err != nil {
			if n != 0 {
				t.Fatalf("n=%d with err %v", n, err)
			}
			return
		}
		if n == 0 {
			if hdr != (ProxyHeader{}) {
				t.Fatalf("incomplete but header %+v", hdr)
			}
			if len(in) >= ProxyV2MaxLen+proxyV2HeaderLen {
				t.Fatalf("%d bytes still incomplete: unbounded", len(in))
			}
			return
		}
		if n > len(in) || n > ProxyV2MaxLen+proxyV2HeaderLen {
			t.Fatalf("n=%d of %d", n, len(in))
		}
		// The header alone parses the same; every strict prefix is incomplete.
		again, n2, err2 := ParseProxyHeader(in[:n])
		if again != hdr || n2 != n || err2 != nil {
			t.Fatalf("reparse: %+v n=%d err=%v", again, n2, err2)
		}
		for _, cut := range []int{n - 1, n / 2, 1} {
			if cut >= 0 && cut < n {
				if h, m, e := ParseProxyHeader(in[:cut]); m != 0 || e != nil {
					t.Fatalf("prefix %d of %d: %+v n=%d err=%v", cut, n, h, m, e)
				}
			}
		}
		if hdr.Version != 1 && hdr.Version != 2 || hdr.Local == hdr.Source.IsValid() || hdr.Source.IsValid() != hdr.Destination.IsValid() {
			t.Fatalf("inconsistent header %+v", hdr)
		}
		if hdr.Local {
			return
		}
		// Re-encoding the addresses gives back the same header.
		enc := AppendProxyHeaderV1(nil, hdr.Source, hdr.Destination)
		if hdr.Version == 2 {
			enc = AppendProxyHeaderV2(nil, hdr.Source, hdr.Destination, nil)
		}
		back, m, e := ParseProxyHeader(enc)
		if e != nil || m != len(enc) || back != hdr {
			t.Fatalf("re-encoded %q: %+v n=%d err=%v, want %+v", enc, back, m, e, hdr)
		}
	})
}
