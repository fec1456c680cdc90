package main

import (
	"net/http"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

type wsHandler struct {
	hub  *hub
	up   *websocket.Upgrader
	ping time.Duration
}

// newUpgrader: with compression, nbio compresses every write, i.e. once
// per publish and connection.
func newUpgrader(h *hub, ping time.Duration, compression bool) *websocket.Upgrader {
	up := websocket.NewUpgrader()
	up.EnableCompression(compression)
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.KeepaliveTime = 2 * ping // any frame from the client, pongs included, pushes this back
	up.MessageLengthLimit = peer.MaxMessage
	up.OnMessage(func(conn *websocket.Conn, typ websocket.MessageType, msg []byte) {
		c, _ := conn.Session().(*client)
		if c == nil {
			return // an op pipelined before the upgrade finished; not part of the contract
		}
		if typ == websocket.BinaryMessage {
			_ = conn.WriteClose(1003, "binary messages are not supported")
			_ = conn.Close()
			return
		}
		op, oerr := wire.ParseOp(msg)
		if oerr != nil {
			h.reply(c, peer.ErrorReply(oerr))
			return
		}
		h.apply(c, op)
	})
	up.OnClose(func(conn *websocket.Conn, _ error) {
		if c, _ := conn.Session().(*client); c != nil {
			h.remove(c)
		}
	})
	return up
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
	c := s.hub.add(topics)
	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		s.hub.remove(c)
		return
	}
	conn.EnableWriteCompression(true) // only if the client negotiated it
	s.hub.attach(c, conn)
	conn.Keepalive(s.ping) // nbio's own ping timer
}
