package main

import "testing"

// usersFlagNames are the serve flags of serve_users.go (see TestServeUsageListsEveryFlagWithDefault).
var usersFlagNames = []string{"max-conns-per-user"}

func TestMaxConnsPerUserFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int // server.Config's value: 0 = default, -1 = unlimited
	}{
		{nil, 0},
		{[]string{"--max-conns-per-user", "5"}, 5},
		{[]string{"--max-conns-per-user", "0"}, -1},
	} {
		opts, err := parseServeFlags(c.args)
		if err != nil || opts.cfg.Users.MaxConnsPerUser != c.want {
			t.Errorf("%v: %d, %v; want %d", c.args, opts.cfg.Users.MaxConnsPerUser, err, c.want)
		}
	}
	if _, err := parseServeFlags([]string{"--max-conns-per-user", "-3"}); err == nil {
		t.Error("negative accepted")
	}
}
