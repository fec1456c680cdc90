package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/fanwire/fanwire/server"
)

// defineUsersFlags adds the per-user flags to fs (called from newServeFlags).
func defineUsersFlags(fs *flag.FlagSet, opts *serveOptions) {
	fs.Var((*perUserLimit)(&opts.cfg.Users.MaxConnsPerUser), "max-conns-per-user",
		"max `count` of open connections of one user (token sub) per node, or per worker with --workers; above it the upgrade gets HTTP 429 too_many_connections; 0 = unlimited")
}

// perUserLimit is --max-conns-per-user: 0 on the command line means
// unlimited, which the config spells as a negative number (its 0 is the default).
type perUserLimit int

func (p *perUserLimit) String() string {
	switch {
	case p == nil || *p == 0:
		return strconv.Itoa(server.DefaultMaxConnsPerUser)
	case *p < 0:
		return "0"
	}
	return strconv.Itoa(int(*p))
}

func (p *perUserLimit) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a count, 0 = unlimited")
	}
	if n == 0 {
		n = -1
	}
	*p = perUserLimit(n)
	return nil
}
