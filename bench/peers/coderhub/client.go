package main

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

type client struct {
	conn *websocket.Conn
	send chan []byte // closed by the hub when the client is dropped
}

type wsHandler struct {
	hub  *hub
	ping time.Duration
}

var acceptOptions = &websocket.AcceptOptions{
	InsecureSkipVerify: true,
	CompressionMode:    websocket.CompressionDisabled,
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
	// Subscribed before the 101: early deliveries wait in c.send.
	c := &client{send: make(chan []byte, peer.SendQueue)}
	s.hub.add(c, topics)
	conn, err := websocket.Accept(w, r, acceptOptions)
	if err != nil {
		s.hub.remove(c)
		return
	}
	c.conn = conn
	conn.SetReadLimit(peer.MaxMessage)
	go c.writeLoop(s.ping)
	c.readLoop(s.hub) // the handler goroutine is the reader
	s.hub.remove(c)
	conn.CloseNow()
}

func (c *client) readLoop(h *hub) {
	ctx := context.Background()
	for {
		typ, msg, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			_ = c.conn.Close(websocket.StatusUnsupportedData, "binary messages are not supported")
			return
		}
		op, oerr := wire.ParseOp(msg)
		if oerr != nil {
			h.reply(c, peer.ErrorReply(oerr))
			continue
		}
		h.apply(c, op)
	}
}

// writeLoop is the only writer; it also pings, and a ping not answered
// within one interval ends the connection.
func (c *client) writeLoop(ping time.Duration) {
	ticker := time.NewTicker(ping)
	defer ticker.Stop()
	for {
		select {
		case msg, ok := <-c.send:
			if !ok {
				_ = c.conn.Close(websocket.StatusGoingAway, "")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), peer.WritePause)
			err := c.conn.Write(ctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				c.conn.CloseNow()
				return
			}
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), ping)
			err := c.conn.Ping(ctx)
			cancel()
			if err != nil {
				c.conn.CloseNow()
				return
			}
		}
	}
}
