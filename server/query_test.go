package server

import (
	"net/url"
	"reflect"
	"testing"
)

// parseQueryInto must read a query exactly like url.ParseQuery: the same
// values per key, in order, and an error exactly when it reports one.
func TestParseQueryIntoMatchesURLParseQuery(t *testing.T) {
	for _, q := range []string{
		"", "topics=a", "topics=a,b&topics=c", "topics=a%2Cb", "topics=a+b", "a&&b=1&", "=x&y=",
		"topics=a;b", "topics=%zz&since=a:1", "since=a:1&epochs=a:E&token=t1&token=t2", "delta=fossil",
		"k=%41%42&k=%", "x=1&x=2&x=3", "&&&", "topics=prices.BTC-USD&token=eyJ.a.b",
	} {
		want, wantErr := url.ParseQuery(q)
		params, err := parseQueryInto(nil, q)
		if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
			t.Errorf("%q: error %v, want %v", q, err, wantErr)
			continue
		}
		got := url.Values{}
		for _, p := range params {
			got[p.key] = append(got[p.key], p.value)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}
