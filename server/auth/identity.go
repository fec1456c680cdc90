// Package auth verifies the JWTs clients present at the upgrade (and in a
// refresh) and turns them into an Identity: who the user is, which topics
// it may subscribe and publish to, and its public info. Verification runs
// once per upgrade or refresh, never per delivery.
package auth

import (
	"encoding/json"
	"fmt"
	"path"
)

// Identity is a verified token. One Identity is shared (by pointer) by every
// connection that presented the same token; an anonymous connection has none
// (nil). It never changes after Verify returns it.
type Identity struct {
	User      string          // the token's sub
	Info      json.RawMessage // fanwire.info: public data shown to others (nil if absent)
	Subscribe []string        // fanwire.subscribe: topic patterns the user may subscribe to
	Publish   []string        // fanwire.publish: topic patterns the user may publish to
	Expires   int64           // exp, unix seconds; 0 = never
}

// CanSubscribe reports whether the token grants subscribing to topic.
func (id *Identity) CanSubscribe(topic string) bool {
	return id != nil && MatchAny(id.Subscribe, topic)
}

// CanPublish reports whether the token grants publishing to topic.
func (id *Identity) CanPublish(topic string) bool { return id != nil && MatchAny(id.Publish, topic) }

// ExpiredAt reports whether the token has expired at unix time now.
func (id *Identity) ExpiredAt(now int64) bool {
	return id != nil && id.Expires != 0 && now >= id.Expires
}

// MatchAny reports whether topic matches one of the patterns. Patterns are
// path.Match patterns over topic names: '*' matches any run of characters
// (topic names contain no '/', so it also matches across '.': "prices.*"
// matches "prices.BTC-USD" and "prices.eu.BTC"), '?' one character, [a-z] a
// class. "*" alone matches every topic.
func MatchAny(patterns []string, topic string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// ValidPatterns checks that every pattern is well-formed.
func ValidPatterns(patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("empty topic pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bad topic pattern %q: %w", p, err)
		}
	}
	return nil
}
