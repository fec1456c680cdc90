package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/bus"
	"github.com/fanwire/fanwire/server/metrics"
	"github.com/nats-io/nats.go"
)

// A worker is this same binary re-executed by the supervisor; it learns its
// part from the environment rather than from flags, so `fanwire serve
// --help` stays about what users set.
const (
	envID      = "FANWIRE_WORKER_ID"      // 1..N; unset in every other process
	envNATS    = "FANWIRE_WORKER_NATS"    // bus URL
	envControl = "FANWIRE_WORKER_CONTROL" // NATS subject answered with the node's stats
	// readyFD is where a worker writes one line once its node listens; until
	// then the supervisor counts it as not ready (/healthz 503).
	readyFD = 3
)

// WorkerEnv is a worker's part in a supervised node.
type WorkerEnv struct {
	ID      int
	NATSURL string
	Control string
}

// WorkerFromEnv reports whether this process was started as a worker.
func WorkerFromEnv() (WorkerEnv, bool) {
	id, err := strconv.Atoi(os.Getenv(envID))
	if err != nil || id < 1 {
		return WorkerEnv{}, false
	}
	return WorkerEnv{ID: id, NATSURL: os.Getenv(envNATS), Control: os.Getenv(envControl)}, true
}

// workerReport is the answer on the control subject.
type workerReport struct {
	PID     int              `json:"pid"`
	Bus     string           `json:"bus"`
	Stats   server.Stats     `json:"stats"`
	Metrics metrics.Snapshot `json:"metrics"` // for the supervisor's /metrics (metrics.go)

	Goroutines int `json:"goroutines"` // a soak checks they return to baseline
}

// workerDrainTimeout leaves the supervisor's StopTimeout some slack before
// it resorts to SIGKILL.
const workerDrainTimeout = DefaultStopTimeout - 3*time.Second

// RunWorker runs one worker's node until ctx is done, then drains it
// (Node.Shutdown: every client gets 1001). cfg is the node config from the
// command line; the control API is always off in a worker.
func RunWorker(ctx context.Context, cfg server.Config, env WorkerEnv, log *slog.Logger) error {
	log = log.With("worker", env.ID)
	nc, err := bus.Connect(env.NATSURL, fmt.Sprintf("fanwire-worker-%d", env.ID), log.With("component", "bus"))
	if err != nil {
		return fmt.Errorf("nats %s: %w", env.NATSURL, err)
	}
	defer nc.Close()

	var node *server.Node // set before Start; the bus only calls after interest
	sub := bus.NewMessageSubscriber(nc, func(m bus.Message) {
		var err error
		switch {
		case m.Event:
			node.DeliverEvent(m.Topic, m.Data)
			return
		case m.Seq == 0:
			_, err = node.DeliverEphemeral(m.Topic, m.Data, m.From)
		default:
			_, err = node.DeliverFrom(m.Topic, m.Seq, m.Data, m.From)
		}
		if err != nil {
			log.Warn("deliver", "topic", m.Topic, "seq", m.Seq, "err", err)
		}
	}, func(topic string, stored []bus.Stored) {
		msgs := make([]server.StoredMessage, len(stored))
		for i, m := range stored {
			msgs[i] = server.StoredMessage{Seq: m.Seq, Data: m.Data, From: m.From, At: m.At}
		}
		node.Prime(topic, msgs)
	}, log.With("component", "bus"))
	defer sub.Close()

	// Seqs come from the stream, so its epoch is every topic's, on every
	// worker and node: a client that reconnects elsewhere can resume.
	epoch, err := sharedEpoch(ctx, nc, log) // epoch.go: waits out a bus outage
	if err != nil && ctx.Err() != nil {
		return nil // stopped before the bus came back: nothing to drain
	}
	if err != nil {
		log.Warn("no shared epoch: resume works only on the same worker", "err", err)
	}
	cfg.Logger, cfg.HTTPListen, cfg.OnInterest = log, "", sub.Interest
	cfg.AwaitPrime, cfg.Epoch = true, epoch
	// Client publications go to the supervisor's sequencer (bus/clientpub.go).
	pub := bus.NewClientPublisher(nc, clientPublishWorkers, clientPublishInflight)
	defer pub.Close()
	cfg.ClientPublish = pub
	cfg.Presence.Announce = announcePresence(nc, log)
	if node, err = server.NewNode(cfg); err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	if env.Control != "" {
		ctl, err := nc.Subscribe(env.Control, func(m *nats.Msg) {
			if b, ok := answerTopics(node, m.Data); ok { // topics.go: /topics in worker mode
				_ = m.Respond(b)
				return
			}
			b, _ := json.Marshal(workerReport{PID: os.Getpid(), Goroutines: runtime.NumGoroutine(), Bus: nc.Status().String(), Stats: node.Stats(), Metrics: node.Metrics()})
			_ = m.Respond(b)
		})
		if err != nil {
			log.Warn("control subject", "err", err)
		} else {
			defer ctl.Unsubscribe() //nolint:errcheck // closing anyway
		}
	}
	defer serveUserActions(nc, node, env, log)() // users.go
	if ready := os.NewFile(readyFD, "ready"); ready != nil {
		fmt.Fprintln(ready, os.Getpid())
		ready.Close()
	}
	stopPresence := sharePresence(nc, node, env.ID, log)
	defer stopPresence()
	log.Info("worker listening", "ws", node.WSAddr(), "pid", os.Getpid(), "loops", cfg.Loops)

	// The stream created again (NATS lost its store): seqs start over, so
	// this worker's epoch must change. Checked against the stream itself so
	// the creation that gave us our epoch does not count.
	recreated := make(chan struct{}, 1)
	if epoch != "" {
		adv, err := nc.Subscribe(bus.StreamCreatedSubject, func(*nats.Msg) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if now, err := bus.CurrentEpoch(ctx, nc); err == nil && now != epoch {
				select {
				case recreated <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			log.Warn("stream advisories", "err", err)
		} else {
			defer adv.Unsubscribe() //nolint:errcheck // closing anyway
		}
	}
	var exitErr error
	select {
	case <-ctx.Done():
	case <-recreated:
		exitErr = errors.New("the FANWIRE stream was recreated; restarting with its new epoch")
	case <-sub.StreamLost():
		// Seqs started over on the bus: this node's epoch would let clients
		// resume across the break. Exit; the supervisor restarts us with the
		// new epoch and clients that resume get a reset.
		exitErr = errors.New("the FANWIRE stream was recreated; restarting with its new epoch")
	}
	log.Info("worker draining: closing connections with 1001")
	shutCtx, cancel := context.WithTimeout(context.Background(), workerDrainTimeout)
	defer cancel()
	return errors.Join(exitErr, node.Shutdown(shutCtx))
}

// A worker sends client publications to the sequencer with a few
// goroutines; at most clientPublishInflight wait, beyond that the client is
// told bus_unavailable. The supervisor serves them with as many.
const (
	clientPublishWorkers  = 8
	clientPublishInflight = 1024
)
