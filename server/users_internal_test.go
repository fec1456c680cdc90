package server

import (
	"testing"

	"github.com/fanwire/fanwire/server/auth"
)

// userConns keeps its list exact through adds and removes, scanned and indexed.
func TestUserConnsAddRemove(t *testing.T) {
	var u userConns
	conns := make([]*conn, 100)
	for i := range conns {
		conns[i] = &conn{}
		u.add(conns[i])
	}
	if u.pos == nil || len(u.pos) != 100 {
		t.Fatalf("index not built: %d", len(u.pos))
	}
	// Remove every other one, then the rest in reverse.
	for i := 0; i < 100; i += 2 {
		if u.remove(conns[i]) {
			t.Fatal("empty too early")
		}
	}
	if len(u.list) != 50 || len(u.pos) != 50 {
		t.Fatalf("%d listed, %d indexed", len(u.list), len(u.pos))
	}
	for i, c := range u.list {
		if u.pos[c] != int32(i) {
			t.Fatalf("index of %d is %d", i, u.pos[c])
		}
	}
	for i := 99; i >= 1; i -= 2 {
		empty := u.remove(conns[i])
		if empty != (i == 1) {
			t.Fatalf("remove %d: empty=%v", i, empty)
		}
	}
	// Small lists are scanned; a stranger is ignored.
	var v userConns
	a, b := &conn{}, &conn{}
	v.add(a)
	v.add(b)
	if v.remove(&conn{}) || v.remove(a) || v.list[0] != b || !v.remove(b) {
		t.Fatal("small list")
	}
}

// A loop's user table goes from one connection to a list and back to nothing.
func TestLoopUserTable(t *testing.T) {
	n := &Node{users: newUserCounts(0)}
	l := &loop{node: n}
	id := &auth.Identity{User: "alice"}
	conns := make([]*conn, 40)
	for i := range conns {
		conns[i] = &conn{ident: id}
		if herr := l.admitUser(conns[i], "alice"); herr != nil {
			t.Fatal(herr)
		}
		if got := len(l.userList("alice")); got != i+1 {
			t.Fatalf("after %d admits: %d listed", i+1, got)
		}
	}
	if n.users.count("alice") != 40 || n.users.users() != 1 {
		t.Fatalf("count %d, users %d", n.users.count("alice"), n.users.users())
	}
	for i, c := range conns {
		l.forgetUser(c)
		if got := len(l.userList("alice")); got != 39-i {
			t.Fatalf("after %d forgets: %d listed", i+1, got)
		}
	}
	if len(l.users) != 0 || n.users.users() != 0 {
		t.Fatalf("left: %v, %d users", l.users, n.users.users())
	}
	// One connection alone, and an anonymous one that was never admitted.
	c := &conn{ident: id}
	_ = l.admitUser(c, "alice")
	if l.users["alice"].one != c || len(l.userList("alice")) != 1 {
		t.Fatal("single connection not held inline")
	}
	l.forgetUser(&conn{})
	l.forgetUser(c)
	if len(l.users) != 0 || n.users.count("alice") != 0 {
		t.Fatal("single connection not forgotten")
	}
}
