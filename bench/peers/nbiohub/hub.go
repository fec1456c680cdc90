package main

import (
	"sync"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

// client is a connection's session. conn is nil until Upgrade returns; until
// then deliveries collect in pending (all under the hub mutex), which is how
// the subscription is in effect before the 101 although nbio writes the 101
// inside Upgrade.
type client struct {
	conn    *websocket.Conn
	pending [][]byte
	topics  []string
}

// hub guards the registry with one mutex; a publish holds it for the whole
// fan-out so deliveries leave in seq order.
type hub struct {
	mu      sync.Mutex
	reg     *peer.Registry[*client]
	clients map[*client]struct{}
}

func newHub() *hub {
	return &hub{reg: peer.NewRegistry[*client](), clients: map[*client]struct{}{}}
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
	env := wire.AppendEnvelope(nil, topic, seq, data) // once, shared by every write
	for c := range subs {
		h.sendLocked(c, env)
	}
	return seq, n, nil
}

func (h *hub) sendLocked(c *client, msg []byte) {
	if c.conn == nil {
		c.pending = append(c.pending, msg)
		return
	}
	// nbio closes the connection itself when its write buffer cap is hit;
	// OnClose then removes the client.
	_ = c.conn.WriteMessage(websocket.TextMessage, msg)
}

// add registers a not-yet-upgraded client with its URL topics.
func (h *hub) add(topics []string) *client {
	c := &client{}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.subscribeLocked(c, topics)
	h.mu.Unlock()
	return c
}

// attach gives c its connection and flushes what was published meanwhile.
func (h *hub) attach(c *client, conn *websocket.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn.SetSession(c)
	if _, live := h.clients[c]; !live {
		return
	}
	c.conn = conn
	for _, msg := range c.pending {
		_ = conn.WriteMessage(websocket.TextMessage, msg)
	}
	c.pending = nil
}

func (h *hub) subscribeLocked(c *client, topics []string) bool {
	if len(c.topics)+len(topics) > peer.MaxTopics {
		return false
	}
	for _, t := range topics {
		if h.reg.Subscribe(c, t) {
			c.topics = append(c.topics, t)
		}
	}
	return true
}

// apply runs a client op and writes its reply in order with deliveries.
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
				c.topics = remove(c.topics, t)
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

func (h *hub) remove(c *client) {
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
}

func (h *hub) removeLocked(c *client) {
	if _, live := h.clients[c]; !live {
		return
	}
	for _, t := range c.topics {
		h.reg.Unsubscribe(c, t)
	}
	delete(h.clients, c)
}

// closeAll sends 1001 to every connection.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.conn != nil {
			_ = c.conn.WriteClose(1001, "")
			_ = c.conn.Close()
		}
		h.removeLocked(c)
	}
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
