// Package server runs a fanwire node: a gnet reactor whose event loops speak
// WebSocket on non-blocking sockets, a hub that fans each publish out as one
// shared frame, and the control HTTP API.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/server/api"
	"github.com/panjf2000/gnet/v2"
)

// Node is one fanwire server: WebSocket listener, hub and control API.
type Node struct {
	cfg   Config
	log   *slog.Logger
	hub   *hub
	auth  *nodeAuth
	eng   *engine
	start time.Time

	wsAddr   string
	httpAddr string
	httpSrv  *http.Server
	runErr   chan error    // gnet.Run's result
	done     chan struct{} // closed when the engine has stopped
	stopOnce sync.Once

	users    *userCounts  // open connections per verified user (users.go)
	met      nodeMetrics  // metrics.go
	conns    atomic.Int64 // open TCP connections (all phases)
	rejected atomic.Uint64
	stopping atomic.Bool
	ips      *ipLimiter // --max-conns-per-ip; nil = unlimited
	origins  *origins   // --allowed-origins
	trim     memTrim    // memtrim.go
	presence *presence  // who is subscribed, for namespaces with presence (presence.go)
}

// NewNode checks cfg and prepares a node; Start makes it listen.
func NewNode(cfg Config) (n *Node, err error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, log: cfg.Logger, hub: newHub(cfg.Auth.Namespaces), start: time.Now(), runErr: make(chan error, 1), done: make(chan struct{})}
	if n.auth, err = newNodeAuth(&n.cfg.Auth, n.log); err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	n.presence = newPresence(n.hub)
	if cfg.Presence.Linger > 0 {
		n.presence.linger = cfg.Presence.Linger
	}
	if cfg.Presence.MaxMembers > 0 {
		n.presence.maxMembers = cfg.Presence.MaxMembers
	}
	if cfg.Presence.Announce != nil {
		n.presence.send = cfg.Presence.Announce
	}
	if cfg.Presence.RemoteTTL > 0 {
		n.presence.remoteTTL = cfg.Presence.RemoteTTL
	}
	n.hub.interest = cfg.OnInterest
	n.hub.awaitPrime = cfg.AwaitPrime
	n.hub.epochs.fixed = cfg.Epoch
	if cfg.Limits.MaxConnsPerIP > 0 {
		n.ips = newIPLimiter(cfg.Limits.MaxConnsPerIP)
	}
	n.origins, _ = parseOrigins(cfg.Limits.AllowedOrigins) // checked by normalize
	n.users = newUserCounts(cfg.Users.limit())             // users.go
	n.eng = newEngine(n)
	return n, nil
}

// clock is the node's coarse time in ms since start; uint32 arithmetic wraps safely.
func (n *Node) clock() uint32 { return uint32(time.Since(n.start) / time.Millisecond) }

// Start binds both listeners and returns once they accept connections.
func (n *Node) Start() error {
	addr, err := resolvePort(n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("websocket listener: %w", err)
	}
	n.wsAddr = addr
	go func() {
		n.runErr <- gnet.Run(n.eng, "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(n.cfg.Loops),
			gnet.WithReusePort(true), // one listener per loop; lets worker processes share the port
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTicker(true),
			gnet.WithLogger(gnetLogger{n.log}),
			gnet.WithSocketSendBuffer(n.cfg.SendBuffer), // caps the kernel's share of a slow client's backlog
		)
	}()
	select {
	case <-n.eng.boot:
	case err := <-n.runErr:
		return fmt.Errorf("websocket listener %s: %w", addr, err)
	}
	if n.cfg.FlushInterval > 0 {
		go n.flusher()
	}
	if err := n.startMetricsListener(); err != nil {
		n.stopEngine(context.Background())
		return err
	}
	if n.cfg.HTTPListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPListen)
	if err != nil {
		if n.met.srv != nil {
			_ = n.met.srv.Close()
		}
		n.stopEngine(context.Background())
		return fmt.Errorf("control listener: %w", err)
	}
	n.httpAddr = ln.Addr().String()
	var page []byte
	if n.cfg.Page != nil {
		page = n.cfg.Page("ws://" + n.wsAddr + wsPath)
	}
	opts := api.Options{
		MaxBody:   n.cfg.MaxPublishBody,
		Page:      page,
		Logger:    n.log,
		Health:    n.health,
		Stats:     func() any { return n.Stats() },
		APIKeys:   n.cfg.Limits.APIKeys,
		AdminKeys: n.cfg.Limits.AdminKeys,
		Routes:    n.cfg.Auth.controlRoutes(),
		Users:     nodeUsers{n},    // users.go
		Ops:       n.operatorAPI(), // metrics.go
	}
	if opts.Routes == nil {
		opts.Routes = map[string]http.Handler{}
	}
	opts.Routes["/presence/"] = n.presenceHandler() // a prefix: GET /presence/{topic}
	for _, w := range api.ExposureWarnings(n.httpAddr, opts) {
		n.log.Warn(w)
	}
	n.httpSrv = api.NewServer(api.NewHandler(n, opts), n.log)
	go func() {
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("control listener stopped", "err", err)
		}
	}()
	return nil
}

// flusher wakes the loops with waiting frames every FlushInterval: one
// goroutine per node trades a little latency for fewer, larger writes.
func (n *Node) flusher() {
	t := time.NewTicker(n.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			for _, l := range n.eng.allLoops() {
				l.flush()
			}
		}
	}
}

// resolvePort turns port 0 into a concrete free port: with one listener per
// loop (SO_REUSEPORT), every loop must bind the same port.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}

// WSAddr is the bound WebSocket listener address.
func (n *Node) WSAddr() string { return n.wsAddr }

// HTTPAddr is the bound control API address ("" if disabled).
func (n *Node) HTTPAddr() string { return n.httpAddr }

// Publish sends data (a valid JSON value) to every subscriber of topic.
// Safe from any goroutine.
func (n *Node) Publish(topic string, data []byte) (seq uint64, subscribers int, err error) {
	seq, subscribers, err = n.hub.publish(topic, data)
	if err == nil {
		n.met.publishedLocal.Add(1)
	}
	return seq, subscribers, err
}

// health fails once shutdown has begun, so load balancers stop sending clients.
func (n *Node) health() error {
	if n.stopping.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// Deliver fans out a message whose seq was assigned elsewhere (a bus). A seq
// not above the topic's last one is dropped as a duplicate. Any goroutine.
func (n *Node) Deliver(topic string, seq uint64, data []byte) (subscribers int, err error) {
	subscribers, err = n.hub.deliver(topic, seq, data)
	if err == nil {
		n.met.publishedBus.Add(1) // duplicates dropped by the hub are counted too: they came over the bus
	}
	return subscribers, err
}

// Prime tells a node started with AwaitPrime that the bus now follows topic,
// with the recent messages it stored before that (oldest first; may be
// empty); subscriptions waiting for the topic are then served. Safe from any
// goroutine.
func (n *Node) Prime(topic string, stored []StoredMessage) {
	n.hub.prime(topic, stored)
}

// Shutdown closes every WebSocket connection with 1001, waits for them to
// hang up (or ctx), then stops both listeners.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopping.Store(true)
	if n.httpSrv != nil {
		_ = n.httpSrv.Shutdown(ctx)
	}
	if n.met.srv != nil {
		_ = n.met.srv.Shutdown(ctx)
	}
	n.goAway(ctx)
	wait := time.NewTicker(10 * time.Millisecond)
	defer wait.Stop()
	for n.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			n.log.Warn("shutdown: connections still open at deadline", "open", n.conns.Load())
			return n.stopEngine(context.Background())
		case <-wait.C:
		}
	}
	return n.stopEngine(ctx)
}

func (n *Node) stopEngine(ctx context.Context) error {
	defer n.stopOnce.Do(func() { close(n.done); n.auth.close() })
	err := n.eng.eng.Stop(ctx)
	select {
	case <-n.runErr:
	case <-time.After(5 * time.Second):
	}
	return err
}

// Stats is a snapshot of the node's counters.
type Stats struct {
	Conns      int64       `json:"conns"`
	Topics     int         `json:"topics"`
	Published  uint64      `json:"published"`
	Delivered  uint64      `json:"delivered"`
	SlowMode   uint64      `json:"slow_mode"`   // times a connection fell behind and was conflated
	Conflated  uint64      `json:"conflated"`   // messages replaced by a newer one for a slow connection
	SlowClosed uint64      `json:"slow_closed"` // slow connections closed with 1008
	Snapshots  uint64      `json:"snapshots"`
	Replays    uint64      `json:"replays"`
	Resets     uint64      `json:"resets"`
	Rejected   uint64      `json:"rejected"`
	LimitStats             // abuse limits (limits.go)
	Tokens     *TokenStats `json:"tokens,omitempty"` // nil without a token key
	UserStats              // users.go
	// By transport (websocket, sse, poll): connections open now and live deliveries.
	OpenByTransport      map[string]int64  `json:"open_by_transport"`
	DeliveredByTransport map[string]uint64 `json:"delivered_by_transport"`
}

// Stats reads the counters. Any goroutine.
func (n *Node) Stats() Stats {
	s := Stats{Conns: n.conns.Load(), Topics: n.hub.topicCount(), Published: n.hub.published.Load(), Rejected: n.rejected.Load(), Tokens: n.auth.stats(), UserStats: n.userStats()}
	for _, l := range n.eng.allLoops() {
		st := &l.stats
		s.Delivered += st.delivered.Load()
		s.SlowMode += st.slowMode.Load()
		s.Conflated += st.conflated.Load()
		s.SlowClosed += st.slowClosed.Load()
		s.Snapshots += st.snapshots.Load()
		s.Replays += st.replays.Load()
		s.Resets += st.resets.Load()
		s.LimitStats.add(&l.lim.stats)
	}
	s.OpenByTransport, s.DeliveredByTransport = n.transportStats()
	return s
}

// gnetLogger sends gnet's own logs to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "src", "gnet") }
