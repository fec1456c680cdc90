package server

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/namespace"
	"github.com/fanwire/fanwire/server/wire"
	"github.com/panjf2000/gnet/v2"
)

// nodeAuth is the node's token verifier and policy. Everything here runs
// once per upgrade, subscribe or refresh, never per delivery.
type nodeAuth struct {
	mode       AuthMode
	verifier   *auth.Verifier // nil: no key configured, tokens are not read
	namespaces *namespace.Set
	owned      bool // built by the node: closed on shutdown
}

func newNodeAuth(cfg *AuthConfig, log *slog.Logger) (*nodeAuth, error) {
	a := &nodeAuth{mode: cfg.Mode, verifier: cfg.Verifier, namespaces: cfg.Namespaces}
	if a.verifier == nil && cfg.Keys.HasKeys() {
		keys := cfg.Keys
		if keys.Logger == nil {
			keys.Logger = log.With("component", "auth")
		}
		v, err := auth.NewVerifier(keys)
		if err != nil {
			return nil, err
		}
		a.verifier, a.owned = v, true
	}
	return a, nil
}

func (a *nodeAuth) close() {
	if a.owned {
		a.verifier.Close()
	}
}

// bearer is the token of an "Authorization: Bearer <token>" header.
func bearer(h []byte) string {
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return strings.TrimSpace(string(h[len(prefix):]))
	}
	return ""
}

// authenticate verifies the upgrade's token (?token= or Authorization:
// Bearer) and returns the connection's identity: nil for an anonymous one.
// A bad token is 401 whatever the mode: a client that sends one expects it
// to count.
func (a *nodeAuth) authenticate(token string, authorization []byte) (*auth.Identity, *auth.Error) {
	if token == "" {
		token = bearer(authorization)
	}
	if token == "" {
		if a.mode == AuthRequired {
			return nil, &auth.Error{Code: auth.CodeTokenRequired, Message: "this node requires a token: connect with ?token=<JWT> or an Authorization: Bearer header"}
		}
		return nil, nil
	}
	if a.verifier == nil {
		return nil, nil // --auth off without keys: tokens are not read
	}
	return a.verifier.Verify(token)
}

// maySubscribe is the subscribe permission: checked once per subscribe.
func (a *nodeAuth) maySubscribe(id *auth.Identity, topic string) bool {
	if a.mode == AuthOff {
		return true
	}
	return a.namespaces.Match(topic).MaySubscribe(id != nil, id.CanSubscribe(topic))
}

// forbidden is the answer to a subscription the identity does not allow.
func forbiddenText(id *auth.Identity, topic string) string {
	if id == nil {
		return "subscribing to " + topic + " needs a token that allows it"
	}
	return "the token of user " + strconv.Quote(id.User) + " does not allow subscribing to " + topic
}

// handshakeAuth authenticates an upgrade and checks its URL topics. wait
// reports that the handshake is parked until the JWKS is re-fetched: the
// loop runs it again then (once: flagKeyWait).
func (l *loop) handshakeAuth(c *conn, op *wire.Op, req *codec.Request) (id *auth.Identity, herr *codec.HTTPError, wait bool) {
	a := l.node.auth
	id, aerr := a.authenticate(op.Token, req.Authorization)
	if aerr != nil {
		if aerr.UnknownKey() && c.flags&flagKeyWait == 0 {
			c.flags |= flagKeyWait
			if a.verifier.AwaitKeys(aerr, func() { l.execute(runnable(func() { l.resumeHandshake(c) })) }) {
				return nil, nil, true
			}
		}
		return nil, &codec.HTTPError{Status: 401, Code: aerr.Code, Message: aerr.Message}, false
	}
	for _, t := range op.Topics {
		if !a.maySubscribe(id, t) {
			return nil, &codec.HTTPError{Status: 403, Code: wire.CodeForbidden, Message: forbiddenText(id, t)}, false
		}
	}
	return id, nil, false
}

// resumeHandshake runs a parked handshake again, now that the keys are fresh.
func (l *loop) resumeHandshake(c *conn) {
	if c.phase != phaseHandshake {
		return // gone (handshake timeout) while it waited
	}
	if l.onTraffic(c) == gnet.Close {
		_ = l.el.Close(c.gc)
	}
}

// refresh handles {"op":"refresh","token":...}: a new token for the same
// user replaces the connection's, so it outlives the old exp.
func (l *loop) refresh(c *conn, token string) {
	a := l.node.auth
	fail := func(code, msg string) {
		l.replyError(&wire.OpError{Code: code, Message: msg})
	}
	if a.verifier == nil {
		fail(auth.CodeInvalidToken, "this node has no token key configured")
		return
	}
	if c.ident == nil {
		fail(auth.CodeInvalidToken, "this connection has no token to refresh: reconnect with ?token=")
		return
	}
	id, aerr := a.verifier.Verify(token)
	if aerr != nil {
		fail(aerr.Code, "refresh rejected: "+aerr.Message)
		return
	}
	if id.User != c.ident.User {
		fail(auth.CodeInvalidToken, "refresh rejected: the token is for another user")
		return
	}
	c.ident = id
	l.out = appendTextFrame(l.out, func(b []byte) []byte { return wire.AppendRefreshed(b, id.Expires) })
}

// forbidden returns the first of topics c may not subscribe to (ok=false).
// A subscribe op is all or nothing.
func (l *loop) forbidden(c *conn, topics []string) (string, bool) {
	a := l.node.auth
	if a.mode == AuthOff {
		return "", true
	}
	for _, t := range topics {
		if !a.maySubscribe(c.ident, t) {
			return t, false
		}
	}
	return "", true
}

// TokenStats counts token checks (upgrades and refreshes).
type TokenStats struct {
	Verified uint64 `json:"verified"` // signatures checked
	Cached   uint64 `json:"cached"`   // answered from the verified-token cache
	Rejected uint64 `json:"rejected"` // invalid or expired
}

func (a *nodeAuth) stats() *TokenStats {
	if a.verifier == nil {
		return nil
	}
	v := a.verifier
	return &TokenStats{Verified: v.Verified.Load(), Cached: v.Cached.Load(), Rejected: v.Rejected.Load()}
}
