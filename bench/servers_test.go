package bench

import (
	"slices"
	"testing"
)

func TestFlushVariantNames(t *testing.T) {
	for _, ok := range []string{"fanwire", "fanwire-flush5ms", "fanwire-flush1ms", "fanwire-loops1", "gorillahub", "nbiohub", "coderhub", "uwshub", "uwshub-oneloop"} {
		if err := CheckServerName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "fanwire-flush", "fanwire-flush0s", "fanwire-flushx", "fanwire-loops0", "fanwire-loopsx", "uws", "nginx"} {
		if CheckServerName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !IsFanwire("fanwire-flush5ms") || IsFanwire("nbiohub") {
		t.Error("IsFanwire")
	}
}

func TestServerListFlushArgs(t *testing.T) {
	l := ServerList([]string{"fanwire", "fanwire-flush5ms", "nbiohub"}, "/bin/fw", "/peers")
	if l[0].Path != "/bin/fw" || l[0].Subcommand != "serve" || slices.Contains(l[0].Args, "--flush-interval") {
		t.Fatalf("fanwire: %+v", l[0])
	}
	i := slices.Index(l[1].Args, "--flush-interval")
	if l[1].Path != "/bin/fw" || i < 0 || l[1].Args[i+1] != "5ms" {
		t.Fatalf("flush variant: %+v", l[1])
	}
	if l[2].Path != "/peers/nbiohub" || l[2].Subcommand != "" {
		t.Fatalf("peer: %+v", l[2])
	}
	names := func(s []Server) (n []string) {
		for _, x := range s {
			n = append(n, x.Name)
		}
		return n
	}
	if got := names(serversFor("handshake", l)); !slices.Equal(got, []string{"fanwire", "nbiohub"}) {
		t.Errorf("handshake servers %v", got)
	}
	if got := names(serversFor("fanout", l)); len(got) != 3 {
		t.Errorf("fanout servers %v", got)
	}
}

func TestServerListVariants(t *testing.T) {
	l := ServerList([]string{"fanwire-loops1", "uwshub", "uwshub-oneloop"}, "/bin/fw", "/peers")
	if i := slices.Index(l[0].Args, "--loops"); l[0].Path != "/bin/fw" || i < 0 || l[0].Args[i+1] != "1" {
		t.Fatalf("loops variant: %+v", l[0])
	}
	SetUWSPath(l, "/cache/uwshub")
	if l[1].Path != "/cache/uwshub" || l[2].Path != "/cache/uwshub" || !slices.Contains(l[2].Args, "--publish-thread=false") || slices.Contains(l[1].Args, "--publish-thread=false") {
		t.Fatalf("uws: %+v", l[1:])
	}
	if got := WithoutUWS([]string{"fanwire", "uwshub", "nbiohub", "uwshub-oneloop"}); !slices.Equal(got, []string{"fanwire", "nbiohub"}) {
		t.Errorf("WithoutUWS: %v", got)
	}
}

func TestParseStatTimes(t *testing.T) {
	line := []byte("42 (a) b) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0 1 1 1")
	u, s, err := parseStatTimes(line)
	if err != nil || u != 2.5 || s != 0.75 {
		t.Fatalf("user %v sys %v err %v", u, s, err)
	}
}
