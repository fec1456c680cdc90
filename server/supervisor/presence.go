package supervisor

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Presence across workers and nodes. Each worker keeps its own clients'
// presence (server/presence.go) and publishes a snapshot of every presence
// topic on fanwire.presence.<topic> every presenceInterval; every worker
// merges the others' snapshots into its answers and drops those not
// refreshed for 3 intervals (a dead worker's members expire). So answers
// converge within about one interval; join and leave are announced to every
// worker through NATS and suppressed while another process still lists the
// user.
const presenceInterval = time.Second

// announcePresence sends join/leave events to every worker's subscribers
// of the topic (bus.EventHeader on fanwire.t.<topic>).
func announcePresence(nc *nats.Conn, log *slog.Logger) func(topic string, event []byte) {
	return func(topic string, event []byte) {
		m := nats.NewMsg(bus.OutSubject(topic))
		m.Header.Set(bus.EventHeader, "1")
		m.Data = event // PublishMsg copies it
		if err := nc.PublishMsg(m); err != nil {
			log.Debug("presence event not sent", "topic", topic, "err", err)
		}
	}
}

// sharePresence publishes this worker's snapshots and merges the others';
// the returned func stops it.
func sharePresence(nc *nats.Conn, node *server.Node, id int, log *slog.Logger) func() {
	self := fmt.Sprintf("w%d-%d-%s", id, os.Getpid(), nuid.Next())
	sub, err := nc.Subscribe(bus.PresencePrefix+">", func(m *nats.Msg) {
		src := m.Header.Get(bus.SourceHeader)
		if src == "" || src == self {
			return
		}
		var s server.PresenceSnapshot
		if json.Unmarshal(m.Data, &s) != nil || s.Topic != strings.TrimPrefix(m.Subject, bus.PresencePrefix) {
			return
		}
		node.MergePresence(src, s)
	})
	if err != nil {
		log.Warn("presence across workers off", "err", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(presenceInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for _, s := range node.PresenceSnapshots() {
				b, _ := json.Marshal(s)
				m := nats.NewMsg(bus.PresencePrefix + s.Topic)
				m.Header.Set(bus.SourceHeader, self)
				m.Data = b
				_ = nc.PublishMsg(m)
			}
		}
	}()
	return func() {
		close(done)
		_ = sub.Unsubscribe()
	}
}
