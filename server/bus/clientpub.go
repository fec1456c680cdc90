package bus

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fanwire/fanwire/server/wire"
	"github.com/nats-io/nats.go"
)

// Client publications in worker mode. A worker's clients publish on the
// worker's loops, but only the supervisor sequences: the worker sends a
// request to fanwire.pub.<topic> (data as the body, the sender stamp in
// FromHeader), the supervisor's PublishServer runs Sequencer.PublishFrom
// and answers {"seq":N} or {"error":"..."}. The message then reaches every
// worker through the stream, like an HTTP publish. Both sides run a small
// fixed pool of goroutines with a bounded queue: a full queue is refused at
// once (bus_unavailable), never buffered without bound.

// PubSubject is the request subject of a client publication of topic.
func PubSubject(topic string) string { return PubPrefix + topic }

// pubReply is the supervisor's answer.
type pubReply struct {
	Seq   uint64 `json:"seq,omitempty"`
	Error string `json:"error,omitempty"`
}

// PublishServer answers client publications for a Sequencer.
type PublishServer struct {
	sub   *nats.Subscription
	jobs  chan *nats.Msg
	wg    sync.WaitGroup
	once  sync.Once
	log   *slog.Logger
	seq   *Sequencer
	close chan struct{}
	done  atomic.Uint64 // publications sequenced and answered with a seq
}

// ServePublishes starts answering fanwire.pub.> with workers goroutines and
// at most queue requests waiting.
func ServePublishes(nc *nats.Conn, seq *Sequencer, workers, queue int, log *slog.Logger) (*PublishServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &PublishServer{jobs: make(chan *nats.Msg, queue), log: log, seq: seq, close: make(chan struct{})}
	sub, err := nc.Subscribe(PubPrefix+">", func(m *nats.Msg) {
		select {
		case s.jobs <- m:
		default:
			respond(m, pubReply{Error: "too many client publishes in flight on the supervisor"})
		}
	})
	if err != nil {
		return nil, err
	}
	s.sub = sub
	for range workers {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

func (s *PublishServer) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.close:
			return
		case m := <-s.jobs:
			topic, _ := strings.CutPrefix(m.Subject, PubPrefix)
			seq, _, err := s.seq.PublishFrom(topic, m.Data, fromHeader(m.Header))
			if err != nil {
				respond(m, pubReply{Error: err.Error()})
				continue
			}
			s.done.Add(1)
			respond(m, pubReply{Seq: seq})
		}
	}
}

// Sequenced is how many client publications s sequenced (they are part of
// the Sequencer's Published counter too).
func (s *PublishServer) Sequenced() uint64 { return s.done.Load() }

func respond(m *nats.Msg, r pubReply) {
	b, _ := json.Marshal(r)
	_ = m.Respond(b)
}

// Close stops answering; requests in flight get no answer (their workers time out).
func (s *PublishServer) Close() {
	s.once.Do(func() {
		_ = s.sub.Unsubscribe()
		close(s.close)
		s.wg.Wait()
	})
}

// ClientPublisher is a worker's side: it implements server.ClientPublisher.
type ClientPublisher struct {
	nc   *nats.Conn
	jobs chan pubJob
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type pubJob struct {
	msg  *nats.Msg
	done func(seq uint64, err error)
}

// NewClientPublisher sends client publications over nc with workers
// goroutines and at most inflight waiting.
func NewClientPublisher(nc *nats.Conn, workers, inflight int) *ClientPublisher {
	p := &ClientPublisher{nc: nc, jobs: make(chan pubJob, inflight), done: make(chan struct{})}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// Publish sends one client publication; done is called once, from another
// goroutine (or at once for an ephemeral message and a refusal), with the
// seq (0 for an ephemeral message). data and from are copied.
func (p *ClientPublisher) Publish(topic string, data, from []byte, ephemeral bool, done func(seq uint64, err error)) {
	if !wire.ValidTopic(topic) {
		done(0, wire.ErrInvalidTopic)
		return
	}
	if !p.nc.IsConnected() {
		done(0, fmt.Errorf("%w: not connected to nats (%s)", ErrUnavailable, p.nc.Status()))
		return
	}
	if ephemeral {
		// Straight to the subscribers' subject: no stream, no seq.
		m := nats.NewMsg(OutSubject(topic))
		m.Header.Set(EphemeralHeader, "1")
		if from != nil {
			m.Header.Set(FromHeader, string(from))
		}
		m.Data = data // PublishMsg copies it into the connection's buffer
		if err := p.nc.PublishMsg(m); err != nil {
			done(0, fmt.Errorf("%w: %v", ErrUnavailable, err))
			return
		}
		done(0, nil)
		return
	}
	m := nats.NewMsg(PubSubject(topic))
	if from != nil {
		m.Header.Set(FromHeader, string(from))
	}
	m.Data = append([]byte(nil), data...)
	select {
	case p.jobs <- pubJob{msg: m, done: done}:
	default:
		done(0, fmt.Errorf("%w: too many client publishes in flight on this worker", ErrUnavailable))
	}
}

func (p *ClientPublisher) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case j := <-p.jobs:
			j.done(p.request(j.msg))
		}
	}
}

func (p *ClientPublisher) request(m *nats.Msg) (uint64, error) {
	resp, err := p.nc.RequestMsg(m, publishTimeout)
	if err != nil {
		return 0, fmt.Errorf("%w: sequencer: %v", ErrUnavailable, err)
	}
	var r pubReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("%w: sequencer answered %q", ErrUnavailable, resp.Data)
	}
	if r.Error != "" || r.Seq == 0 {
		return 0, fmt.Errorf("%w: %s", ErrUnavailable, r.Error)
	}
	return r.Seq, nil
}

// Close stops the pool; queued publishes are answered bus_unavailable.
func (p *ClientPublisher) Close() {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		for {
			select {
			case j := <-p.jobs:
				j.done(0, fmt.Errorf("%w: shutting down", ErrUnavailable))
			default:
				return
			}
		}
	})
}
