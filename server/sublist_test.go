package server

import (
	"math"
	"testing"
	"unsafe"
)

// TestConnStaysSmall: conn is the one object every connection pays for;
// 64 B is a size class of its own (the next is 80). The first subscription
// lives inline; the others, the slow state, a parser inside a frame and
// the time input became incomplete in per-loop side tables.
func TestConnStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 64 {
		t.Fatalf("conn is %d B, want ≤ 64", n)
	}
}

func TestSubListAddRemove(t *testing.T) {
	lts := make([]loopTopic, 4)
	c := &conn{loop: &loop{}}
	for i := range lts {
		c.addSub(subRef{lt: &lts[i], pos: int32(i)})
	}
	check := func(want ...int) {
		t.Helper()
		if c.subLen() != len(want) {
			t.Fatalf("len %d, want %d", c.subLen(), len(want))
		}
		for i, w := range want {
			if c.subAt(i).lt != &lts[w] || c.subAt(i).pos != int32(w) {
				t.Fatalf("at(%d) = topic %d, want %d", i, c.subAt(i).pos, w)
			}
		}
	}
	check(0, 1, 2, 3)
	c.removeSubAt(0) // the last moves into the inline slot
	check(3, 1, 2)
	c.removeSubAt(2)
	check(3, 1)
	c.setSubPos(1, 1)
	c.removeSubAt(1)
	check(3)
	if c.state&stateMoreSubs != 0 || len(c.loop.moreSubs) != 0 {
		t.Fatal("one subscription left: the side table entry should be gone")
	}
	c.removeSubAt(0)
	check()
	if c.sub != nil {
		t.Fatal("no subscription left, but sub is set")
	}
	c.addSub(subRef{lt: &lts[2], pos: 2})
	check(2)
	c.addSub(subRef{lt: &lts[1], pos: 1})
	c.setSubPos(1, 7)
	lts[1].subs = make([]subscriber, 8)
	if !c.subscribedTo(&lts[1]) || c.subscribedTo(&lts[0]) || c.subEntry(1) != &lts[1].subs[7] {
		t.Fatal("subscribedTo / subEntry disagree with the list")
	}
}

// TestSubscriberAfterRelative: the subscribers' "after" seqs are stored in
// 32 bits relative to the topic's afterBase; values far apart rebase them,
// and only values more than 2^32 below the highest are raised.
func TestSubscriberAfterRelative(t *testing.T) {
	lt := &loopTopic{subs: make([]subscriber, 3)}
	set := func(i int, v uint64) {
		t.Helper()
		lt.setAfter(&lt.subs[i], v)
	}
	get := func(want ...uint64) {
		t.Helper()
		for i, w := range want {
			if got := lt.afterOf(&lt.subs[i]); got != w {
				t.Fatalf("after[%d] = %d, want %d (base %d)", i, got, w, lt.afterBase)
			}
		}
	}
	set(0, 5e9) // beyond 32 bits: rebases
	get(5e9, 0+lt.afterBase, 0+lt.afterBase)
	set(1, 5e9+7)
	set(2, 4e9) // below the base: rebases, the others keep their values
	get(5e9, 5e9+7, 4e9)
	set(2, 4e9+1<<33) // the others are more than 2^32 below: raised
	hi := uint64(4e9 + 1<<33)
	get(hi-math.MaxUint32, hi-math.MaxUint32, hi)
}

// TestMaxTopicsPerConnFitsSlot: a subscriber's slot is 16 bits.
func TestMaxTopicsPerConnFitsSlot(t *testing.T) {
	for n, ok := range map[int]bool{math.MaxUint16: true, math.MaxUint16 + 1: false} {
		c := DefaultConfig()
		c.MaxTopicsPerConn = n
		if err := c.normalize(); (err == nil) != ok {
			t.Errorf("MaxTopicsPerConn %d: err %v, want ok=%v", n, err, ok)
		}
	}
}
