package server

import (
	"path"
	"strings"
)

// DeltaConfig is Fossil delta delivery (delta.go): which topics' subscribers
// may ask for deltas. Off by default: a delta subscriber makes the node keep
// the previous message of its topic and compute one delta per publish.
type DeltaConfig struct {
	Topics string // comma-separated topic patterns ("prices.*"); "" = no topic
}

func (c *DeltaConfig) normalize() error { return validPatterns(c.Topics) }

// allowed reports whether subscribers of topic may receive deltas.
func (c *DeltaConfig) allowed(topic string) bool {
	for _, p := range strings.Split(c.Topics, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if ok, _ := path.Match(p, topic); ok {
				return true
			}
		}
	}
	return false
}
