// Command nbiohub speaks fanwire's wire contract with github.com/lesismal/nbio
// (nbhttp + websocket, epoll, non-blocking mode): no goroutine per
// connection; a mutex-guarded registry fans out with conn.WriteMessage, which
// writes at once or queues inside nbio (capped at 1 MiB per connection, the
// same cap as fanwire's --max-pending). The envelope is encoded once per
// publish; nbio adds the frame header per connection (it has no prepared
// message).
package main

import (
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
)

func main() {
	f := peer.ParseFlags("nbiohub")
	logging.SetLevel(logging.LevelNone)
	h := newHub()
	ctl, err := peer.StartControl(f.HTTP, h)
	if err != nil {
		peer.Fatal("nbiohub", err)
	}
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{f.Listen},
		Handler:                 &wsHandler{hub: h, up: newUpgrader(h, f.PingInterval, f.Compression), ping: f.PingInterval},
		MaxWriteBufferSize:      peer.MaxPending,
		ReleaseWebsocketPayload: true,
	})
	if err := engine.Start(); err != nil {
		peer.Fatal("nbiohub", err)
	}
	peer.WaitSignal()
	peer.Shutdown(ctl)
	h.closeAll()
	time.Sleep(100 * time.Millisecond)
	engine.Stop()
}
