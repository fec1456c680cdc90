// Package namespace maps topics to the options of their namespace: who may
// subscribe, what the topic keeps for late and returning subscribers, how
// large a message may be. Namespaces come from a TOML file (--config); the
// serve flags (--last-value, --history, --history-ttl) form the default
// namespace, so a node without a file behaves as before.
package namespace

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Namespace is the options of the topics it matches. It never changes once
// a Set is built, so topics and connections may keep pointers to it.
type Namespace struct {
	Name   string   // "default" for the default namespace
	Topics []string // path.Match patterns; the default namespace has none (it takes the rest)

	// Who may subscribe (with --auth required or namespace; --auth off checks nothing).
	AnonymousSubscribe bool // clients without a token may subscribe
	TokenRequired      bool // a token must grant the topic in fanwire.subscribe; false: any valid token may subscribe

	LastValue bool // topics keep their newest message for new subscribers
	// lastValuePatterns (default namespace from --last-value only): topics
	// matching one keep a last value; overrides LastValue when set.
	lastValuePatterns []string
	History           int           // recent messages kept per topic for resume (0: none)
	HistoryTTL        time.Duration // history entries older than this are dropped
	MaxMessage        int           // bytes of one published message (0: no limit beyond the node's)
	Delta             bool          // subscribers may ask for Fossil deltas against the previous message (server/delta.go)

	// Client publish (server/publish.go).
	Publish          bool // clients with a token that grants it may publish (fanwire.publish)
	AnonymousPublish bool // clients without a token may publish (and so may any token)
	StampSender      bool // client publications carry "from":{"user","info"}, set by the server
	EphemeralPublish bool // clients may mark a publish "ephemeral": live subscribers only, no seq, not kept
	Ephemeral        bool // nothing is kept: no last value, no history; every client publish is ephemeral
	Presence         bool // the namespace tracks who is subscribed
	JoinLeave        bool // subscribers are told when others join and leave
}

// KeepsLastValue reports whether topic (of this namespace) keeps its newest message.
func (ns *Namespace) KeepsLastValue(topic string) bool {
	if ns.lastValuePatterns != nil {
		return matchAny(ns.lastValuePatterns, topic)
	}
	return ns.LastValue
}

// MayPublish is the client publish rule of the namespace for a connection
// with (hasToken) or without a token; grants reports whether the token's
// fanwire.publish allows the topic. Default: nobody.
func (ns *Namespace) MayPublish(hasToken, grants bool) bool {
	switch {
	case !ns.Publish:
		return false
	case ns.AnonymousPublish:
		return true
	}
	return hasToken && grants
}

// MaySubscribe is the subscribe rule of the namespace for a connection
// with (hasToken) or without a valid token; grants reports whether the
// token's fanwire.subscribe allows the topic.
func (ns *Namespace) MaySubscribe(hasToken, grants bool) bool {
	switch {
	case !hasToken:
		return ns.AnonymousSubscribe
	case ns.TokenRequired:
		return grants
	}
	return true
}

// Set is the namespaces of a node: the first whose patterns match a topic
// wins, the default takes the rest.
type Set struct {
	List    []*Namespace
	Default *Namespace
}

// Match returns the namespace of topic.
func (s *Set) Match(topic string) *Namespace {
	for _, ns := range s.List {
		if matchAny(ns.Topics, topic) {
			return ns
		}
	}
	return s.Default
}

// Defaults are the default namespace's options from the serve flags.
type Defaults struct {
	LastValue  string // comma-separated patterns (--last-value)
	History    int
	HistoryTTL time.Duration
}

// FromFlags is the Set of a node without a config file: only the default
// namespace, built from the flags. Anonymous subscribe and token checks
// follow --auth (see server.AuthConfig): with --auth required a token must
// grant each topic.
func FromFlags(d Defaults) (*Set, error) {
	ns, err := defaultNamespace(d)
	if err != nil {
		return nil, err
	}
	return &Set{Default: ns}, nil
}

func defaultNamespace(d Defaults) (*Namespace, error) {
	ns := &Namespace{Name: "default", History: d.History, HistoryTTL: d.HistoryTTL, TokenRequired: true, lastValuePatterns: []string{}}
	for _, p := range strings.Split(d.LastValue, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("bad last-value pattern %q: %w", p, err)
		}
		ns.lastValuePatterns = append(ns.lastValuePatterns, p)
	}
	return ns, nil
}

func matchAny(patterns []string, topic string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}
