package main

import (
	"flag"

	"github.com/fanwire/fanwire/loadtest"
)

// loadChatFlags adds the flags of `fanwire load chat`.
func loadChatFlags(fs *flag.FlagSet, cfg *loadtest.Config) {
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users in the normal rooms: one WebSocket each, subscribed to its room and publishing to it")
	fs.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "normal rooms; user i is in room i % rooms")
	fs.IntVar(&cfg.HotRoomUsers, "hot-room-users", 0, "users of one extra, big room (0: none)")
	fs.DurationVar(&cfg.PublishInterval, "publish-interval", cfg.PublishInterval, "each user publishes once per interval, at its own random phase")
	fs.DurationVar(&cfg.HotPublishInterval, "hot-room-publish-interval", 0, "the same for the hot room's users (0: --publish-interval)")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "data bytes of a publish ({\"t\":<send time>,\"pad\":\"...\"})")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", cfg.TopicPrefix, "rooms are <prefix>.<run>.room-N and <prefix>.<run>.hot (<run>: unique per run, so seqs start at 1)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the users publish (after every user is connected)")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "max wait for outstanding acks and deliveries after the last publish")
	fs.Float64Var(&cfg.MaxLoss, "max-loss", cfg.MaxLoss, "allowed fraction of lost deliveries before the exit status is 1")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the node (with --workers: the supervisor): its CPU and its descendants' over the publish and drain phases gives deliveries per server CPU-second")
	fs.StringVar(&cfg.TokenPublish, "token-publish", cfg.TokenPublish, "comma-separated fanwire.publish topic `patterns` of the signed tokens (with --token-hmac-secret-file)")
}

const chatHelp = `
Every user checks that it received every acknowledged message of its room
exactly once and in seq order; the report gives lost, duplicate and
out-of-order deliveries, refused publishes by error code, publishes acked
per second, end-to-end latency (send time in the data to arrival) and, with
--server-pid, deliveries per server CPU-second. Exit status 1 on any loss,
duplicate, reordering, refused or unanswered publish, or failed connection.

The node must let these clients publish to the rooms (by default nobody
may): either a namespace with anonymous publish,

  fanwire serve --config loadtest/scripts/chat-load.toml
    (topics = ["chat.load.*"], anonymous_subscribe, publish, anonymous_publish)

or tokens: start the node with --token-hmac-secret-file F and --config with
publish = true for the rooms, and pass the same file here
(--token-hmac-secret-file F): each user gets an HS256 token with
fanwire.subscribe --token-subscribe and fanwire.publish --token-publish.

Limits: each publish counts against the node's --max-client-publish-rate
(default 10/s per connection) and --max-client-rate (100/s, every client
message): one per --publish-interval (10s) is far below both; --max-conns-per-ip (default 1000) is why the users are spread over
source addresses (--source-ips auto: 127.0.0.2-33, i.e. up to 32,000 users).
Beyond the open-files limit (20,000 here) the users are split over worker
processes by themselves; --workers N forces N.
`
