// Command coderhub speaks fanwire's wire contract with github.com/coder/websocket
// in its usual shape: the HTTP handler goroutine reads, one more goroutine
// per connection writes from a buffered channel (256; full => dropped), and
// a mutex-guarded registry fans out. Each publish is encoded once; the
// library frames that shared slice for each connection.
package main

import (
	"net"
	"net/http"
	"time"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
)

func main() {
	f := peer.ParseFlags("coderhub")
	h := newHub()
	ctl, err := peer.StartControl(f.HTTP, h)
	if err != nil {
		peer.Fatal("coderhub", err)
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		peer.Fatal("coderhub", err)
	}
	srv := &http.Server{Handler: &wsHandler{hub: h, ping: f.PingInterval}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	peer.WaitSignal()
	peer.Shutdown(ctl)
	_ = ln.Close()
	h.closeAll() // every write loop sends 1001
	time.Sleep(100 * time.Millisecond)
}
