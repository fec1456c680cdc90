// Package bus carries publishes between fanwire processes over NATS.
//
// Subjects. A topic name is 1-128 characters of [A-Za-z0-9_.:-]; none of them
// is a NATS wildcard ('*', '>') or whitespace, so a topic maps 1:1 onto an
// exact subject by prefixing it. A '.' in the topic just adds NATS tokens
// ("prices.BTC-USD" -> "fanwire.t.prices.BTC-USD"), which is fine because
// fanwire only ever subscribes to exact subjects, never to wildcards.
//
//	fanwire.in.<topic>  what a publisher sends; captured by the FANWIRE stream
//	fanwire.t.<topic>   what workers subscribe to; JetStream republishes every
//	                    stored message here, with the Fanwire-Seq header
//
// Sequencing (one seq per topic that every subscriber on every node sees):
// the JetStream stream FANWIRE keeps the recent messages of every topic
// (MaxMsgsPerSubject StreamHistory; workers replay them to resuming clients
// when they start to follow a topic). A publisher reads the topic's last Fanwire-Seq k and
// its stream sequence s, and publishes seq k+1 with the header
// Nats-Expected-Last-Subject-Sequence: s. The stream accepts it only if no one
// else published the topic in between (compare-and-swap); a loser re-reads
// and retries. So each seq is assigned exactly once, by whichever process
// wins the CAS, and the stream republishes messages in stream order, which is
// seq order, to fanwire.t.<topic>. Any node sharing the NATS server (or
// cluster) may publish; no node owns a topic. See Sequencer.
package bus

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Subject prefixes and the header that carries a message's seq.
const (
	StreamName = "FANWIRE"
	InPrefix   = "fanwire.in."
	OutPrefix  = "fanwire.t."
	SeqHeader  = "Fanwire-Seq"
	// FromHeader carries a client publication's sender stamp ({"user",
	// "info"}, built by the worker from the verified token).
	FromHeader = "Fanwire-From"
	// EphemeralHeader marks a message sent straight to fanwire.t.<topic>
	// (core NATS, no stream, no seq): live subscribers only.
	EphemeralHeader = "Fanwire-Ephemeral"
	// PubPrefix: workers send client publications to fanwire.pub.<topic> as
	// requests; the supervisor sequences them and answers with the seq.
	PubPrefix = "fanwire.pub."
	// EventHeader marks a presence event (join/leave, the body is the whole
	// message) sent straight to fanwire.t.<topic>.
	EventHeader = "Fanwire-Event"
	// PresencePrefix: workers publish their presence snapshots of a topic
	// on fanwire.presence.<topic> every second (SourceHeader names them).
	PresencePrefix = "fanwire.presence."
	SourceHeader   = "Fanwire-Source"
)

// ErrUnavailable wraps every failure to reach NATS or JetStream, so callers
// can tell "the bus is down" (HTTP 503) from a bad request.
var ErrUnavailable = errors.New("bus unavailable")

// InSubject is the subject a publish of topic is sent to.
func InSubject(topic string) string { return InPrefix + topic }

// OutSubject is the subject subscribers of topic listen on.
func OutSubject(topic string) string { return OutPrefix + topic }

// topicOf turns a fanwire.t.<topic> subject back into the topic ("" if not one).
func topicOf(subject string) string {
	t, ok := strings.CutPrefix(subject, OutPrefix)
	if !ok {
		return ""
	}
	return t
}

// Connect dials NATS and keeps reconnecting for ever. It returns at once even
// if the server is not up yet (RetryOnFailedConnect): publishes fail with
// ErrUnavailable until it is. Publishes are never buffered while
// disconnected, so a publish that reported failure is never sent later.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Warn("nats error", "subject", subj, "err", err)
		}),
	)
}
