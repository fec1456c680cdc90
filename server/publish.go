package server

import (
	"errors"
	"strconv"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/fanwire/fanwire/server/wire"
)

// Client publish (issue 12): {"op":"publish","topic":T,"data":D,"id":N}
// runs on the loop: parse, permission, size, then the node's publish path,
// the same one an HTTP publish takes. The answer {"type":"published",...}
// goes into l.out, so the sender reads it before its own delivery, which
// comes through the loop's queue after this OnTraffic.

// loopPublish is a loop's scratch space for client publishes.
type loopPublish struct {
	from    []byte              // the sender stamp being built
	buckets map[*conn]pubBucket // publish rate buckets of the conns that published (PublishLimits); dropped at close
	topics  map[string]string   // recent publish topics, one string each (intern)
}

// pubBucket is one connection's publish tokens as of last (loop clock, ms).
type pubBucket struct {
	tokens float32
	last   uint32
}

// allowPublish spends one of c's publish tokens, refilled for the time
// since its last publish. Loop goroutine.
func (l *loop) allowPublish(c *conn) bool {
	lim := &l.node.cfg.PublishLimits
	if lim.Rate <= 0 {
		return true
	}
	b, ok := l.pub.buckets[c]
	if !ok {
		if l.pub.buckets == nil {
			l.pub.buckets = make(map[*conn]pubBucket)
		}
		b.tokens = float32(lim.Burst)
	} else {
		b.tokens = min(float32(lim.Burst), b.tokens+float32(float64(l.now-b.last)*lim.Rate/1000))
	}
	b.last = l.now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.pub.buckets[c] = b
	return allowed
}

// forgetPublisher drops c's publish bucket. At close.
func (l *loop) forgetPublisher(c *conn) {
	if len(l.pub.buckets) > 0 {
		delete(l.pub.buckets, c)
	}
}

// maxInternedTopics bounds the intern table; full, it starts over.
const maxInternedTopics = 4096

// intern returns the loop's string for topic, so a publish to a topic
// seen recently allocates nothing (wire.ScanPublish).
func (p *loopPublish) intern(topic []byte) string {
	if s, ok := p.topics[string(topic)]; ok {
		return s
	}
	if p.topics == nil || len(p.topics) >= maxInternedTopics {
		p.topics = make(map[string]string, 64)
	}
	s := string(topic)
	p.topics[s] = s
	return s
}

// clientPublish handles one publish op of c.
func (l *loop) clientPublish(c *conn, req *wire.Op) {
	ns := l.node.hub.namespaces.Match(req.Topic)
	if e := mayPublish(c.ident, ns, req); e != nil {
		l.replyErrorID(e, req.ID)
		return
	}
	if ns.MaxMessage > 0 && len(req.Data) > ns.MaxMessage {
		l.replyErrorID(&wire.OpError{Code: wire.CodeTooLarge,
			Message: "data is " + strconv.Itoa(len(req.Data)) + " bytes: at most " + strconv.Itoa(ns.MaxMessage) + " in namespace " + ns.Name}, req.ID)
		return
	}
	if !l.allowPublish(c) {
		l.lim.stats.rateLimited.Add(1)
		lim := &l.node.cfg.PublishLimits
		l.replyErrorID(&wire.OpError{Code: wire.CodeRateLimited, Message: "publish rate limit exceeded: at most " +
			strconv.FormatFloat(lim.Rate, 'f', -1, 64) + " publishes per second per connection (burst " + strconv.Itoa(lim.Burst) + "); this publish was dropped"}, req.ID)
		return
	}
	var from []byte
	if ns.StampSender {
		l.pub.from = appendSender(l.pub.from[:0], c.ident)
		from = l.pub.from
	}
	ephemeral := req.Ephemeral || ns.Ephemeral
	if p := l.node.cfg.ClientPublish; p != nil {
		l.publishRemote(p, c, req, from, ephemeral)
		return
	}
	var seq uint64
	var err error
	if ephemeral {
		_, err = l.node.hub.publishEphemeral(req.Topic, req.Data, from)
	} else {
		seq, _, err = l.node.hub.publishFrom(req.Topic, req.Data, from)
	}
	if err != nil {
		l.replyErrorID(publishError(err), req.ID)
		return
	}
	l.met.clientPub.Add(1) // fanwire_publishes_total{source="client"}
	l.out = appendTextFrame(l.out, func(b []byte) []byte { return wire.AppendPublished(b, req.ID, req.Topic, seq) })
}

// publishRemote hands the publication to the bus; its answer comes back
// on the loop. In worker mode the ack and the sender's own delivery travel
// separately (reply and stream), so they may arrive in either order.
func (l *loop) publishRemote(p ClientPublisher, c *conn, req *wire.Op, from []byte, ephemeral bool) {
	id, topic := req.ID, req.Topic
	p.Publish(topic, req.Data, from, ephemeral, func(seq uint64, err error) {
		l.execute(runnable(func() { l.published(c, id, topic, seq, err) }))
	})
}

// published writes the answer to a remote publish, if c is still there.
// A publication the bus took counts here, on the worker the client is on,
// even if the client has gone since.
func (l *loop) published(c *conn, id uint64, topic string, seq uint64, err error) {
	if err == nil {
		l.met.clientPub.Add(1)
	}
	if c.kind == kindPost {
		l.postPublished(c, id, topic, seq, err) // post.go
		return
	}
	if c.phase != phaseOpen {
		return
	}
	out := l.out[:0]
	if err != nil {
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendErrorID(b, publishError(err), id) })
	} else {
		out = appendTextFrame(out, func(b []byte) []byte { return wire.AppendPublished(b, id, topic, seq) })
	}
	c.write(out)
	l.out = out[:0]
}

// mayPublish checks the namespace and the token; nil: allowed.
func mayPublish(id *auth.Identity, ns *namespace.Namespace, req *wire.Op) *wire.OpError {
	if !ns.MayPublish(id != nil, id.CanPublish(req.Topic)) {
		msg := "namespace " + ns.Name + " does not allow client publish"
		switch {
		case ns.Publish && id == nil:
			msg = "publishing to " + req.Topic + " needs a token that allows it"
		case ns.Publish:
			msg = "the token of user " + strconv.Quote(id.User) + " does not allow publishing to " + req.Topic
		}
		return &wire.OpError{Code: wire.CodeForbidden, Message: msg}
	}
	if req.Ephemeral && !ns.EphemeralPublish && !ns.Ephemeral {
		return &wire.OpError{Code: wire.CodeNotEnabled, Message: "namespace " + ns.Name + " does not allow ephemeral publishes (ephemeral_publish)"}
	}
	return nil
}

// appendSender is the "from" stamp: built here from the verified token, so
// a client cannot forge it (a "from" inside data is only data).
func appendSender(dst []byte, id *auth.Identity) []byte {
	if id == nil {
		return append(dst, `{"anonymous":true}`...)
	}
	return wire.AppendFrom(dst, id.User, id.Info)
}

// publishError maps a publish path error to the client's error code.
func publishError(err error) *wire.OpError {
	switch {
	case errors.Is(err, wire.ErrMessageTooLarge):
		return &wire.OpError{Code: wire.CodeTooLarge, Message: err.Error()}
	case errors.Is(err, wire.ErrInvalidTopic):
		return &wire.OpError{Code: wire.CodeInvalidTopic, Message: err.Error()}
	}
	return &wire.OpError{Code: wire.CodeBusUnavailable, Message: "publish failed: " + err.Error()}
}

func (l *loop) replyErrorID(e *wire.OpError, id uint64) {
	l.out = appendTextFrame(l.out, func(b []byte) []byte { return wire.AppendErrorID(b, e, id) })
}

// publishEphemeral delivers data to the topic's current subscribers only:
// no seq is taken (subscribers see no gap), nothing is kept, slow
// connections drop it. A topic nobody here follows is not created.
func (h *hub) publishEphemeral(name string, data, from []byte) (subscribers int, err error) {
	if !wire.ValidTopic(name) {
		return 0, wire.ErrInvalidTopic
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil || len(t.loops) == 0 {
		return 0, nil
	}
	if t.ns.MaxMessage > 0 && len(data) > t.ns.MaxMessage {
		return 0, wire.ErrMessageTooLarge
	}
	f := h.frames.Get().(*sharedFrame)
	f.b = codec.AppendHeader(f.b[:0], codec.OpText, true, wire.EnvelopeFromSize(t.name, 0, data, from))
	f.hdr = uint8(len(f.b))
	f.b = wire.AppendEnvelopeFrom(f.b, t.name, 0, data, from)
	f.seq = 0 // ephemeral: skipped by nothing, conflated never, kept nowhere
	f.refs.Store(int32(len(t.loops)) + 1)
	for _, lt := range t.loops {
		subscribers += int(lt.count.Load())
		lt.loop.enqueue(lt, f)
	}
	f.release()
	return subscribers, nil
}

// skip reports whether a subscriber that got everything up to after (its
// snapshot or replay) must not get f again. Ephemeral frames (seq 0) are
// never skipped.
func (f *sharedFrame) skip(after uint64) bool { return f.seq != 0 && f.seq <= after }
