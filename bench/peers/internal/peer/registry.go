package peer

// Registry maps topics to subscribers and counts seq per topic. It is not
// locked: each peer guards it the way its library is normally used (a hub
// goroutine for gorilla, a mutex for the others).
type Registry[C comparable] struct {
	subs map[string]map[C]struct{}
	seq  map[string]uint64
}

// NewRegistry returns an empty registry.
func NewRegistry[C comparable]() *Registry[C] {
	return &Registry[C]{subs: map[string]map[C]struct{}{}, seq: map[string]uint64{}}
}

// Subscribe adds c to topic; false if it was already there.
func (r *Registry[C]) Subscribe(c C, topic string) bool {
	m := r.subs[topic]
	if m == nil {
		m = map[C]struct{}{}
		r.subs[topic] = m
	}
	if _, ok := m[c]; ok {
		return false
	}
	m[c] = struct{}{}
	return true
}

// Unsubscribe removes c from topic; false if it was not there.
func (r *Registry[C]) Unsubscribe(c C, topic string) bool {
	m := r.subs[topic]
	if _, ok := m[c]; !ok {
		return false
	}
	delete(m, c)
	if len(m) == 0 {
		delete(r.subs, topic)
	}
	return true
}

// Next assigns the next seq of topic (once per publish, starting at 1) and
// returns it with the topic's current subscribers. The map is live; Go
// allows deleting from it while ranging over it.
func (r *Registry[C]) Next(topic string) (uint64, map[C]struct{}) {
	r.seq[topic]++
	return r.seq[topic], r.subs[topic]
}
