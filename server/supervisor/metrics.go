package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/metrics"
)

// supervisorMetrics is the supervisor's own part of /metrics.
type supMetrics struct {
	api      api.PublishMetrics // its control API's publishes
	srv      *http.Server       // --metrics-listen
	addr     string
	handler  http.Handler
	initOnce sync.Once
}

// workerTimeout bounds how long a scrape waits for one worker's answer; a
// worker that does not answer in time is left out of that scrape.
const workerTimeout = 500 * time.Millisecond

// gather asks every ready worker for its metrics snapshot over the control
// subject (in parallel) and adds the supervisor's own series.
func (s *Supervisor) gather() metrics.Gathered {
	sup := &metrics.Supervisor{
		PublishedAPI:   s.met.api.Published.Load(),
		PublishSeconds: s.met.api.Latency.Snapshot(),
	}
	if s.pubs != nil {
		// Counted as source="client" by the workers. Read before the
		// sequencer's Published, which counts each of them first.
		sup.ClientSequenced = s.pubs.Sequenced()
	}
	if s.seq != nil {
		c := s.seq.Counters()
		sup.BusPublished, sup.BusCASRetries, sup.BusErrors = c.Published.Load(), c.CASRetries.Load(), c.Errors.Load()
	}
	nodes := make([]*metrics.Node, len(s.workers))
	var wg sync.WaitGroup
	for i, w := range s.workers {
		st := w.status()
		id := strconv.Itoa(w.id)
		sup.Workers = append(sup.Workers, metrics.Worker{ID: id, Up: st.Ready, Restarts: uint64(st.Restarts)})
		if !st.Ready {
			continue
		}
		wg.Go(func() {
			m, err := s.nc.Request(s.controlSubject(w.id), nil, workerTimeout)
			if err != nil {
				return
			}
			var rep workerReport
			if json.Unmarshal(m.Data, &rep) == nil {
				nodes[i] = &metrics.Node{Worker: id, Snapshot: rep.Metrics}
			}
		})
	}
	wg.Wait()
	g := metrics.Gathered{Supervisor: sup}
	for _, n := range nodes {
		if n != nil {
			g.Nodes = append(g.Nodes, *n)
		}
	}
	return g
}

// metricsHandler is /metrics with every worker's series (worker="N") and
// the supervisor's (no worker label).
func (s *Supervisor) metricsHandler() http.Handler {
	s.met.initOnce.Do(func() { s.met.handler = metrics.Handler(metrics.NewCollector(s.gather, true)) })
	return s.met.handler
}

// operatorAPI is what the control API serves for operators in worker mode:
// /metrics, /admin and /topics, each asking the workers (topics.go).
func (s *Supervisor) operatorAPI() api.Operator {
	return api.Operator{
		Metrics: s.metricsHandler(),
		Publish: &s.met.api,
		Topics:  supervisorTopics{s},
		AdminData: func() any {
			top, _ := s.topics(10)
			return api.AdminFromGathered(s.gather(), "workers", top)
		},
	}
}

// serveMetrics starts the --metrics-listen listener, if set.
func (s *Supervisor) serveMetrics() error {
	if s.cfg.Metrics == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Metrics)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	s.met.addr = ln.Addr().String()
	s.met.srv = api.NewServer(api.MetricsOnly(s.metricsHandler()), s.log)
	go func() {
		if err := s.met.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
	return nil
}

// MetricsAddr is the bound --metrics-listen address ("" if not set).
func (s *Supervisor) MetricsAddr() string { return s.met.addr }

func (s *Supervisor) stopMetrics(ctx context.Context) {
	if s.met.srv != nil {
		_ = s.met.srv.Shutdown(ctx)
	}
}
