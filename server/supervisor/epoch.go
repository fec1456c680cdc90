package supervisor

import (
	"context"
	"log/slog"
	"time"

	"github.com/fanwire/fanwire/server/bus"
	"github.com/nats-io/nats.go"
)

// epochWait bounds the attempts once the bus is connected: JetStream may
// still be recovering its store right after a nats-server restart.
const epochWait = 10 * time.Second

// sharedEpoch asks the stream for its epoch, the one every worker and node
// names. A worker (re)started while NATS is down waits for the bus instead
// of falling back to an epoch of its own: with a private epoch every client
// that resumes on it would get a reset, and it could not take over the
// other workers' clients for the rest of its life (found by `make soak`).
// It gives up (the caller warns and runs with per-node epochs) only if
// NATS answers but the stream cannot be had within epochWait, and returns
// ctx's error if the worker is stopped meanwhile.
func sharedEpoch(ctx context.Context, nc *nats.Conn, log *slog.Logger) (string, error) {
	var connected time.Time
	waiting := time.Now()
	for {
		if nc.IsConnected() {
			if connected.IsZero() {
				connected = time.Now()
			}
			actx, cancel := context.WithTimeout(ctx, epochWait)
			epoch, err := bus.Epoch(actx, nc)
			cancel()
			if err == nil || ctx.Err() != nil || time.Since(connected) >= epochWait {
				return epoch, err
			}
		} else {
			connected = time.Time{}
			if time.Since(waiting) >= epochWait {
				waiting = time.Now()
				log.Warn("waiting for nats before listening: the stream's epoch is needed for resume", "status", nc.Status().String())
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
