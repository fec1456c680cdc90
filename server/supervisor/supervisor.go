// Package supervisor runs `fanwire serve --workers N`: one supervisor
// process and N worker processes that share the WebSocket port.
//
//   - The supervisor starts an embedded NATS server (or joins one given by
//     URL), serves the control HTTP API, and is where publishes enter: its
//     api.Publisher is a bus.Sequencer, so each publish gets its per-topic
//     seq once, before fan-out (see package bus for how that holds across
//     several nodes sharing NATS).
//   - Each worker is this same binary re-executed with the worker environment
//     (FANWIRE_WORKER_*). It runs a server.Node without a control API on the
//     same --listen address and loop count (SO_REUSEPORT: the kernel spreads
//     new connections over every worker's listeners), follows NATS only for
//     topics its clients watch, and hands each message to Node.Deliver.
//   - A worker that dies is restarted with backoff; SIGTERM/SIGINT to the
//     supervisor is passed to every worker, whose Node.Shutdown closes its
//     clients with 1001, and the supervisor waits for them.
//
// Capacity: each process has its own open-files limit (20,000 on the build
// machine, not raisable there), so N workers hold about N x 19,000
// connections; a worker at its limit refuses new sockets and the kernel's
// SO_REUSEPORT hashing still sends it its share.
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Config is what the supervisor needs; the cmd layer fills it from flags.
type Config struct {
	Workers     int
	Command     []string  // argv that starts one worker: executable, then its args
	Listen      string    // WebSocket address every worker binds (a concrete port)
	HTTPListen  string    // control API address; port 0 picks a free one
	NATSURL     string    // join this NATS server; "" = start an embedded one
	NATSPort    int       // embedded NATS port on 127.0.0.1; 0 = a free port
	MaxBody     int64     // publish body cap (0 = api default)
	Page        []byte    // demo page served at GET /
	Output      io.Writer // workers' stdout/stderr; nil = os.Stderr
	StopTimeout time.Duration
	Logger      *slog.Logger
	APIKeys     api.Keys // control API keys (see api.Options); the workers never get them
	AdminKeys   api.Keys
	Metrics     string // --metrics-listen: an address serving only GET /metrics (every worker's), open to scrapers (metrics.go)
}

// DefaultStopTimeout bounds the graceful drain before workers are killed.
const DefaultStopTimeout = 15 * time.Second

// Supervisor owns the bus, the control API and the worker processes.
type Supervisor struct {
	cfg      Config
	log      *slog.Logger
	embedded *bus.Embedded
	nc       *nats.Conn
	seq      *bus.Sequencer
	pubs     *bus.PublishServer // answers workers' client publications
	natsURL  string
	control  string // subject prefix for asking workers their stats
	workers  []*worker
	httpSrv  *http.Server
	httpAddr string
	stopping atomic.Bool
	wg       sync.WaitGroup // one per worker keeper
	met      supMetrics     // metrics.go
}

// New checks cfg; Start brings everything up.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("supervisor: %d workers; want at least 1", cfg.Workers)
	}
	if len(cfg.Command) == 0 {
		return nil, errors.New("supervisor: no worker command")
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil || port == "0" {
		return nil, fmt.Errorf("supervisor: listen address %q needs a concrete port", cfg.Listen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	return &Supervisor{cfg: cfg, log: cfg.Logger, control: "fanwire.ctl." + nuid.Next()}, nil
}

// Start runs NATS (or connects), the workers, then the control API.
func (s *Supervisor) Start() error {
	s.natsURL = s.cfg.NATSURL
	if s.natsURL == "" {
		e, err := bus.StartEmbedded(s.cfg.NATSPort, "")
		if err != nil {
			return err
		}
		s.embedded, s.natsURL = e, e.URL()
		s.log.Info("embedded nats started", "url", s.natsURL)
	}
	nc, err := bus.Connect(s.natsURL, "fanwire-supervisor", s.log.With("component", "bus"))
	if err != nil {
		s.stopNATS()
		return fmt.Errorf("nats %s: %w", s.natsURL, err)
	}
	s.nc = nc
	if s.seq, err = bus.NewSequencer(nc); err != nil {
		s.stopNATS()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.seq.Ensure(ctx); err != nil {
		// Not fatal: NATS may come later, publishes answer 503 until then.
		s.log.Warn("jetstream not ready; publishes fail until it is (is JetStream enabled on the server? nats-server -js)", "err", err)
	}
	if s.pubs, err = bus.ServePublishes(nc, s.seq, clientPublishWorkers, clientPublishInflight, s.log.With("component", "client-publish")); err != nil {
		s.stopNATS()
		return err
	}
	for i := range s.cfg.Workers {
		w := &worker{id: i + 1}
		s.workers = append(s.workers, w)
		s.wg.Add(1)
		go s.keep(w)
	}
	if err := s.serveMetrics(); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	return s.serveHTTP()
}

func (s *Supervisor) serveHTTP() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		s.Shutdown(context.Background())
		return fmt.Errorf("control listener: %w", err)
	}
	s.httpAddr = ln.Addr().String()
	opts := api.Options{
		MaxBody:   s.cfg.MaxBody,
		Page:      s.cfg.Page,
		Logger:    s.log,
		Health:    s.health,
		Stats:     func() any { return s.Stats() },
		APIKeys:   s.cfg.APIKeys,
		AdminKeys: s.cfg.AdminKeys,
		Users:     s,               // users.go: user actions go to every worker over the bus
		Ops:       s.operatorAPI(), // metrics.go
	}
	for _, w := range api.ExposureWarnings(s.httpAddr, opts) {
		s.log.Warn(w)
	}
	s.httpSrv = api.NewServer(api.NewHandler(s.seq, opts), s.log)
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control listener stopped", "err", err)
		}
	}()
	return nil
}

// Publisher sequences and publishes on the bus (for the demo feed).
func (s *Supervisor) Publisher() *bus.Sequencer { return s.seq }

// HTTPAddr is the bound control API address.
func (s *Supervisor) HTTPAddr() string { return s.httpAddr }

// NATSURL is the bus the workers use.
func (s *Supervisor) NATSURL() string { return s.natsURL }

// health is /healthz: every worker running and the bus connected.
func (s *Supervisor) health() error {
	if s.stopping.Load() {
		return errors.New("shutting down")
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("bus: not connected to nats (%s)", s.nc.Status())
	}
	for _, w := range s.workers {
		if st := w.status(); !st.Ready {
			return fmt.Errorf("worker %d is not ready (restarts %d, last exit: %s)", w.id, st.Restarts, st.LastExit)
		}
	}
	return nil
}

// Stats is GET /stats: the bus and each worker, with the worker's own node
// counters when it answers within a short timeout.
type Stats struct {
	NATS    string         `json:"nats"`
	Workers []WorkerStatus `json:"workers"`

	Goroutines int `json:"goroutines"` // the supervisor's own (a soak checks it returns to baseline)
}

// Stats asks every ready worker for its counters (in parallel, 500 ms each).
func (s *Supervisor) Stats() Stats {
	st := Stats{NATS: s.nc.Status().String(), Goroutines: runtime.NumGoroutine(), Workers: make([]WorkerStatus, len(s.workers))}
	var wg sync.WaitGroup
	for i, w := range s.workers {
		st.Workers[i] = w.status()
		if !st.Workers[i].Ready {
			continue
		}
		wg.Go(func() {
			m, err := s.nc.Request(s.controlSubject(w.id), nil, 500*time.Millisecond)
			if err == nil && json.Valid(m.Data) {
				st.Workers[i].Node = json.RawMessage(m.Data)
			}
		})
	}
	wg.Wait()
	return st
}

func (s *Supervisor) controlSubject(id int) string { return fmt.Sprintf("%s.%d", s.control, id) }

// Shutdown stops the control API, drains every worker (SIGTERM, then
// SIGKILL at the deadline of ctx or StopTimeout) and stops the bus.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	if s.httpSrv != nil {
		_ = s.httpSrv.Shutdown(ctx)
	}
	s.stopMetrics(ctx)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StopTimeout)
	defer cancel()
	for _, w := range s.workers {
		w.signal(termSignal)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.New("workers did not stop in time; killed")
		for _, w := range s.workers {
			w.signal(killSignal)
		}
		<-done
	}
	if s.pubs != nil {
		s.pubs.Close()
	}
	s.stopNATS()
	return err
}

func (s *Supervisor) stopNATS() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}
