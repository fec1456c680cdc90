package server

import "iter"

// A conn's subscriptions. The first one lives in the conn itself (sub,
// subPos): most connections follow one topic, and anything more would cost
// every one of them bytes. The others, for the few conns that follow several
// topics, live in the loop's moreSubs table (stateMoreSubs set).

func (c *conn) subLen() int {
	switch {
	case c.sub == nil:
		return 0
	case c.state&stateMoreSubs == 0:
		return 1
	}
	return 1 + len(c.loop.moreSubs[c])
}

// subAt is the i-th subscription, 0 <= i < subLen().
func (c *conn) subAt(i int) subRef {
	if i == 0 {
		return subRef{lt: c.sub, pos: c.subPos}
	}
	return c.loop.moreSubs[c][i-1]
}

// setSubPos records that the i-th subscription's entry moved to pos in its
// topic's subscriber list.
func (c *conn) setSubPos(i int, pos int32) {
	if i == 0 {
		c.subPos = pos
		return
	}
	c.loop.moreSubs[c][i-1].pos = pos
}

// subEntry is the i-th subscription's entry in its topic's subscriber list.
func (c *conn) subEntry(i int) *subscriber {
	if i == 0 {
		return &c.sub.subs[c.subPos]
	}
	r := c.subAt(i)
	return &r.lt.subs[r.pos]
}

func (c *conn) addSub(r subRef) {
	switch {
	case c.sub == nil:
		c.sub, c.subPos = r.lt, r.pos
	case c.state&stateMoreSubs == 0:
		l := c.loop
		if l.moreSubs == nil {
			l.moreSubs = make(map[*conn][]subRef)
		}
		l.moreSubs[c] = []subRef{r}
		c.state |= stateMoreSubs
	default:
		c.loop.moreSubs[c] = append(c.loop.moreSubs[c], r)
	}
}

// removeSubAt moves the last subscription into slot i and shortens the list.
func (c *conn) removeSubAt(i int) {
	last := c.subLen() - 1
	if last == 0 {
		c.sub, c.subPos = nil, 0
		return
	}
	l := c.loop
	m := l.moreSubs[c]
	if i == 0 {
		c.sub, c.subPos = m[last-1].lt, m[last-1].pos
	} else {
		m[i-1] = m[last-1]
	}
	if last == 1 {
		delete(l.moreSubs, c)
		c.state &^= stateMoreSubs
		return
	}
	m[last-1] = subRef{}
	l.moreSubs[c] = m[:last-1]
}

// allSubs ranges over the subscriptions like a slice: index and a copy.
func (c *conn) allSubs() iter.Seq2[int, subRef] {
	return func(yield func(int, subRef) bool) {
		for i := range c.subLen() {
			if !yield(i, c.subAt(i)) {
				return
			}
		}
	}
}
