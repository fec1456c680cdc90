package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/metrics"
)

// MetricsConfig is the node's Prometheus endpoint.
type MetricsConfig struct {
	// Listen, if set, is an address serving only GET /metrics, without the
	// admin key, so Prometheus can scrape it. /metrics is on the control
	// listener either way.
	Listen string
}

// startMetricsListener serves /metrics on cfg.Metrics.Listen, if set.
func (n *Node) startMetricsListener() error {
	if n.cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	n.met.addr = ln.Addr().String()
	gather := func() metrics.Gathered { return metrics.Gathered{Nodes: []metrics.Node{{Snapshot: n.Metrics()}}} }
	n.met.srv = api.NewServer(api.MetricsOnly(metrics.Handler(metrics.NewCollector(gather, false))), n.log)
	go func() {
		if err := n.met.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("metrics listener stopped", "err", err)
		}
	}()
	return nil
}

// MetricsAddr is the bound --metrics-listen address ("" if not set).
func (n *Node) MetricsAddr() string { return n.met.addr }
