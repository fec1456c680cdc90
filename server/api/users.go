package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fanwire/fanwire/server/wire"
)

// UserActions are what a backend does to a user (a token's sub) on every
// connection it has: on this node, or in worker mode on every worker and
// every node sharing the bus. *server.Node implements it; so does the
// supervisor, over NATS.
type UserActions interface {
	// Disconnect closes each connection of user with 4005 and reason;
	// reconnect > 0 adds "; reconnect in <ms>ms". It counts what it closed.
	Disconnect(user, reason string, reconnect time.Duration) (UserCount, error)
	// Unsubscribe removes each connection of user from topic.
	Unsubscribe(user, topic string) (UserCount, error)
	// Conns counts the open connections of user.
	Conns(user string) (UserCount, error)
}

// UserCount is the outcome of a user action: N connections, summed over
// Workers processes (worker mode: those that answered in time, other
// nodes on the bus included; -1 when the action ran in this process).
type UserCount struct {
	N       int
	Workers int
}

// Limits of a user action request.
const (
	maxUserLen      = 256
	maxReasonLen    = 80 // the close frame's reason holds 123 bytes, the reconnect hint follows
	maxReconnectMs  = 3600_000
	maxUserBodySize = 4 << 10
)

// Error codes of the user actions.
const (
	CodeMissingUser = "missing_user"
	CodeInvalidUser = "invalid_user"
	CodeBadReason   = "bad_reason"
	CodeBadDelay    = "bad_reconnect_ms"
)

// userRequest is the body of POST /disconnect and POST /unsubscribe.
type userRequest struct {
	User        string `json:"user"`
	Topic       string `json:"topic"`        // unsubscribe
	Reason      string `json:"reason"`       // disconnect: close reason text
	ReconnectMs *int64 `json:"reconnect_ms"` // disconnect: reconnect hint
}

// UserResult is the answer of a user action. Disconnected or Unsubscribed
// or Connections is set, by action. Workers is how many worker processes
// answered (worker mode only; other nodes on the bus included).
type UserResult struct {
	User         string `json:"user"`
	Topic        string `json:"topic,omitempty"`
	Disconnected *int   `json:"disconnected,omitempty"`
	Unsubscribed *int   `json:"unsubscribed,omitempty"`
	Connections  *int   `json:"connections,omitempty"`
	Workers      *int   `json:"workers,omitempty"`
}

// isUserPath is a path of the user actions.
func isUserPath(path string) bool {
	return path == "/disconnect" || path == "/unsubscribe" || strings.HasPrefix(path, "/users/")
}

func (h *handler) serveUsers(w http.ResponseWriter, r *http.Request, path string) {
	if h.users == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "no user actions on this listener")
		return
	}
	if user, ok := strings.CutPrefix(path, "/users/"); ok {
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		if msg := checkUser(user); msg != "" {
			writeError(w, http.StatusBadRequest, CodeInvalidUser, msg)
			return
		}
		c, err := h.users.Conns(user)
		h.userAnswer(w, UserResult{User: user, Connections: &c.N}, c, err)
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	var req userRequest
	if !h.readUserRequest(w, r, &req) {
		return
	}
	switch path {
	case "/disconnect":
		if len(req.Reason) > maxReasonLen || !utf8.ValidString(req.Reason) {
			writeError(w, http.StatusBadRequest, CodeBadReason, "reason: at most 80 bytes of UTF-8")
			return
		}
		var delay time.Duration
		if req.ReconnectMs != nil {
			if *req.ReconnectMs < 0 || *req.ReconnectMs > maxReconnectMs {
				writeError(w, http.StatusBadRequest, CodeBadDelay, "reconnect_ms: 0 to 3600000 milliseconds")
				return
			}
			delay = time.Duration(*req.ReconnectMs) * time.Millisecond
		}
		c, err := h.users.Disconnect(req.User, req.Reason, delay)
		h.log.Info("disconnected user", "user", req.User, "connections", c.N, "err", err)
		h.userAnswer(w, UserResult{User: req.User, Disconnected: &c.N}, c, err)
	case "/unsubscribe":
		if req.Topic == "" {
			writeError(w, http.StatusBadRequest, CodeMissingTopic, `the body needs "topic"`)
			return
		}
		if !wire.ValidTopic(req.Topic) {
			writeError(w, http.StatusBadRequest, CodeInvalidTopic, invalidTopicText(req.Topic))
			return
		}
		c, err := h.users.Unsubscribe(req.User, req.Topic)
		h.log.Info("unsubscribed user", "user", req.User, "topic", req.Topic, "connections", c.N, "err", err)
		h.userAnswer(w, UserResult{User: req.User, Topic: req.Topic, Unsubscribed: &c.N}, c, err)
	}
}

// readUserRequest decodes a small JSON body with a user in it; on failure
// it has answered.
func (h *handler) readUserRequest(w http.ResponseWriter, r *http.Request, req *userRequest) bool {
	body, ok := readLimited(w, r, maxUserBodySize)
	if !ok {
		return false
	}
	if msg := checkJSON(trimJSONSpace(body)); msg != "" {
		writeError(w, http.StatusBadRequest, CodeBadJSON, "the body "+msg)
		return false
	}
	if err := json.Unmarshal(body, req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadJSON, `the body must be an object like {"user":"u1"}: `+err.Error())
		return false
	}
	if req.User == "" {
		writeError(w, http.StatusBadRequest, CodeMissingUser, `the body needs "user": the token sub`)
		return false
	}
	if msg := checkUser(req.User); msg != "" {
		writeError(w, http.StatusBadRequest, CodeInvalidUser, msg)
		return false
	}
	return true
}

func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	h := &handler{maxBody: limit}
	return h.readBody(w, r)
}

func checkUser(user string) string {
	switch {
	case user == "":
		return "empty user"
	case len(user) > maxUserLen:
		return "user longer than 256 bytes"
	case !utf8.ValidString(user):
		return "user is not valid UTF-8"
	}
	return ""
}

func (h *handler) userAnswer(w http.ResponseWriter, res UserResult, c UserCount, err error) {
	if err != nil {
		h.log.Warn("user action", "user", res.User, "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	if c.Workers >= 0 {
		res.Workers = &c.Workers
	}
	writeJSON(w, http.StatusOK, res)
}
