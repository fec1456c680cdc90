package bus

import (
	"fmt"
	"os"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running inside this process, on
// loopback only: the default bus of `fanwire serve --workers N`.
type Embedded struct {
	srv *natsserver.Server
	dir string // JetStream store, removed on Shutdown unless given by the caller
	own bool
}

// EmbeddedMaxPayload lets a publish of the control API's largest body
// (1 MiB by default) plus headers through; NATS's own default is 1 MB.
const EmbeddedMaxPayload = 8 << 20

// StartEmbedded runs a NATS server on 127.0.0.1:port (0 picks a free port).
// storeDir holds JetStream's files; "" uses a fresh temporary directory.
func StartEmbedded(port int, storeDir string) (*Embedded, error) {
	e := &Embedded{dir: storeDir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "fanwire-nats-")
		if err != nil {
			return nil, err
		}
		e.dir, e.own = d, true
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "fanwire-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   e.dir,
		MaxPayload: EmbeddedMaxPayload,
		NoSigs:     true, // signals belong to fanwire
		NoLog:      true,
	})
	if err != nil {
		e.removeDir()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	e.srv = srv
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		e.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready on port %d", port)
	}
	return e, nil
}

// URL is the nats:// address clients (workers) connect to.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and removes its temporary store.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.removeDir()
}

func (e *Embedded) removeDir() {
	if e.own {
		os.RemoveAll(e.dir)
	}
}
