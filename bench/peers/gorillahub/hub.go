package main

import (
	"github.com/gorilla/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

type registration struct {
	c      *client
	topics []string
	done   chan struct{}
}

// clientOp is a parsed client op, or the error reply to a rejected one.
type clientOp struct {
	c       *client
	op      wire.Op
	errText []byte
}

type publication struct {
	topic string
	data  []byte
	reply chan publishResult
}

type publishResult struct {
	seq  uint64
	subs int
}

// hub is the single goroutine that owns every subscription, as in gorilla's
// chat example; everything reaches it over channels.
type hub struct {
	register   chan registration
	unregister chan *client
	ops        chan clientOp
	publish    chan publication
	quit       chan chan struct{}

	clients map[*client][]string // live clients -> their topics
	reg     *peer.Registry[*client]
}

func newHub() *hub {
	return &hub{
		register:   make(chan registration),
		unregister: make(chan *client),
		ops:        make(chan clientOp),
		publish:    make(chan publication),
		quit:       make(chan chan struct{}),
		clients:    map[*client][]string{},
		reg:        peer.NewRegistry[*client](),
	}
}

// Publish implements api.Publisher: the hub assigns seq and fans out; data
// stays valid until the reply arrives.
func (h *hub) Publish(topic string, data []byte) (uint64, int, error) {
	if !wire.ValidTopic(topic) {
		return 0, 0, wire.ErrInvalidTopic
	}
	reply := make(chan publishResult, 1)
	h.publish <- publication{topic, data, reply}
	r := <-reply
	return r.seq, r.subs, nil
}

func (h *hub) closeAll() {
	done := make(chan struct{})
	h.quit <- done
	<-done
}

func (h *hub) run() {
	for {
		select {
		case r := <-h.register:
			h.clients[r.c] = nil
			h.subscribe(r.c, r.topics)
			close(r.done)
		case c := <-h.unregister:
			h.drop(c)
		case o := <-h.ops:
			h.apply(o)
		case p := <-h.publish:
			p.reply <- h.fanOut(p)
		case done := <-h.quit:
			for c := range h.clients {
				h.drop(c)
			}
			close(done)
		}
	}
}

func (h *hub) subscribe(c *client, topics []string) bool {
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

func (h *hub) apply(o clientOp) {
	if _, live := h.clients[o.c]; !live {
		return
	}
	if o.errText != nil {
		h.reply(o.c, o.errText)
		return
	}
	if o.op.Op == wire.OpSubscribe {
		if !h.subscribe(o.c, o.op.Topics) {
			h.reply(o.c, peer.ErrorReply(peer.TooManyTopics))
			return
		}
	} else {
		for _, t := range o.op.Topics {
			if h.reg.Unsubscribe(o.c, t) {
				h.clients[o.c] = remove(h.clients[o.c], t)
			}
		}
	}
	h.reply(o.c, peer.AckReply(o.op))
}

// reply queues a text message for one client, through the same channel as
// deliveries so acks and messages stay in order.
func (h *hub) reply(c *client, text []byte) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, text)
	if err != nil {
		return
	}
	h.send(c, pm)
}

func (h *hub) fanOut(p publication) publishResult {
	seq, subs := h.reg.Next(p.topic)
	n := len(subs)
	if n == 0 {
		return publishResult{seq, 0}
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, wire.AppendEnvelope(nil, p.topic, seq, p.data))
	if err != nil {
		return publishResult{seq, 0}
	}
	for c := range subs {
		h.send(c, pm)
	}
	return publishResult{seq, n}
}

// send never blocks the hub: a client whose 256-message queue is full is
// dropped, exactly like the chat example.
func (h *hub) send(c *client, pm *websocket.PreparedMessage) {
	select {
	case c.send <- pm:
	default:
		h.drop(c)
	}
}

func (h *hub) drop(c *client) {
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

func remove(s []string, t string) []string {
	for i, v := range s {
		if v == t {
			s[i] = s[len(s)-1]
			return s[:len(s)-1]
		}
	}
	return s
}
