package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/fanwire/fanwire/server/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishTimeout bounds one JetStream round trip; a publish that cannot get
// an answer in time reports ErrUnavailable (HTTP 503) rather than hanging.
const publishTimeout = 3 * time.Second

// maxCASAttempts bounds retries when other nodes keep winning the same topic;
// each retry waits a random moment (growing with the attempt) so that two
// publishers of one hot topic stop colliding in lockstep.
const maxCASAttempts = 16

// Sequencer assigns each publish its per-topic seq through the FANWIRE
// stream (see the package comment) and hands it to NATS for fan-out. It
// implements api.Publisher. Safe for concurrent use; publishes of one topic
// through one Sequencer are serialized, different topics run in parallel.
type Sequencer struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu     sync.Mutex
	stream jetstream.Stream       // nil until ensured
	topics map[string]*topicState // guarded by mu

	counters SequencerCounters // counters.go
}

// topicState caches what this process last saw of a topic in the stream, so
// a publish normally costs one round trip. It is only a guess: the stream's
// CAS is what makes the seq right.
type topicState struct {
	mu        sync.Mutex
	known     bool
	seq       uint64 // last fanwire seq of the topic
	streamSeq uint64 // its stream sequence, for Nats-Expected-Last-Subject-Sequence
}

// NewSequencer publishes over nc (see Connect).
func NewSequencer(nc *nats.Conn) (*Sequencer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Sequencer{nc: nc, js: js, topics: make(map[string]*topicState)}, nil
}

// StreamHistory is how many recent messages of each topic the stream keeps:
// what a worker that starts to follow a topic can replay to resuming clients
// (and the newest is the topic's current value).
const StreamHistory = 100

// StreamConfig is the FANWIRE stream every node creates or updates to the
// same settings. File storage, so seqs survive a NATS restart (a reset seq
// would look like duplicates to nodes that saw the old ones).
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "fanwire per-topic sequencing and recent messages of every topic",
		Subjects:          []string{InPrefix + ">"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: StreamHistory,
		Discard:           jetstream.DiscardOld,
		Replicas:          1,
		Duplicates:        DedupWindow,
		RePublish:         &jetstream.RePublish{Source: InPrefix + ">", Destination: OutPrefix + ">"},
	}
}

// Ensure creates or updates the stream. Publish calls it lazily, so a node
// may start before NATS does; calling it at start surfaces errors early
// (JetStream not enabled on the server).
func (s *Sequencer) Ensure(ctx context.Context) error {
	_, err := s.ensure(ctx)
	return err
}

func (s *Sequencer) ensure(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	st, err := s.js.CreateOrUpdateStream(ctx, streamConfigFor(ctx, s.js, s.nc))
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream stream %s: %v", ErrUnavailable, StreamName, err)
	}
	s.stream = st
	return st, nil
}

// streamConfigFor is StreamConfig with the replica count for this NATS: an
// existing stream keeps its own (never scaled down by a node that sees less
// of the cluster); a new one gets 3 replicas on a cluster of 3 or more
// servers, so losing one server loses nothing, and 1 on a single server.
func streamConfigFor(ctx context.Context, js jetstream.JetStream, nc *nats.Conn) jetstream.StreamConfig {
	cfg := StreamConfig()
	if st, err := js.Stream(ctx, StreamName); err == nil {
		cfg.Replicas = st.CachedInfo().Config.Replicas
	} else if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		cfg.Replicas = 3
	}
	return cfg
}

func (s *Sequencer) topic(name string) *topicState {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[name]
	if t == nil {
		t = &topicState{}
		s.topics[name] = t
	}
	return t
}

// Publish assigns the topic's next seq and publishes data (a JSON value).
// subscribers is always -1 (unknown): the supervisor cannot see the workers'
// clients without another round trip per publish.
func (s *Sequencer) Publish(topic string, data []byte) (seq uint64, subscribers int, err error) {
	seq, _, err = s.PublishKeyed(topic, data, "")
	return seq, -1, err
}

// DedupWindow is how long the stream remembers idempotency keys.
const DedupWindow = 2 * time.Minute

// PublishKeyed is Publish with an idempotency key (none if ""): a second
// publish of the same key on the same topic within DedupWindow, from any
// node sharing the stream, is not stored again; it answers the original seq
// with duplicate set. The stream de-duplicates (Nats-Msg-Id), so a publish
// that timed out but was stored can be retried safely.
func (s *Sequencer) PublishKeyed(topic string, data []byte, key string) (seq uint64, duplicate bool, err error) {
	return s.publish(topic, data, key, nil)
}

// PublishFrom is Publish with a client publication's sender stamp (nil:
// none), stored and delivered with the message (FromHeader).
func (s *Sequencer) PublishFrom(topic string, data, from []byte) (seq uint64, subscribers int, err error) {
	seq, _, err = s.publish(topic, data, "", from)
	return seq, -1, err
}

func (s *Sequencer) publish(topic string, data []byte, key string, from []byte) (seq uint64, duplicate bool, err error) {
	if !wire.ValidTopic(topic) {
		return 0, false, wire.ErrInvalidTopic
	}
	defer s.count(&err)
	if !s.nc.IsConnected() {
		return 0, false, fmt.Errorf("%w: not connected to nats (%s)", ErrUnavailable, s.nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	st, err := s.ensure(ctx)
	if err != nil {
		return 0, false, err
	}
	t := s.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	for attempt := range maxCASAttempts {
		if attempt > 0 {
			time.Sleep(rand.N(time.Duration(attempt) * 200 * time.Microsecond))
		}
		if !t.known {
			if err := t.load(ctx, st, topic); err != nil {
				s.checkStream(err)
				return 0, false, err
			}
		}
		msg := nats.NewMsg(InSubject(topic))
		msg.Header.Set(SeqHeader, strconv.FormatUint(t.seq+1, 10))
		if key != "" {
			msg.Header.Set(jetstream.MsgIDHeader, topic+" "+key) // a space is in no topic
		}
		if from != nil {
			msg.Header.Set(FromHeader, string(from))
		}
		msg.Data = data
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(t.streamSeq))
		if err == nil && ack.Duplicate {
			// Not stored again; t is still right. The original's seq is in
			// its header.
			orig, err := st.GetMsg(ctx, ack.Sequence)
			if err != nil {
				return 0, false, fmt.Errorf("%w: reading the original of a duplicate publish: %v", ErrUnavailable, err)
			}
			seq, err := strconv.ParseUint(orig.Header.Get(SeqHeader), 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("%w: original of a duplicate publish has no valid %s", ErrUnavailable, SeqHeader)
			}
			return seq, true, nil
		}
		if err == nil {
			t.seq, t.streamSeq = t.seq+1, ack.Sequence
			return t.seq, false, nil
		}
		t.known = false
		if !isWrongLastSeq(err) {
			s.checkStream(err)
			return 0, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// Another publisher took this seq: re-read and try the next one.
		s.counters.CASRetries.Add(1)
	}
	return 0, false, fmt.Errorf("%w: topic %q: too much contention from other publishers", ErrUnavailable, topic)
}

// checkStream forgets the stream after an error that says it is gone (NATS
// came back without it), so the next publish creates it again rather than
// failing until fanwire restarts.
func (s *Sequencer) checkStream(err error) {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || isAPIError(err, jetstream.JSErrCodeStreamNotFound) {
		s.mu.Lock()
		s.stream = nil
		s.mu.Unlock()
	}
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// load reads the topic's last message from the stream (none: seq 0).
func (t *topicState) load(ctx context.Context, st jetstream.Stream, topic string) error {
	m, err := st.GetLastMsgForSubject(ctx, InSubject(topic))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		t.seq, t.streamSeq = 0, 0
	case err != nil:
		return fmt.Errorf("%w: reading last seq of %q: %w", ErrUnavailable, topic, err)
	default:
		seq, perr := strconv.ParseUint(m.Header.Get(SeqHeader), 10, 64)
		if perr != nil {
			return fmt.Errorf("%w: last message of %q has no valid %s header", ErrUnavailable, topic, SeqHeader)
		}
		t.seq, t.streamSeq = seq, m.Sequence
	}
	t.known = true
	return nil
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// StreamCreatedSubject is JetStream's advisory that the FANWIRE stream was
// created: after start-up that means it was lost and created again.
const StreamCreatedSubject = "$JS.EVENT.ADVISORY.STREAM.CREATED." + StreamName

// CurrentEpoch is the epoch of the FANWIRE stream as it is now (without
// creating it).
func CurrentEpoch(ctx context.Context, nc *nats.Conn) (string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		return "", err
	}
	return epochOf(st), nil
}

func epochOf(st jetstream.Stream) string {
	return "s" + strconv.FormatInt(st.CachedInfo().Created.UnixNano(), 36)
}

// Epoch names the FANWIRE stream's run of seqs after its creation time
// (creating the stream if needed). Workers use it as every topic's epoch, so
// a client can resume on any worker or node; a recreated stream, whose seqs
// start again, gets a new one.
func Epoch(ctx context.Context, nc *nats.Conn) (string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	st, err := js.CreateOrUpdateStream(ctx, streamConfigFor(ctx, js, nc))
	if err != nil {
		return "", fmt.Errorf("%w: jetstream stream %s: %v", ErrUnavailable, StreamName, err)
	}
	return epochOf(st), nil
}
