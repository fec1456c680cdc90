package server

import "testing"

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
