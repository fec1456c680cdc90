// Command gorillahub is the classic gorilla/websocket hub speaking fanwire's
// wire contract: one hub goroutine owns all subscriptions, every connection
// has a read pump and a write pump goroutine and a buffered send channel
// (256); a full channel drops the client. Each publish becomes one
// PreparedMessage, so the frame is encoded once and shared by all writers.
package main

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
)

func main() {
	f := peer.ParseFlags("gorillahub")
	h := newHub()
	go h.run()
	ctl, err := peer.StartControl(f.HTTP, h)
	if err != nil {
		peer.Fatal("gorillahub", err)
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		peer.Fatal("gorillahub", err)
	}
	// With --compression each PreparedMessage compresses once per publish
	// too (gorilla caches the frame per compression setting).
	upgrader.EnableCompression = f.Compression
	srv := &http.Server{Handler: &wsHandler{hub: h, ping: f.PingInterval}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	peer.WaitSignal()
	peer.Shutdown(ctl)
	_ = ln.Close()
	h.closeAll() // every client gets 1001 from its write pump
	time.Sleep(100 * time.Millisecond)
}

// upgrader follows gorilla's advice for many mostly idle connections: a small
// read buffer and pooled write buffers (prepared messages bypass them anyway).
var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true },
}

type wsHandler struct {
	hub  *hub
	ping time.Duration
}

func (s *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !peer.CheckPath(w, r) {
		return
	}
	topics, err := peer.URLTopics(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := &client{hub: s.hub, send: make(chan *websocket.PreparedMessage, peer.SendQueue)}
	// Registered before the 101: anything published after the client sees
	// the 101 waits in c.send until the write pump starts.
	done := make(chan struct{})
	s.hub.register <- registration{c, topics, done}
	<-done
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.hub.unregister <- c
		return
	}
	c.conn = conn
	conn.EnableWriteCompression(upgrader.EnableCompression)
	go c.writePump(s.ping)
	go c.readPump(s.ping)
}
