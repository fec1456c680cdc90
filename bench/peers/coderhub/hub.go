package main

import (
	"sync"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

// hub guards the registry with one mutex; a publish holds it for the whole
// fan-out so deliveries leave in seq order.
type hub struct {
	mu      sync.Mutex
	reg     *peer.Registry[*client]
	clients map[*client][]string // live clients -> their topics
}

func newHub() *hub {
	return &hub{reg: peer.NewRegistry[*client](), clients: map[*client][]string{}}
}

// Publish implements api.Publisher.
func (h *hub) Publish(topic string, data []byte) (uint64, int, error) {
	if !wire.ValidTopic(topic) {
		return 0, 0, wire.ErrInvalidTopic
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, subs := h.reg.Next(topic)
	n := len(subs)
	if n == 0 {
		return seq, 0, nil
	}
	env := wire.AppendEnvelope(nil, topic, seq, data) // once, shared by every send
	for c := range subs {
		h.sendLocked(c, env)
	}
	return seq, n, nil
}

func (h *hub) add(c *client, topics []string) {
	h.mu.Lock()
	h.clients[c] = nil
	h.subscribeLocked(c, topics)
	h.mu.Unlock()
}

func (h *hub) subscribeLocked(c *client, topics []string) bool {
	if len(h.clients[c])+len(topics) > peer.MaxTopics {
		return false
	}
	for _, t := range topics {
		if h.reg.Subscribe(c, t) {
			h.clients[c] = append(h.clients[c], t)
		}
	}
	return true
}

// apply runs a client op and queues its reply behind earlier deliveries.
func (h *hub) apply(c *client, op wire.Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, live := h.clients[c]; !live {
		return
	}
	if op.Op == wire.OpSubscribe {
		if !h.subscribeLocked(c, op.Topics) {
			h.sendLocked(c, peer.ErrorReply(peer.TooManyTopics))
			return
		}
	} else {
		for _, t := range op.Topics {
			if h.reg.Unsubscribe(c, t) {
				h.clients[c] = remove(h.clients[c], t)
			}
		}
	}
	h.sendLocked(c, peer.AckReply(op))
}

func (h *hub) reply(c *client, text []byte) {
	h.mu.Lock()
	if _, live := h.clients[c]; live {
		h.sendLocked(c, text)
	}
	h.mu.Unlock()
}

func (h *hub) sendLocked(c *client, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.dropLocked(c)
	}
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	h.dropLocked(c)
	h.mu.Unlock()
}

func (h *hub) dropLocked(c *client) {
	topics, live := h.clients[c]
	if !live {
		return
	}
	for _, t := range topics {
		h.reg.Unsubscribe(c, t)
	}
	delete(h.clients, c)
	close(c.send)
}

func (h *hub) closeAll() {
	h.mu.Lock()
	for c := range h.clients {
		h.dropLocked(c)
	}
	h.mu.Unlock()
}

func remove(s []string, t string) []string {
	for i, v := range s {
		if v == t {
			s[i] = s[len(s)-1]
			return s[:len(s)-1]
		}
	}
	return s
}
