package server

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/wire"
)

// Per-user state. Only connections with a verified token (c.ident != nil)
// are registered, at the upgrade, and forgotten in OnClose: anonymous
// connections pay nothing, and nothing here runs per delivery.
//
//   - userCounts: the node's count of connections per user, under a mutex
//     (touched at upgrade and close only): the --max-conns-per-user limit
//     and GET /users/{user}.
//   - loop.users: each loop's user -> its connections on that loop, owned by
//     the loop goroutine: what the control API's user actions walk.

// DefaultMaxConnsPerUser is the default of --max-conns-per-user: enough for
// a user's tabs and devices, small enough that one leaked token cannot
// hold a node's capacity.
const DefaultMaxConnsPerUser = 100

// CodeTooManyConnections is the JSON error code of an upgrade refused with
// 429 because the user already has MaxConnsPerUser connections.
const CodeTooManyConnections = "too_many_connections"

// userCounts counts the open connections of each user on this node: a
// keyLimiter (limits.go) keyed by user.
type userCounts struct {
	lim      *keyLimiter[string]
	rejected atomic.Uint64 // upgrades refused by the per-user limit
}

// newUserCounts makes the counts for a limit of max (0 = unlimited).
func newUserCounts(max int) *userCounts {
	if max <= 0 {
		max = math.MaxInt32
	}
	return &userCounts{lim: newKeyLimiter[string](max)}
}

// acquire counts one more connection of user, unless it is at the limit.
func (u *userCounts) acquire(user string) bool {
	if !u.lim.admit(user) {
		u.rejected.Add(1)
		return false
	}
	return true
}

func (u *userCounts) release(user string) { u.lim.release(user) }

// count is the open connections of user.
func (u *userCounts) count(user string) int {
	u.lim.mu.Lock()
	defer u.lim.mu.Unlock()
	return int(u.lim.m[user])
}

// users is how many users have an open connection.
func (u *userCounts) users() int {
	u.lim.mu.Lock()
	defer u.lim.mu.Unlock()
	return len(u.lim.m)
}

// UserStats are the per-user figures in /stats.
type UserStats struct {
	Users           int    `json:"users"`              // users with at least one open connection
	MaxConnsPerUser int    `json:"max_conns_per_user"` // 0 = unlimited
	Rejected        uint64 `json:"rejected_user"`      // upgrades refused with 429 too_many_connections
}

func (n *Node) userStats() UserStats {
	return UserStats{Users: n.users.users(), MaxConnsPerUser: n.cfg.Users.limit(), Rejected: n.users.rejected.Load()}
}

// admitUser registers an upgrading connection of a verified user, or
// returns the 429 answer when the user is at its limit. Loop goroutine.
func (l *loop) admitUser(c *conn, user string) *codec.HTTPError {
	max := l.node.cfg.Users.limit()
	if !l.node.users.acquire(user) {
		return &codec.HTTPError{Status: 429, Code: CodeTooManyConnections,
			Message: "user " + strconv.Quote(user) + " already has " + strconv.Itoa(max) + " connections, the limit per user: close one first"}
	}
	if l.users == nil {
		l.users = make(map[string]userEntry)
	}
	e, ok := l.users[user]
	switch {
	case !ok:
		e.one = c // the common case: no list allocated
	case e.more == nil:
		e.more = &userConns{}
		e.more.add(e.one)
		e.more.add(c)
		e.one = nil
	default:
		e.more.add(c)
	}
	l.users[user] = e
	return nil
}

// forgetUser undoes admitUser when c closes. Loop goroutine.
func (l *loop) forgetUser(c *conn) {
	if c.ident == nil {
		return
	}
	user := c.ident.User
	l.node.users.release(user)
	e := l.users[user]
	if e.one == c || (e.more != nil && e.more.remove(c)) {
		delete(l.users, user)
	}
}

// userEntry is one user's connections on one loop: one, or more of them.
type userEntry struct {
	one  *conn
	more *userConns
}

// userConns are one user's connections on one loop. A short list is
// scanned; a long one (a shared token, unlimited) keeps an index so that
// closing its connections one by one stays linear overall.
type userConns struct {
	list []*conn
	pos  map[*conn]int32 // position in list; nil until the list is long
}

const userIndexAt = 32

func (u *userConns) add(c *conn) {
	u.list = append(u.list, c)
	switch {
	case u.pos != nil:
		u.pos[c] = int32(len(u.list) - 1)
	case len(u.list) > userIndexAt:
		u.pos = make(map[*conn]int32, len(u.list))
		for i, x := range u.list {
			u.pos[x] = int32(i)
		}
	}
}

// remove drops c and reports whether the list is now empty.
func (u *userConns) remove(c *conn) bool {
	i := -1
	if u.pos != nil {
		if p, ok := u.pos[c]; ok {
			i = int(p)
			delete(u.pos, c)
		}
	} else {
		for k, x := range u.list {
			if x == c {
				i = k
				break
			}
		}
	}
	if i >= 0 {
		last := len(u.list) - 1
		moved := u.list[last]
		u.list[i] = moved
		if u.pos != nil && moved != c {
			u.pos[moved] = int32(i)
		}
		u.list[last] = nil
		u.list = u.list[:last]
	}
	return len(u.list) == 0
}

// userActionTimeout bounds how long a control API user action waits for
// the loops; a loop that does not answer in time counts nothing.
const userActionTimeout = 5 * time.Second

// onUserLoops runs f(l) on every loop's goroutine and returns the sum of
// what they return.
func (n *Node) onUserLoops(f func(l *loop) int) (int, error) {
	loops := n.eng.allLoops()
	results := make(chan int, len(loops))
	asked := 0
	for _, l := range loops {
		if l.el == nil {
			continue // a benchmark's fake loop
		}
		asked++
		if err := l.el.Execute(context.Background(), runnable(func() { results <- f(l) })); err != nil {
			results <- 0 // stopping: this loop's connections are going anyway
		}
	}
	total := 0
	timeout := time.NewTimer(userActionTimeout)
	defer timeout.Stop()
	for range asked {
		select {
		case k := <-results:
			total += k
		case <-timeout.C:
			return total, errors.New("event loops did not answer in time")
		}
	}
	return total, nil
}

// MaxCloseReason is the longest reason (bytes) DisconnectUser accepts: a
// close frame's reason holds 123 bytes, and "; reconnect in Nms" follows it.
const MaxCloseReason = 80

// DisconnectUser closes every connection of user on this node with 4005
// and reason ("disconnected by server" if empty); reconnect > 0 adds the
// hint "; reconnect in <ms>ms", the wording of the shutdown's 1001 closes,
// which clients honour before reconnecting. It returns how many
// connections it closed. Any goroutine.
func (n *Node) DisconnectUser(user, reason string, reconnect time.Duration) (int, error) {
	if reason == "" {
		reason = "disconnected by server"
	}
	if len(reason) > MaxCloseReason {
		reason = strings.ToValidUTF8(reason[:MaxCloseReason], "") // no rune cut in half
	}
	if ms := reconnect.Milliseconds(); ms > 0 {
		reason += "; reconnect in " + strconv.FormatInt(ms, 10) + "ms"
	}
	return n.onUserLoops(func(l *loop) int {
		l.now = n.clock()
		k := 0
		for _, c := range l.userList(user) {
			if c.phase == phaseOpen {
				c.fail(codec.CloseCode(wire.CloseDisconnected), reason)
				k++
			}
		}
		return k
	})
}

// UnsubscribeUser removes every connection of user on this node from topic;
// each one that was subscribed gets {"type":"unsubscribed","topics":[topic],
// "by":"server"}. It returns how many connections were unsubscribed.
func (n *Node) UnsubscribeUser(user, topic string) (int, error) {
	return n.onUserLoops(func(l *loop) int {
		k := 0
		for _, c := range l.userList(user) {
			if c.phase == phaseOpen && l.unsubscribe(c, topic) {
				c.write(appendTextFrame(l.out[:0], func(b []byte) []byte { return appendServerUnsubscribed(b, topic) }))
				k++
			}
		}
		return k
	})
}

// UserConns is the number of open connections of user on this node.
func (n *Node) UserConns(user string) (int, error) { return n.users.count(user), nil }

// nodeUsers is the control API's view of the node's user actions.
type nodeUsers struct{ n *Node }

func (u nodeUsers) Disconnect(user, reason string, reconnect time.Duration) (api.UserCount, error) {
	k, err := u.n.DisconnectUser(user, reason, reconnect)
	return api.UserCount{N: k, Workers: -1}, err
}

func (u nodeUsers) Unsubscribe(user, topic string) (api.UserCount, error) {
	k, err := u.n.UnsubscribeUser(user, topic)
	return api.UserCount{N: k, Workers: -1}, err
}

func (u nodeUsers) Conns(user string) (api.UserCount, error) {
	k, err := u.n.UserConns(user)
	return api.UserCount{N: k, Workers: -1}, err
}

func appendServerUnsubscribed(dst []byte, topic string) []byte {
	dst = wire.AppendAck(dst, "unsubscribed", []string{topic}, nil)
	return append(dst[:len(dst)-1], `,"by":"server"}`...)
}

// userLoopState is embedded in loop: its user -> connections table.
type userLoopState struct {
	users map[string]userEntry // verified connections of this loop by user; loop goroutine only
}

// userList is user's connections on this loop.
func (l *loop) userList(user string) []*conn {
	e := l.users[user]
	switch {
	case e.more != nil:
		return e.more.list
	case e.one != nil:
		return []*conn{e.one} // an admin action: one allocation is fine
	}
	return nil
}

// UsersConfig is the per-user part of Config.
type UsersConfig struct {
	// MaxConnsPerUser caps the open connections of one user (token sub) on
	// this node (in worker mode: on each worker); an upgrade above it gets
	// 429 too_many_connections. 0 = DefaultMaxConnsPerUser; negative = unlimited.
	MaxConnsPerUser int
}

func (u *UsersConfig) normalize() {
	switch {
	case u.MaxConnsPerUser == 0:
		u.MaxConnsPerUser = DefaultMaxConnsPerUser
	case u.MaxConnsPerUser < 0:
		u.MaxConnsPerUser = -1
	}
}

// limit is the effective cap, 0 = unlimited.
func (u *UsersConfig) limit() int { return max(u.MaxConnsPerUser, 0) }
