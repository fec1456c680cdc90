package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/fanwire/fanwire/server/wire"
)

// Presence (issue 12): for topics whose namespace has presence on, the
// node keeps who is subscribed: per user (the token's sub) its info and how
// many of its connections are subscribed. Subscribe and unsubscribe (and
// close) touch it, nothing else: no per-connection timer, no per-delivery
// cost. A user whose last connection leaves stays listed for
// PresenceConfig.Linger: if one of its connections subscribes again meanwhile (a
// flapping client, a page reload) nothing is announced; otherwise the
// engine tick drops it and, with join_leave, announces the leave.

const (
	// DefaultPresenceLinger is the join/leave coalescing window.
	DefaultPresenceLinger = 2 * time.Second
	// DefaultMaxPresenceMembers bounds the users listed per topic; beyond
	// it a topic only counts connections.
	DefaultMaxPresenceMembers = 1000
)

// PresenceConfig bounds presence; zero values take the defaults.
type PresenceConfig struct {
	Linger     time.Duration // a user whose last connection left stays listed this long (join/leave coalescing)
	MaxMembers int           // users listed per topic; beyond it, counts only
	// Announce, if set, carries join/leave events to every process
	// (worker mode: NATS) instead of this node's subscribers only; the
	// events come back through Node.DeliverEvent.
	Announce func(topic string, event []byte)
	// RemoteTTL: a remote snapshot (MergePresence) not refreshed for this
	// long is dropped, e.g. its worker died. Default 3 s.
	RemoteTTL time.Duration
}

// presence is the node-wide registry, under its own lock (never taken
// with hub.mu held, nor does it take hub.mu).
type presence struct {
	mu         sync.Mutex
	topics     map[string]*presenceTopic
	lingering  []lingerEntry // members whose last connection left, oldest first
	maxMembers int
	linger     time.Duration
	hub        *hub
	send       func(topic string, event []byte)        // Config.Presence.Announce, or hub.sendEvent
	remote     map[string]map[string]*PresenceSnapshot // topic -> source -> its latest snapshot
	remoteTTL  time.Duration
}

type presenceTopic struct {
	name      string
	ns        *namespace.Namespace
	members   map[string]*member
	conns     int // subscribed connections, anonymous and unlisted included
	anonymous int // of which without a token
	unlisted  int // of which of users beyond maxMembers
}

type member struct {
	info   json.RawMessage
	conns  int
	leftAt int64 // unix ns when its last connection left (lingering); 0: present
}

type lingerEntry struct {
	pt   *presenceTopic
	user string
	at   int64
}

func newPresence(h *hub) *presence {
	return &presence{topics: make(map[string]*presenceTopic), maxMembers: DefaultMaxPresenceMembers, linger: DefaultPresenceLinger,
		hub: h, send: h.sendEvent, remote: make(map[string]map[string]*PresenceSnapshot), remoteTTL: 3 * time.Second}
}

// joined counts one more subscribed connection of id on topic t.
func (p *presence) joined(t *topic, id *auth.Identity) {
	p.mu.Lock()
	pt := p.topics[t.name]
	if pt == nil {
		pt = &presenceTopic{name: t.name, ns: t.ns, members: make(map[string]*member)}
		p.topics[t.name] = pt
	}
	pt.conns++
	if id == nil {
		pt.anonymous++
		p.mu.Unlock()
		return
	}
	m := pt.members[id.User]
	switch {
	case m != nil:
		m.conns++
		m.leftAt = 0 // back within the window: no leave, no join
		m.info = id.Info
		p.mu.Unlock()
		return
	case len(pt.members) >= p.maxMembers:
		pt.unlisted++
		p.mu.Unlock()
		return
	}
	pt.members[id.User] = &member{info: id.Info, conns: 1}
	announce := pt.ns.JoinLeave && !p.remoteHas(t.name, id.User)
	p.mu.Unlock()
	if announce {
		p.announce("join", t.name, id.User, id.Info)
	}
}

// left counts one subscribed connection of id less on topic name.
func (p *presence) left(name string, id *auth.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt := p.topics[name]
	if pt == nil {
		return
	}
	pt.conns--
	switch m := p.member(pt, id); {
	case id == nil:
		pt.anonymous--
	case m == nil:
		pt.unlisted--
	default:
		if m.conns--; m.conns == 0 {
			m.leftAt = time.Now().UnixNano()
			p.lingering = append(p.lingering, lingerEntry{pt: pt, user: id.User, at: m.leftAt})
		}
	}
	p.dropIfEmpty(pt)
}

func (p *presence) member(pt *presenceTopic, id *auth.Identity) *member {
	if id == nil {
		return nil
	}
	return pt.members[id.User]
}

func (p *presence) dropIfEmpty(pt *presenceTopic) {
	if pt.conns == 0 && len(pt.members) == 0 && p.topics[pt.name] == pt {
		delete(p.topics, pt.name)
	}
}

// sweep drops the members that lingered for the whole window and announces
// their leave. Engine tick.
func (p *presence) sweep(now time.Time) {
	cutoff := now.Add(-p.linger).UnixNano()
	var leaves, expired []presenceLeave
	p.mu.Lock()
	if len(p.remote) > 0 {
		expired = p.expireRemote(now)
	}
	i := 0
	for ; i < len(p.lingering) && p.lingering[i].at <= cutoff; i++ {
		e := p.lingering[i]
		m := e.pt.members[e.user]
		if m == nil || m.leftAt != e.at {
			continue // came back (or left again later: a newer entry follows)
		}
		delete(e.pt.members, e.user)
		if e.pt.ns.JoinLeave && !p.remoteHas(e.pt.name, e.user) {
			leaves = append(leaves, presenceLeave{e.pt.name, e.user})
		}
		p.dropIfEmpty(e.pt)
	}
	if i > 0 {
		p.lingering = slices.Delete(p.lingering, 0, i)
	}
	p.mu.Unlock()
	for _, l := range leaves {
		p.announce("leave", l.topic, l.user, nil)
	}
	// A dead process announces nothing: every survivor tells its own
	// subscribers (not through Announce), so each hears the leave once.
	for _, l := range expired {
		p.hub.sendEvent(l.topic, appendEvent(nil, "leave", l.topic, l.user, nil))
	}
}

type presenceLeave struct{ topic, user string }

// announce delivers {"type":"join"|"leave","topic":T,"user":U[,"info":I]}
// to the topic's current subscribers, like an ephemeral message.
func (p *presence) announce(kind, topic, user string, info []byte) {
	p.send(topic, appendEvent(make([]byte, 0, 64+len(topic)+len(user)+len(info)), kind, topic, user, info))
}

func appendEvent(b []byte, kind, topic, user string, info []byte) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","topic":"`...)
	b = append(b, topic...)
	b = append(b, `","user":`...)
	b = wire.AppendString(b, user)
	if len(info) > 0 {
		b = append(b, `,"info":`...)
		b = append(b, info...)
	}
	return append(b, '}')
}

// PresenceSnapshot is one process's presence of a topic, as workers
// exchange them over NATS (only members with connections).
type PresenceSnapshot struct {
	Topic     string           `json:"topic"`
	Conns     int              `json:"conns"`
	Anonymous int              `json:"anonymous"`
	Unlisted  int              `json:"unlisted"`
	Members   []PresenceMember `json:"members"`
	at        int64            // when it arrived (unix ns)
}

// remoteHas reports whether another process lists user on topic. Caller holds mu.
func (p *presence) remoteHas(topic, user string) bool {
	for _, s := range p.remote[topic] {
		for i := range s.Members {
			if s.Members[i].User == user {
				return true
			}
		}
	}
	return false
}

// PresenceSnapshots are this node's own presence topics, for the other
// processes (worker mode). Any goroutine.
func (n *Node) PresenceSnapshots() []PresenceSnapshot {
	p := n.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PresenceSnapshot, 0, len(p.topics))
	for _, pt := range p.topics {
		s := PresenceSnapshot{Topic: pt.name, Conns: pt.conns, Anonymous: pt.anonymous, Unlisted: pt.unlisted, Members: []PresenceMember{}}
		for user, m := range pt.members {
			if m.conns > 0 {
				s.Members = append(s.Members, PresenceMember{User: user, Info: m.info, Conns: m.conns})
			}
		}
		out = append(out, s)
	}
	return out
}

// MergePresence records another process's snapshot (source names it); it
// replaces that source's previous one and expires after RemoteTTL.
func (n *Node) MergePresence(source string, s PresenceSnapshot) {
	if !wire.ValidTopic(s.Topic) || len(s.Members) > n.presence.maxMembers {
		return
	}
	p := n.presence
	s.at = time.Now().UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.remote[s.Topic]
	if m == nil {
		m = make(map[string]*PresenceSnapshot)
		p.remote[s.Topic] = m
	}
	m[source] = &s
}

// DeliverEvent hands a join/leave event (Config.Presence.Announce) to this
// node's subscribers of topic. Any goroutine.
func (n *Node) DeliverEvent(topic string, event []byte) {
	if wire.ValidTopic(topic) && json.Valid(event) {
		n.hub.sendEvent(topic, event)
	}
}

// expireRemote drops snapshots of sources that stopped sending (a worker
// or node that died) and returns, for topics with join_leave that have
// subscribers here, the users they listed who are now listed nowhere.
// Caller holds mu.
func (p *presence) expireRemote(now time.Time) (gone []presenceLeave) {
	cutoff := now.Add(-p.remoteTTL).UnixNano()
	for topic, m := range p.remote {
		for src, s := range m {
			if s.at >= cutoff {
				continue
			}
			delete(m, src)
			if pt := p.topics[topic]; pt != nil && pt.ns.JoinLeave {
				for i := range s.Members {
					gone = append(gone, presenceLeave{topic, s.Members[i].User})
				}
			}
		}
		if len(m) == 0 {
			delete(p.remote, topic)
		}
	}
	// Keep those still here (lingering ones get their leave from sweep) or
	// elsewhere, and each once (two dead sources may list the same user).
	kept := gone[:0]
	for _, l := range gone {
		if p.topics[l.topic].members[l.user] == nil && !p.remoteHas(l.topic, l.user) && !slices.Contains(kept, l) {
			kept = append(kept, l)
		}
	}
	return kept
}

// PresenceStats are a topic's counts.
type PresenceStats struct {
	Conns     int  `json:"conns"`     // subscribed connections
	Users     int  `json:"users"`     // distinct listed users
	Anonymous int  `json:"anonymous"` // connections without a token (counted, never listed)
	Truncated bool `json:"truncated"` // more users than the member bound: some are only counted
}

// PresenceMember is one listed user.
type PresenceMember struct {
	User  string          `json:"user"`
	Info  json.RawMessage `json:"info,omitempty"`
	Conns int             `json:"conns"`
}

// Presence is a topic's member list and counts.
type Presence struct {
	Topic string `json:"topic"`
	PresenceStats
	Members []PresenceMember `json:"members"`
}

// snapshot reads topic's presence (members too if list).
func (p *presence) snapshot(topic string, list bool) Presence {
	out := Presence{Topic: topic, Members: []PresenceMember{}}
	p.mu.Lock()
	defer p.mu.Unlock()
	users := map[string]*PresenceMember{}
	add := func(user string, info json.RawMessage, conns int) {
		if m := users[user]; m != nil {
			m.Conns += conns
		} else if len(users) < p.maxMembers {
			users[user] = &PresenceMember{User: user, Info: info, Conns: conns}
		} else {
			out.Truncated = true
		}
	}
	if pt := p.topics[topic]; pt != nil {
		out.Conns, out.Anonymous, out.Truncated = pt.conns, pt.anonymous, pt.unlisted > 0
		for user, m := range pt.members {
			add(user, m.info, m.conns)
		}
	}
	for _, s := range p.remote[topic] {
		out.Conns += s.Conns
		out.Anonymous += s.Anonymous
		out.Truncated = out.Truncated || s.Unlisted > 0
		for _, m := range s.Members {
			add(m.User, m.Info, m.Conns)
		}
	}
	out.Users = len(users)
	if list {
		for _, m := range users {
			out.Members = append(out.Members, *m)
		}
		slices.SortFunc(out.Members, func(a, b PresenceMember) int { return strings.Compare(a.User, b.User) })
	}
	return out
}

// sendEvent delivers an event payload (not an envelope: no seq, kept
// nowhere) to the current subscribers of topic on every loop.
func (h *hub) sendEvent(name string, payload []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil || len(t.loops) == 0 {
		return
	}
	f := h.frames.Get().(*sharedFrame)
	f.b = codec.AppendHeader(f.b[:0], codec.OpText, true, len(payload))
	f.hdr = uint8(len(f.b))
	f.b = append(f.b, payload...)
	f.seq = 0
	f.refs.Store(int32(len(t.loops)) + 1)
	for _, lt := range t.loops {
		lt.loop.enqueue(lt, f)
	}
	f.release()
}

// presenceOp answers {"op":"presence"|"presence_stats","topic":T,"id":N}:
// allowed to whoever may subscribe to the topic.
func (l *loop) presenceOp(c *conn, req *wire.Op) {
	ns := l.node.hub.namespaces.Match(req.Topic)
	if !ns.Presence {
		l.replyErrorID(&wire.OpError{Code: wire.CodeNotEnabled, Message: "namespace " + ns.Name + " does not keep presence"}, req.ID)
		return
	}
	if !l.node.auth.maySubscribe(c.ident, req.Topic) {
		l.replyErrorID(&wire.OpError{Code: wire.CodeForbidden, Message: forbiddenText(c.ident, req.Topic)}, req.ID)
		return
	}
	list := req.Op == wire.OpPresence
	snap := l.node.presence.snapshot(req.Topic, list)
	l.out = appendTextFrame(l.out, func(b []byte) []byte { return appendPresence(b, req.Op, req.ID, &snap, list) })
}

func appendPresence(b []byte, kind string, id uint64, p *Presence, list bool) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","id":`...)
	b = strconv.AppendUint(b, id, 10)
	var body []byte
	if list {
		body, _ = json.Marshal(p)
	} else {
		body, _ = json.Marshal(struct {
			Topic string `json:"topic"`
			PresenceStats
		}{p.Topic, p.PresenceStats})
	}
	b = append(b, ',')
	return append(b, body[1:]...)
}

// presenceHandler is GET /presence/{topic} on the control API.
func (n *Node) presenceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		topic := strings.TrimPrefix(r.URL.Path, "/presence/")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", "GET")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"error":"method_not_allowed","message":"use GET /presence/{topic}"}`))
			return
		case !wire.ValidTopic(topic):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_topic","message":"want /presence/{topic} with 1-128 characters of [A-Za-z0-9_.:-]"}`))
			return
		case !n.hub.namespaces.Match(topic).Presence:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not_enabled","message":"the namespace of this topic does not keep presence"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(n.presence.snapshot(topic, r.URL.Query().Get("stats") == ""))
	})
}
