package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler receives one message for a topic this process is interested in.
// Calls come from one goroutine, in the order NATS delivered them.
type Handler func(topic string, seq uint64, data []byte)

// Message is one delivery from the bus: a sequenced message (Seq > 0, From
// the sender stamp of a client publication, nil otherwise), an ephemeral
// one (Seq 0) or a presence event (Event).
type Message struct {
	Topic string
	Seq   uint64
	Data  []byte
	From  []byte
	Event bool // a presence event (join/leave): Data is the whole message
}

// MessageHandler is Handler with everything a message carries.
type MessageHandler func(m Message)

// Primer hears, once a topic's subscription is live on the NATS server, the
// recent messages the stream stored for it, oldest first (none, or it could
// not read them: empty). Everything newer reaches the Handler. Calls come
// from another goroutine than the Handler's, so the two may overlap: the
// receiver orders them by seq.
type Primer func(topic string, stored []Stored)

// Stored is one message of a topic as the stream keeps it.
type Stored struct {
	Seq  uint64
	Data []byte
	From []byte    // sender stamp of a client publication (nil: none)
	At   time.Time // when the stream stored it
}

// inboxSize is how many messages may wait for the handler; beyond it NATS
// drops them (slow consumer) and the next one's seq jumps: the subscriber
// then reads what it missed from the stream (fill). A var for tests.
var inboxSize = 16 << 10

// maxFill bounds one catch-up read per topic; the stream keeps at most
// StreamHistory per topic anyway. What cannot be filled reaches the handler
// as a jump in seq, which the node announces to its clients with a reset.
const maxFill = 1000

// Subscriber follows fanwire.t.<topic> for exactly the topics it is told
// local clients watch (interest-based): Interest is cheap and never blocks,
// so it can be a node's OnInterest hook. Subscriptions are made on a
// goroutine of their own and restored by nats.go after a reconnect.
type Subscriber struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	handle MessageHandler
	prime  Primer // may be nil
	log    *slog.Logger
	inbox  chan *nats.Msg // shared by all subscriptions: no goroutine per topic
	wake   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
	// ctx is cancelled first thing in Close: every NATS round trip the
	// subscriber makes derives from it (and has a timeout), so Close never
	// waits for a stalled or unreachable NATS.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]bool // topic -> wanted, not applied yet
	settles []chan struct{} // closed once pending is applied and flushed
	closed  bool

	subs   map[string]*nats.Subscription // owned by the interest goroutine
	stream jetstream.Stream              // owned by the interest goroutine; nil until found

	// follows has an entry per subscribed topic: the last message handed
	// to the handler. The map is guarded by fmu (the interest goroutine
	// adds and removes topics); the entries belong to the deliver goroutine.
	fmu       sync.Mutex
	follows   map[string]*follow
	reconnect chan nats.Status // CONNECTED after a reconnect: catch up every topic
	lagging   chan string      // topics whose messages NATS dropped (slow consumer)
	fillStr   jetstream.Stream // the deliver goroutine's stream handle; nil until found
	lost      chan struct{}    // closed when the stream was recreated under us
	lostOnce  sync.Once
}

// follow is where the handler is in one topic: fanwire seq, stream sequence
// and stream time (unix ns) of that message (0: nothing delivered since
// subscribing).
type follow struct {
	seq, streamSeq uint64
	at             int64
}

// NewSubscriber starts delivering to h; prime (optional) hears each newly
// followed topic's stored last message. Close stops it.
func NewSubscriber(nc *nats.Conn, h Handler, prime Primer, log *slog.Logger) *Subscriber {
	return NewMessageSubscriber(nc, func(m Message) {
		if m.Seq != 0 && !m.Event {
			h(m.Topic, m.Seq, m.Data)
		}
	}, prime, log)
}

// NewMessageSubscriber is NewSubscriber whose handler also gets sender
// stamps, ephemeral messages and presence events.
func NewMessageSubscriber(nc *nats.Conn, h MessageHandler, prime Primer, log *slog.Logger) *Subscriber {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("bus: jetstream context; topics will be primed empty", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		nc: nc, js: js, handle: h, prime: prime, log: log,
		ctx: ctx, cancel: cancel,
		inbox:     make(chan *nats.Msg, inboxSize),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		pending:   make(map[string]bool),
		subs:      make(map[string]*nats.Subscription),
		follows:   make(map[string]*follow),
		reconnect: nc.StatusChanged(nats.CONNECTED),
		lagging:   make(chan string, 64),
		lost:      make(chan struct{}),
	}
	// NATS tells the connection's error handler when it drops messages for
	// a full inbox; keep the handler Connect set and add the catch-up.
	prev := nc.Opts.AsyncErrorCB
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if prev != nil {
			prev(c, sub, err)
		}
		if sub != nil && errors.Is(err, nats.ErrSlowConsumer) {
			if topic := topicOf(sub.Subject); topic != "" {
				select {
				case s.lagging <- topic:
				default: // full: the next jump in seq catches up too
				}
			}
		}
	})
	s.wg.Add(2)
	go s.applyInterest()
	go s.deliver()
	return s
}

// Interest records that local clients do (true) or no longer do (false)
// watch topic. Coalesces: only the last word per topic counts.
func (s *Subscriber) Interest(topic string, interested bool) {
	s.mu.Lock()
	s.pending[topic] = interested
	s.mu.Unlock()
	s.poke()
}

func (s *Subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Settle waits until every Interest call made before it is in effect on the
// NATS server (subscribed and flushed). For tests and orderly start-up.
func (s *Subscriber) Settle(ctx context.Context) error {
	ch := make(chan struct{})
	s.mu.Lock()
	s.settles = append(s.settles, ch)
	s.mu.Unlock()
	s.poke()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Subscriber) applyInterest() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		changes, settles := s.pending, s.settles
		s.pending, s.settles = make(map[string]bool, len(changes)), nil
		s.mu.Unlock()
		var wanted []string
		for topic, want := range changes {
			s.apply(topic, want)
			if want {
				wanted = append(wanted, topic)
			}
		}
		if len(settles) > 0 || len(wanted) > 0 && s.prime != nil {
			// After the flush the server has our subscriptions: whatever the
			// stream stores from now on reaches us, so its current last
			// message is all a newly followed topic needs to catch up.
			if err := s.flush(); err != nil {
				s.log.Warn("bus: flush after subscribing", "err", err)
			}
		}
		if s.prime != nil {
			for _, topic := range wanted {
				if s.ctx.Err() != nil {
					break // closing: the primer is not needed any more
				}
				s.prime(topic, s.stored(topic))
			}
		}
		for _, ch := range settles {
			close(ch)
		}
	}
}

// stored reads the messages the stream keeps for topic, oldest first (none
// if it has none or they cannot be read: the topic is then served from the
// live stream only).
func (s *Subscriber) stored(topic string) []Stored {
	if s.js == nil {
		return nil
	}
	if s.stream == nil {
		ctx, cancel := s.op()
		st, err := s.js.Stream(ctx, StreamName)
		cancel()
		if err != nil {
			if !errors.Is(err, jetstream.ErrStreamNotFound) && s.ctx.Err() == nil {
				s.log.Warn("bus: stream for priming", "err", err)
			}
			return nil
		}
		s.stream = st
	}
	var out []Stored
	err := s.read(s.stream, jetstream.ConsumerConfig{FilterSubject: InSubject(topic)}, StreamHistory,
		func(m jetstream.Msg) bool {
			seq, err := strconv.ParseUint(m.Headers().Get(SeqHeader), 10, 64)
			meta, merr := m.Metadata()
			if err == nil && merr == nil && seq > 0 {
				out = append(out, Stored{Seq: seq, Data: m.Data(), From: fromHeader(m.Headers()), At: meta.Timestamp})
			}
			return true
		})
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("bus: reading stored messages", "topic", topic, "err", err)
	}
	return out
}

// op bounds one NATS round trip: publishTimeout, or until Close.
func (s *Subscriber) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, publishTimeout)
}

// flush waits until the NATS server has everything sent so far (bounded by op).
func (s *Subscriber) flush() error {
	ctx, cancel := s.op()
	defer cancel()
	return s.nc.FlushWithContext(ctx)
}

// dropTimeout bounds deleting a finished reading consumer; it is not
// cancelled by Close (so an orderly Close still cleans up), which makes it
// part of how long Close can take on a stalled link.
const dropTimeout = time.Second

// errNoConsumer wraps read's failures to make its consumer.
var errNoConsumer = errors.New("making a reading consumer")

// read hands each, in stream order, the stored messages that cfg selects
// (its filter and start), until each returns false, max were read or the
// stream has no more. It reads with a plain ephemeral consumer that it
// deletes on every path (the server also drops it after InactiveThreshold).
// Not an ordered consumer: its Fetch recreates the consumer on each call,
// retrying for ever on contexts of its own that neither a timeout nor Close
// can stop (that hung Close while NATS was down).
func (s *Subscriber) read(st jetstream.Stream, cfg jetstream.ConsumerConfig, max int, each func(jetstream.Msg) bool) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = 5 * time.Second
	ctx, cancel := s.op()
	cons, err := st.CreateConsumer(ctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errNoConsumer, err)
	}
	info := cons.CachedInfo()
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), dropTimeout)
		defer cancel()
		if err := st.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Debug("bus: deleting reading consumer (the server drops it soon anyway)", "err", err)
		}
	}()
	// The consumer knows how many messages it has for us when it is made:
	// fetch exactly those, so no fetch waits for messages that are not there.
	want := int(min(info.NumPending, uint64(max)))
	for got := 0; got < want; {
		ctx, cancel := s.op()
		batch, err := cons.Fetch(min(StreamHistory, want-got), jetstream.FetchContext(ctx))
		if err != nil {
			cancel()
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if !each(m) {
				cancel() // ends the fetch; its channel is buffered for the whole batch
				return nil
			}
		}
		err = batch.Error()
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 {
			return nil
		}
		got += n
	}
	return nil
}

func (s *Subscriber) apply(topic string, want bool) {
	sub, have := s.subs[topic]
	switch {
	case want && !have:
		s.fmu.Lock() // before subscribing, so the first message is not taken for a stale one
		s.follows[topic] = &follow{}
		s.fmu.Unlock()
		sub, err := s.nc.ChanSubscribe(OutSubject(topic), s.inbox)
		if err != nil {
			// Only fails on a closed connection or a bad subject; both final.
			s.log.Error("bus: subscribe", "topic", topic, "err", err)
			return
		}
		s.subs[topic] = sub
	case !want && have:
		if err := sub.Unsubscribe(); err != nil {
			s.log.Warn("bus: unsubscribe", "topic", topic, "err", err)
		}
		delete(s.subs, topic)
		s.fmu.Lock()
		delete(s.follows, topic)
		s.fmu.Unlock()
	}
}

func (s *Subscriber) deliver() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.reconnect:
			s.catchUpAll()
		case topic := <-s.lagging:
			if f := s.followed(topic); f != nil {
				s.fill(topic, f, math.MaxUint64)
			}
		case m := <-s.inbox:
			topic := topicOf(m.Subject)
			if topic != "" && m.Header.Get(EventHeader) != "" {
				s.handle(Message{Topic: topic, Data: m.Data, Event: true})
				continue
			}
			if topic != "" && m.Header.Get(EphemeralHeader) != "" {
				s.handle(Message{Topic: topic, Data: m.Data, From: fromHeader(m.Header)})
				continue
			}
			seq, err := strconv.ParseUint(m.Header.Get(SeqHeader), 10, 64)
			if topic == "" || err != nil || seq == 0 {
				s.log.Warn("bus: dropping message without topic or seq", "subject", m.Subject)
				continue
			}
			f := s.followed(topic)
			if f == nil {
				continue // unsubscribed meanwhile
			}
			streamSeq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			at := stampOf(m.Header.Get(jetstream.TimeStampHeaer))
			if f.seq > 0 && seq <= f.seq {
				// Already delivered by a fill, unless it is newer than what
				// was: then seqs started over, the stream was recreated
				// (NATS lost its store) and this node's epoch is stale.
				if at > f.at && f.at > 0 {
					s.streamRecreated(topic, seq, f.seq)
				}
				continue
			}
			if f.seq > 0 && seq > f.seq+1 {
				// Missed some (NATS dropped them: we were too slow, or the
				// link was down): read them from the stream first.
				s.fill(topic, f, seq)
			}
			s.pass(topic, f, seq, streamSeq, at, m.Data, fromHeader(m.Header))
		}
	}
}

func (s *Subscriber) followed(topic string) *follow {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.follows[topic]
}

// pass hands one message to the handler and records it as delivered.
func (s *Subscriber) pass(topic string, f *follow, seq, streamSeq uint64, at int64, data, from []byte) {
	s.handle(Message{Topic: topic, Seq: seq, Data: data, From: from})
	f.seq = seq
	if streamSeq > 0 {
		f.streamSeq, f.at = streamSeq, at
	}
}

// stampOf reads a Nats-Time-Stamp header (0 if absent or malformed).
func stampOf(h string) int64 {
	ts, err := time.Parse(time.RFC3339Nano, h)
	if err != nil {
		return 0
	}
	return ts.UnixNano()
}

func (s *Subscriber) streamRecreated(topic string, seq, had uint64) {
	s.lostOnce.Do(func() {
		s.log.Error("bus: the FANWIRE stream was recreated (seqs started over): this node's epoch is stale",
			"topic", topic, "seq", seq, "had", had)
		close(s.lost)
	})
}

// StreamLost is closed once the subscriber sees the stream's seqs start
// over (NATS came back without its store and the stream was recreated):
// the node's epoch and seqs are stale, so a worker exits and is restarted
// with the new epoch; its clients then resume with an honest reset.
func (s *Subscriber) StreamLost() <-chan struct{} { return s.lost }

// catchUpAll runs after NATS reconnected: anything published while the link
// was down never reached us live, so every followed topic reads the stream
// after its last delivered message. The flush first makes sure nats.go's
// resubscriptions are in effect, so nothing falls between the two.
func (s *Subscriber) catchUpAll() {
	if err := s.flush(); err != nil {
		s.log.Warn("bus: flush after reconnect", "err", err)
	}
	s.fmu.Lock()
	topics := make(map[string]*follow, len(s.follows))
	for t, f := range s.follows {
		topics[t] = f
	}
	s.fmu.Unlock()
	s.log.Info("bus: reconnected; catching up from the stream", "topics", len(topics))
	for topic, f := range topics {
		if s.ctx.Err() != nil {
			return // closing
		}
		s.fill(topic, f, math.MaxUint64)
	}
}

// fill delivers, in order, the stream's messages of topic after f and
// before seq before (at most maxFill). With no position yet (nothing
// delivered since subscribing) it reads every stored message: the node
// drops those it has. If the stream no longer has the next one, the handler
// sees the jump, and the node announces it with a reset.
func (s *Subscriber) fill(topic string, f *follow, before uint64) {
	if s.js == nil {
		return
	}
	if s.fillStr == nil {
		ctx, cancel := s.op()
		st, err := s.js.Stream(ctx, StreamName)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("bus: stream for catching up", "topic", topic, "err", err)
			}
			return
		}
		s.fillStr = st
	}
	cfg := jetstream.ConsumerConfig{FilterSubject: InSubject(topic)}
	if f.streamSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.streamSeq+1
	}
	err := s.read(s.fillStr, cfg, maxFill, func(m jetstream.Msg) bool {
		seq, err := strconv.ParseUint(m.Headers().Get(SeqHeader), 10, 64)
		meta, merr := m.Metadata()
		if err != nil || merr != nil || seq == 0 || seq <= f.seq {
			return true
		}
		if seq >= before {
			return false
		}
		s.pass(topic, f, seq, meta.Sequence.Stream, meta.Timestamp.UnixNano(), m.Data(), fromHeader(m.Headers()))
		return true
	})
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("bus: catching up", "topic", topic, "err", err)
		if errors.Is(err, errNoConsumer) {
			s.fillStr = nil // maybe recreated: look it up again next time
		}
	}
}

// Close stops delivery and unsubscribes everything. It does not close nc.
func (s *Subscriber) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel() // first: whatever NATS round trip is in flight gives up now
	close(s.done)
	s.wg.Wait()
	s.nc.RemoveStatusListener(s.reconnect)
	for topic, sub := range s.subs {
		sub.Unsubscribe() //nolint:errcheck // closing anyway
		delete(s.subs, topic)
	}
}

// fromHeader is the sender stamp of a message (nil: none).
func fromHeader(h nats.Header) []byte {
	if v := h.Get(FromHeader); v != "" {
		return []byte(v)
	}
	return nil
}
