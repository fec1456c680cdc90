// Package api is fanwire's control HTTP API: publishers POST JSON here and
// the node fans it out to WebSocket subscribers. It is plain net/http, kept
// apart from the gnet reactor so that publishing never runs on an event loop.
//
// Routes:
//
//	POST /publish/{topic}  body: one JSON value           -> 200 {"topic","seq","subscribers"}
//	POST /publish          body: NDJSON {"topic","data"}  -> 200 {"published","results"}
//	                       (Idempotency-Key header / "idempotency_key": see idempotency.go)
//	GET  /healthz                                         -> 200 ok (503 if unhealthy)
//	POST /disconnect       body: {"user","reason","reconnect_ms"} -> 200 {"user","disconnected"}
//	POST /unsubscribe      body: {"user","topic"}         -> 200 {"user","topic","unsubscribed"}
//	GET  /users/{user}                                    -> 200 {"user","connections"}
//	GET  /                                                -> the demo page
//	GET  /fanwire.js, /fanwire.d.ts                       -> the browser client (CORS: any origin)
//
// Every error is JSON {"error":"<code>","message":"<text>"}. With
// Options.APIKeys the publish routes need a key, with Options.AdminKeys the
// admin paths (/stats, /debug/*, ...; see keys.go): 401 otherwise.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fanwire/fanwire/server/js"
	"github.com/fanwire/fanwire/server/wire"
)

// DefaultMaxBody is the publish body cap used when Options.MaxBody is 0.
const DefaultMaxBody int64 = 1 << 20

// Publisher delivers one message to every subscriber of a topic. data is a
// valid JSON value; the handler does not touch it after Publish returns.
// *server.Node implements it.
type Publisher interface {
	// subscribers < 0: not known here (worker mode: the workers count them).
	Publish(topic string, data []byte) (seq uint64, subscribers int, err error)
}

// Options configures NewHandler. The zero value is usable.
type Options struct {
	MaxBody int64        // publish body cap in bytes (413 above it); 0 = DefaultMaxBody
	Page    []byte       // served at GET / as text/html; nil = a plain-text index
	Logger  *slog.Logger // nil = discard
	Health  func() error // GET /healthz answers 503 while it returns an error; nil = always healthy
	Stats   func() any   // GET /stats answers it as JSON; nil = 404
	// Routes are extra handlers by exact path (e.g. /demo/token in demo mode).
	Routes map[string]http.Handler
	// APIKeys protect POST /publish*, AdminKeys the admin paths (see
	// isAdminPath); an empty list leaves those paths open.
	APIKeys, AdminKeys Keys
	Users              UserActions // POST /disconnect, POST /unsubscribe, GET /users/{user} (users.go); nil = 404
	Ops                Operator    // /metrics, /topics, /admin and publish counting (operator.go)
}

// PublishResult is the answer to one successful publish. Subscribers is
// omitted when the publisher cannot count them (worker mode).
type PublishResult struct {
	Topic       string `json:"topic"`
	Seq         uint64 `json:"seq"`
	Subscribers *int   `json:"subscribers,omitempty"`
	Duplicate   bool   `json:"duplicate,omitempty"` // an earlier publish with the same idempotency key; Seq is its
}

func publishResult(topic string, seq uint64, subscribers int) PublishResult {
	r := PublishResult{Topic: topic, Seq: seq}
	if subscribers >= 0 {
		r.Subscribers = &subscribers
	}
	return r
}

type handler struct {
	pub     Publisher
	maxBody int64
	page    []byte
	log     *slog.Logger
	health  func() error
	stats   func() any
	routes  map[string]http.Handler
	dedup   *dedup // idempotency keys of a Publisher that does not keep them (idempotency.go)

	apiKeys, adminKeys *keySet // nil: open
	users              UserActions
	op                 Operator // operator.go
}

// NewHandler returns the control API handler publishing through p.
func NewHandler(p Publisher, opts Options) http.Handler {
	h := &handler{pub: p, maxBody: opts.MaxBody, page: opts.Page, log: opts.Logger, health: opts.Health, stats: opts.Stats, routes: opts.Routes,
		dedup: newDedup(DedupWindow, dedupMaxKeys), users: opts.Users, op: opts.Ops}
	h.apiKeys, h.adminKeys = newKeySet(opts.APIKeys), newKeySet(opts.AdminKeys)
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// ServeHTTP routes by hand rather than with ServeMux patterns so that 404 and
// 405 answers carry the same JSON error body as everything else.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !h.authorize(w, r) {
		return
	}
	if route := h.routes[path]; route != nil {
		route.ServeHTTP(w, r)
		return
	}
	if h.operator(w, r) { // operator.go: /metrics, /topics, /admin
		return
	}
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		if route := h.routes[path[:i+1]]; route != nil { // a prefix route: "/presence/" serves /presence/{topic}
			route.ServeHTTP(w, r)
			return
		}
	}
	switch {
	case path == "/publish":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		h.publishBatch(w, r)
	case strings.HasPrefix(path, "/publish/"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		h.publishOne(w, r, path[len("/publish/"):])
	case path == "/healthz":
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		h.serveHealth(w)
	case path == "/stats" || path == "/debug/heap":
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		if path == "/stats" {
			h.serveStats(w)
		} else {
			serveHeap(w)
		}
	case strings.HasPrefix(path, "/debug/pprof/"):
		servePprof(w, r) // CPU and heap profiles, like /debug/heap a trusted-interface tool
	case path == js.Path || path == js.TypesPath:
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		serveClient(w, r, path == js.TypesPath)
	case isUserPath(path):
		h.serveUsers(w, r, path) // users.go
	case path == "/":
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		h.serveIndex(w)
	default:
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+path)
	}
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// publishOne handles POST /publish/{topic}. The topic comes from the decoded
// path, so "/publish/a%2Fb" names "a/b" and is rejected as invalid.
func (h *handler) publishOne(w http.ResponseWriter, r *http.Request, topic string) {
	start := time.Now()
	if !wire.ValidTopic(topic) {
		writeError(w, http.StatusBadRequest, CodeInvalidTopic, invalidTopicText(topic))
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	data := trimJSONSpace(body)
	if len(data) == 0 {
		writeError(w, http.StatusBadRequest, CodeEmptyBody, "the body must be one JSON value")
		return
	}
	if msg := checkJSON(data); msg != "" {
		writeError(w, http.StatusBadRequest, CodeBadJSON, "the body "+msg)
		return
	}
	key, ok := keyOf(r)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeInvalidIdempotencyKey, invalidKeyText)
		return
	}
	seq, subs, dup, err := h.publish(topic, data, key)
	if err != nil {
		h.writePublishError(w, topic, err, nil)
		return
	}
	h.op.Publish.observe(start, 1)
	h.log.Debug("published", "topic", topic, "seq", seq, "subscribers", subs, "bytes", len(data), "duplicate", dup)
	res := publishResult(topic, seq, subs)
	res.Duplicate = dup
	writeJSON(w, http.StatusOK, res)
}

// readBody reads the whole request body under the size cap. On failure it
// has already answered (413 over the cap, 400 for a broken upload).
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > h.maxBody {
		h.tooLarge(w)
		return nil, false
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength)) // exact size known: one allocation
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.tooLarge(w)
		} else {
			writeError(w, http.StatusBadRequest, CodeReadFailed, "reading the request body failed: "+err.Error())
		}
		return nil, false
	}
	return buf.Bytes(), true
}

func (h *handler) tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
		"the body is larger than the limit of "+strconv.FormatInt(h.maxBody, 10)+" bytes")
}

// writePublishError maps a Publisher error to a status: a bad topic is the
// client's fault (400), anything else means the node cannot deliver (503).
// batch, when set, adds the line and count a batch client needs to resume.
func (h *handler) writePublishError(w http.ResponseWriter, topic string, err error, batch *errorBody) {
	body := errorBody{Error: CodeUnavailable, Message: "publish failed: " + err.Error()}
	status := http.StatusServiceUnavailable
	if errors.Is(err, wire.ErrInvalidTopic) {
		body = errorBody{Error: CodeInvalidTopic, Message: invalidTopicText(topic)}
		status = http.StatusBadRequest
	} else if errors.Is(err, wire.ErrMessageTooLarge) {
		body = errorBody{Error: CodeBodyTooLarge, Message: err.Error()}
		status = http.StatusRequestEntityTooLarge
	} else {
		h.log.Warn("publish failed", "topic", topic, "err", err)
		w.Header().Set("Retry-After", "1") // the bus reconnects within about a second
	}
	if batch != nil {
		body.Message = "line " + strconv.Itoa(batch.Line) + ": " + body.Message
		body.Line, body.Published = batch.Line, batch.Published
	}
	writeJSON(w, status, body)
}

func (h *handler) serveHealth(w http.ResponseWriter) {
	if h.health != nil {
		if err := h.health(); err != nil {
			writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n") //nolint:errcheck // the client is gone; nothing to do
}

const plainIndex = `fanwire control API

POST /publish/{topic}   body: one JSON value
POST /publish           body: NDJSON lines {"topic":"...","data":<JSON value>}
GET  /healthz           200 ok when the node is healthy
GET  /fanwire.js        the browser client (ES module)
`

func (h *handler) serveIndex(w http.ResponseWriter) {
	hdr := w.Header()
	if h.page == nil {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, plainIndex) //nolint:errcheck // the client is gone; nothing to do
		return
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	w.Write(h.page) //nolint:errcheck // the client is gone; nothing to do
}

// trimJSONSpace strips the four JSON whitespace bytes only; bytes.TrimSpace
// would also strip Unicode spaces and turn invalid JSON into valid JSON.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// checkJSON says why data is not one valid JSON value ("is not ..."), or ""
// if it is. UTF-8 is checked separately because json.Valid accepts invalid
// UTF-8 inside strings, and subscribers receive the bytes in a text frame.
func checkJSON(data []byte) string {
	if !utf8.Valid(data) {
		return "is not valid UTF-8"
	}
	if !json.Valid(data) {
		return "is not one valid JSON value"
	}
	return ""
}

func invalidTopicText(topic string) string {
	if len(topic) > 40 {
		topic = topic[:40] + "..."
	}
	return "invalid topic " + strconv.Quote(topic) + ": want 1-128 characters of [A-Za-z0-9_.:-]"
}
