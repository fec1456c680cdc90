package server

import (
	"testing"
	"unsafe"
)

// TestSubListKeepsConnSmall: subList replaces a slice header; conn must not
// grow into the next size class (112 → 128 B).
func TestSubListKeepsConnSmall(t *testing.T) {
	if n := unsafe.Sizeof(subList{}); n != 24 {
		t.Fatalf("subList is %d B, want 24 (a slice header)", n)
	}
	if n := unsafe.Sizeof(conn{}); n > 112 {
		t.Fatalf("conn is %d B, want ≤ 112", n)
	}
}

func TestSubListAddRemove(t *testing.T) {
	lts := make([]loopTopic, 4)
	var s subList
	for i := range lts {
		s.add(subRef{lt: &lts[i], pos: int32(i)})
	}
	check := func(want ...int) {
		t.Helper()
		if s.len() != len(want) {
			t.Fatalf("len %d, want %d", s.len(), len(want))
		}
		for i, w := range want {
			if s.at(i).lt != &lts[w] || s.at(i).pos != int32(w) {
				t.Fatalf("at(%d) = topic %d, want %d", i, s.at(i).pos, w)
			}
		}
	}
	check(0, 1, 2, 3)
	s.removeAt(0) // the last moves into the inline slot
	check(3, 1, 2)
	s.removeAt(2)
	check(3, 1)
	s.removeAt(1)
	check(3)
	if s.more != nil {
		t.Fatal("one subscription left: the overflow slice should be freed")
	}
	s.removeAt(0)
	check()
	s.add(subRef{lt: &lts[2], pos: 2})
	check(2)
}
