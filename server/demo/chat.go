package demo

import (
	"time"

	"github.com/fanwire/fanwire/server/namespace"
)

// ChatTopic is the demo page's chat room.
const ChatTopic = "chat.demo"

// ChatNamespace is the demo chat room's namespace (--demo only): demo
// tokens may post (stamped with the sender), send typing indicators
// (ephemeral) and see who is there (presence, join/leave); anyone may read.
func ChatNamespace() *namespace.Namespace {
	return &namespace.Namespace{
		Name: "demo-chat", Topics: []string{ChatTopic},
		AnonymousSubscribe: true, History: 50, HistoryTTL: time.Hour, MaxMessage: 1024,
		Publish: true, StampSender: true, EphemeralPublish: true, Presence: true, JoinLeave: true,
	}
}
