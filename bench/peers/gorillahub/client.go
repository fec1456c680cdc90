package main

import (
	"time"

	"github.com/gorilla/websocket"

	"github.com/fanwire/fanwire/bench/peers/internal/peer"
	"github.com/fanwire/fanwire/server/wire"
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan *websocket.PreparedMessage // closed by the hub when the client is dropped
}

// readPump parses client ops and keeps the read deadline moving; it ends the
// client on any read error.
func (c *client) readPump(ping time.Duration) {
	defer func() {
		c.hub.unregister <- c
		_ = c.conn.Close()
	}()
	silence := 2 * ping
	c.conn.SetReadLimit(peer.MaxMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(silence))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(silence)) })
	for {
		typ, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(silence))
		if typ == websocket.BinaryMessage {
			_ = c.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary messages are not supported"),
				time.Now().Add(time.Second))
			return
		}
		// Errors go through the hub too, so every reply is ordered with deliveries.
		op, oerr := wire.ParseOp(msg)
		if oerr != nil {
			c.hub.ops <- clientOp{c: c, errText: peer.ErrorReply(oerr)}
			continue
		}
		c.hub.ops <- clientOp{c: c, op: op}
	}
}

// writePump is the only writer of the connection.
func (c *client) writePump(ping time.Duration) {
	ticker := time.NewTicker(ping)
	defer func() {
		ticker.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case pm, ok := <-c.send:
			if !ok {
				_ = c.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
				return
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(peer.WritePause))
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				return
			}
		case <-ticker.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(peer.WritePause)); err != nil {
				return
			}
		}
	}
}
