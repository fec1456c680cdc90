// Package wire holds fanwire's wire contract: topic names, the envelope a
// subscriber receives, the JSON operations a client sends and the replies.
// It has no I/O and no state, so the gnet server and the HTTP API share it.
package wire

import "errors"

// MaxTopicLen is the longest topic name accepted.
const MaxTopicLen = 128

// ErrInvalidTopic is returned for a topic name outside the allowed alphabet or length.
var ErrInvalidTopic = errors.New("invalid topic name: want 1-128 characters of [A-Za-z0-9_.:-]")

// ErrMessageTooLarge is returned for a publish over its namespace's max_message.
var ErrMessageTooLarge = errors.New("message larger than its namespace's max_message")

// topicChar marks the bytes allowed in a topic name.
var topicChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "_.:-" {
		t[c] = true
	}
	return t
}()

// ValidTopic reports whether name is 1–128 characters of [A-Za-z0-9_.:-].
func ValidTopic(name string) bool {
	if len(name) == 0 || len(name) > MaxTopicLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !topicChar[name[i]] {
			return false
		}
	}
	return true
}

// ValidTopicBytes is ValidTopic for a byte slice, without converting it.
func ValidTopicBytes(name []byte) bool {
	if len(name) == 0 || len(name) > MaxTopicLen {
		return false
	}
	for _, c := range name {
		if !topicChar[c] {
			return false
		}
	}
	return true
}
