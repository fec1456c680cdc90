package server

import "iter"

// subList is a conn's subscriptions. The first one lives inline: most
// connections follow one topic, and a slice would cost them a separate
// 16-byte heap object. It is as big as the slice header it replaces (24 B),
// so conn stays in its size class.
type subList struct {
	one  subRef    // the first subscription; one.lt == nil when there is none
	more *[]subRef // the others, nil while there are none
}

func (s *subList) len() int {
	switch {
	case s.one.lt == nil:
		return 0
	case s.more == nil:
		return 1
	}
	return 1 + len(*s.more)
}

// at is the i-th subscription, 0 <= i < len().
func (s *subList) at(i int) *subRef {
	if i == 0 {
		return &s.one
	}
	return &(*s.more)[i-1]
}

func (s *subList) add(r subRef) {
	switch {
	case s.one.lt == nil:
		s.one = r
	case s.more == nil:
		s.more = &[]subRef{r}
	default:
		*s.more = append(*s.more, r)
	}
}

// removeAt moves the last subscription into slot i and shortens the list.
func (s *subList) removeAt(i int) {
	last := s.len() - 1
	*s.at(i) = *s.at(last)
	if last == 0 {
		s.one = subRef{}
		return
	}
	m := *s.more
	m[last-1] = subRef{}
	if last == 1 {
		s.more = nil
		return
	}
	*s.more = m[:last-1]
}

// all ranges over the subscriptions like a slice: index and a copy.
func (s *subList) all() iter.Seq2[int, subRef] {
	return func(yield func(int, subRef) bool) {
		for i := range s.len() {
			if !yield(i, *s.at(i)) {
				return
			}
		}
	}
}
