package namespace

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// options are the keys a namespace (or [default]) may set in the file.
// Pointers tell a key that is absent from one set to its zero value.
type options struct {
	AnonymousSubscribe *bool   `toml:"anonymous_subscribe"`
	TokenRequired      *bool   `toml:"token_required"`
	LastValue          *bool   `toml:"last_value"`
	History            *int    `toml:"history"`
	HistoryTTL         *string `toml:"history_ttl"`
	MaxMessage         *int    `toml:"max_message"`
	Publish            *bool   `toml:"publish"`
	AnonymousPublish   *bool   `toml:"anonymous_publish"`
	Presence           *bool   `toml:"presence"`
	JoinLeave          *bool   `toml:"join_leave"`
	Delta              *bool   `toml:"delta"`
	Ephemeral          *bool   `toml:"ephemeral"`
	StampSender        *bool   `toml:"stamp_sender"`
	EphemeralPublish   *bool   `toml:"ephemeral_publish"`
}

type fileNamespace struct {
	Name   string   `toml:"name"`
	Topics []string `toml:"topics"`
	options
}

type fileDoc struct {
	Default   options         `toml:"default"`
	Namespace []fileNamespace `toml:"namespace"`
}

// MaxHistory bounds history per topic so a config typo cannot reserve gigabytes.
const MaxHistory = 100000

// Load reads a namespace file. Flags give the default namespace; keys of
// [default] override them; every [[namespace]] starts from the default
// and overrides what it sets. Errors name the file, the key and the reason.
func Load(file string, d Defaults) (*Set, error) {
	var doc fileDoc
	md, err := toml.DecodeFile(file, &doc)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s: line %d: %s", file, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		return nil, fmt.Errorf("%s: %s: unknown key (want default, namespace, and in them: name, topics, %s)", file, undec[0], strings.Join(optionKeys, ", "))
	}
	def, err := defaultNamespace(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := doc.Default.apply(def); err != nil {
		return nil, fmt.Errorf("%s: default.%w", file, err)
	}
	set := &Set{Default: def}
	names := map[string]bool{"default": true}
	for i, fn := range doc.Namespace {
		where := fmt.Sprintf("%s: namespace[%d]", file, i)
		if fn.Name != "" {
			where += " (" + fn.Name + ")"
		}
		switch {
		case fn.Name == "":
			return nil, fmt.Errorf("%s.name: missing: every namespace needs a name", where)
		case names[fn.Name]:
			return nil, fmt.Errorf("%s.name: %q is used twice", where, fn.Name)
		case len(fn.Topics) == 0:
			return nil, fmt.Errorf("%s.topics: missing: list the topic patterns of the namespace, e.g. [\"chat.*\"]", where)
		}
		names[fn.Name] = true
		for _, p := range fn.Topics {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return nil, fmt.Errorf("%s.topics: bad pattern %q", where, p)
			}
		}
		ns := *def
		ns.Name, ns.Topics = fn.Name, fn.Topics
		if err := fn.options.apply(&ns); err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		set.List = append(set.List, &ns)
	}
	return set, nil
}

var optionKeys = []string{"anonymous_subscribe", "token_required", "last_value", "history", "history_ttl", "max_message",
	"publish", "anonymous_publish", "stamp_sender", "ephemeral_publish", "presence", "join_leave", "delta", "ephemeral"}

// apply sets the keys present in o on ns and checks the result.
func (o *options) apply(ns *Namespace) error {
	setBool := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setBool(&ns.AnonymousSubscribe, o.AnonymousSubscribe)
	setBool(&ns.TokenRequired, o.TokenRequired)
	if o.AnonymousSubscribe != nil && *o.AnonymousSubscribe && o.TokenRequired == nil {
		ns.TokenRequired = false // anonymous clients may: so may any token
	}
	if o.LastValue != nil {
		ns.LastValue, ns.lastValuePatterns = *o.LastValue, nil
	}
	if o.History != nil {
		if *o.History < 0 || *o.History > MaxHistory {
			return fmt.Errorf("history: %d: want 0 to %d", *o.History, MaxHistory)
		}
		ns.History = *o.History
	}
	if o.HistoryTTL != nil {
		ttl, err := time.ParseDuration(*o.HistoryTTL)
		if err != nil || ttl <= 0 {
			return fmt.Errorf("history_ttl: %q: want a positive duration such as \"5m\"", *o.HistoryTTL)
		}
		ns.HistoryTTL = ttl
	}
	if o.MaxMessage != nil {
		if *o.MaxMessage < 0 {
			return fmt.Errorf("max_message: %d: want bytes, 0 = the node's limit", *o.MaxMessage)
		}
		ns.MaxMessage = *o.MaxMessage
	}
	setBool(&ns.Publish, o.Publish)
	setBool(&ns.AnonymousPublish, o.AnonymousPublish)
	setBool(&ns.Presence, o.Presence)
	setBool(&ns.JoinLeave, o.JoinLeave)
	setBool(&ns.Delta, o.Delta)
	setBool(&ns.Ephemeral, o.Ephemeral)
	setBool(&ns.StampSender, o.StampSender)
	setBool(&ns.EphemeralPublish, o.EphemeralPublish)
	switch {
	case ns.JoinLeave && !ns.Presence:
		return errors.New("join_leave: needs presence = true")
	case ns.AnonymousSubscribe && ns.TokenRequired:
		return errors.New("token_required: true contradicts anonymous_subscribe = true")
	case ns.AnonymousPublish && !ns.Publish:
		return errors.New("anonymous_publish: needs publish = true")
	case ns.Ephemeral && (ns.History > 0 || ns.LastValue):
		if o.History == nil && o.LastValue == nil { // inherited: an ephemeral namespace simply keeps nothing
			ns.History, ns.LastValue, ns.lastValuePatterns = 0, false, nil
			break
		}
		return errors.New("ephemeral: an ephemeral namespace keeps nothing: drop history and last_value")
	}
	if ns.HistoryTTL <= 0 {
		ns.HistoryTTL = 5 * time.Minute
	}
	return nil
}
