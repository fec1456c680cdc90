package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
	"github.com/nats-io/nats.go"
)

// UserSubject carries the control API's user actions (disconnect,
// unsubscribe, count) to every worker of every node sharing the bus: each
// worker subscribes to it, runs the action on its own connections and
// answers the request's reply inbox with its count.
const UserSubject = "fanwire.ctl.user"

// How long a user action gathers answers: until every ready worker of this
// node has answered, then userGrace more for the workers of other nodes
// (best effort: the bus does not say how many there are), at most userWait.
const (
	userWait  = 2 * time.Second
	userGrace = 100 * time.Millisecond
)

// userAction is a user action on UserSubject.
type userAction struct {
	Action      string `json:"action"` // disconnect, unsubscribe, conns
	User        string `json:"user"`
	Topic       string `json:"topic,omitempty"`
	Reason      string `json:"reason,omitempty"`
	ReconnectMs int64  `json:"reconnect_ms,omitempty"`
}

// userReply is one worker's answer.
type userReply struct {
	N       int    `json:"n"`
	Control string `json:"control"` // the worker's control subject: which supervisor it belongs to
	Error   string `json:"error,omitempty"`
}

// serveUserActions answers UserSubject in a worker; the returned func unsubscribes.
func serveUserActions(nc *nats.Conn, node *server.Node, env WorkerEnv, log *slog.Logger) func() {
	sub, err := nc.Subscribe(UserSubject, func(m *nats.Msg) {
		var a userAction
		var n int
		err := json.Unmarshal(m.Data, &a)
		if err == nil {
			switch a.Action {
			case "disconnect":
				n, err = node.DisconnectUser(a.User, a.Reason, time.Duration(a.ReconnectMs)*time.Millisecond)
			case "unsubscribe":
				n, err = node.UnsubscribeUser(a.User, a.Topic)
			case "conns":
				n, err = node.UserConns(a.User)
			default:
				err = fmt.Errorf("unknown user action %q", a.Action)
			}
		}
		r := userReply{N: n, Control: env.Control}
		if err != nil {
			r.Error = err.Error()
		}
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	})
	if err != nil {
		log.Warn("user actions subject", "err", err)
		return func() {}
	}
	_ = nc.Flush() // subscribed at the server before this worker reports ready
	return func() { _ = sub.Unsubscribe() }
}

// userAct publishes a on UserSubject and sums the workers' answers.
func (s *Supervisor) userAct(a userAction) (api.UserCount, error) {
	inbox := s.nc.NewRespInbox()
	replies, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return api.UserCount{}, fmt.Errorf("bus: %w", err)
	}
	defer replies.Unsubscribe() //nolint:errcheck // done with it
	body, _ := json.Marshal(a)
	if err := s.nc.PublishRequest(UserSubject, inbox, body); err != nil {
		return api.UserCount{}, fmt.Errorf("bus: %w", err)
	}
	local := 0
	for _, w := range s.workers {
		if w.status().Ready {
			local++
		}
	}
	var out api.UserCount
	var errs []string
	own := 0
	deadline := time.Now().Add(userWait)
	for {
		wait := time.Until(deadline)
		if own >= local {
			wait = min(wait, userGrace)
		}
		if wait <= 0 {
			break
		}
		m, err := replies.NextMsg(wait)
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				break
			}
			return out, fmt.Errorf("bus: %w", err)
		}
		var r userReply
		if json.Unmarshal(m.Data, &r) != nil {
			continue
		}
		out.Workers++
		out.N += r.N
		if strings.HasPrefix(r.Control, s.control+".") {
			own++
		}
		if r.Error != "" {
			errs = append(errs, r.Error)
		}
	}
	if own < local {
		s.log.Warn("user action: not every worker answered", "action", a.Action, "answered", own, "ready", local)
	}
	if len(errs) > 0 {
		return out, errors.New("worker: " + strings.Join(errs, "; "))
	}
	return out, nil
}

// Disconnect implements api.UserActions over the bus.
func (s *Supervisor) Disconnect(user, reason string, reconnect time.Duration) (api.UserCount, error) {
	return s.userAct(userAction{Action: "disconnect", User: user, Reason: reason, ReconnectMs: reconnect.Milliseconds()})
}

// Unsubscribe implements api.UserActions over the bus.
func (s *Supervisor) Unsubscribe(user, topic string) (api.UserCount, error) {
	return s.userAct(userAction{Action: "unsubscribe", User: user, Topic: topic})
}

// Conns implements api.UserActions over the bus.
func (s *Supervisor) Conns(user string) (api.UserCount, error) {
	return s.userAct(userAction{Action: "conns", User: user})
}
