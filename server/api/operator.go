package api

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/server/admin"
	"github.com/fanwire/fanwire/server/metrics"
	"github.com/fanwire/fanwire/server/wire"
)

// Error codes of the operator endpoints.
const (
	CodeNotImplemented = "not_implemented"
	CodeBadParameter   = "bad_parameter"
)

// Operator is what the control API serves for operators (all optional):
//
//	GET /metrics           Prometheus text format
//	GET /topics            topics by subscribers, paged: ?limit=&offset=&sort=subscribers|name
//	GET /topics/{topic}    one topic, with its newest message and history length
//	GET /admin             the live admin page; it polls GET /admin/data every second
//
// They belong behind the admin key, except the page GET /admin itself: it is
// static and holds no data, and sends the key (from ?key=, kept in the tab's
// sessionStorage) as "Authorization: Bearer" when it polls /admin/data.
type Operator struct {
	Metrics   http.Handler    // nil: 404
	Publish   *PublishMetrics // nil: publishes are not counted
	Topics    TopicSource     // nil: 501
	AdminData func() any      // nil: no admin page
}

// PublishMetrics counts the publishes this handler accepted and their
// latency: request received to Publisher.Publish returning (frames queued,
// or the bus's ack). A batch is one observation.
type PublishMetrics struct {
	Published atomic.Uint64
	Latency   metrics.Histogram
}

func (m *PublishMetrics) observe(start time.Time, published int) {
	if m == nil || published == 0 {
		return
	}
	m.Published.Add(uint64(published))
	m.Latency.Observe(time.Since(start))
}

// TopicInfo is one entry of GET /topics.
type TopicInfo struct {
	Topic       string `json:"topic"`
	Subscribers int    `json:"subscribers"`
	Seq         uint64 `json:"seq"` // last seq assigned (0: never published)
	Epoch       string `json:"epoch"`
}

// TopicDetail is GET /topics/{topic}.
type TopicDetail struct {
	TopicInfo
	KeepsLastValue bool            `json:"keeps_last_value"` // matches --last-value: new subscribers get the newest message first
	History        int             `json:"history"`          // messages kept for resume
	LastSeq        uint64          `json:"last_seq,omitempty"`
	Last           json.RawMessage `json:"last,omitempty"` // data of the newest kept message
}

// TopicSource lists topics; *server.Node implements it.
type TopicSource interface {
	Topics() (topics []TopicInfo, complete bool) // complete: false if some were left out (worker mode)
	Topic(name string) (TopicDetail, bool)
}

// TopicPage is the answer of GET /topics.
type TopicPage struct {
	Total      int         `json:"total"`
	Offset     int         `json:"offset"`
	Limit      int         `json:"limit"`
	NextOffset *int        `json:"next_offset,omitempty"` // absent on the last page
	Partial    bool        `json:"partial,omitempty"`     // worker mode: a worker did not answer, or had more topics than it can send (5000)
	Topics     []TopicInfo `json:"topics"`
}

const (
	defaultTopicLimit = 100
	maxTopicLimit     = 1000
)

// operator serves the operator endpoints; false: not one of them.
func (h *handler) operator(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case path == "/metrics", path == "/admin", path == "/admin/data", path == "/topics", strings.HasPrefix(path, "/topics/"):
	default:
		return false
	}
	if !isGet(r) {
		methodNotAllowed(w, r, "GET, HEAD")
		return true
	}
	op := h.op
	switch {
	case path == "/metrics":
		if op.Metrics == nil {
			writeError(w, http.StatusNotFound, CodeNotFound, "no metrics on this listener")
			return true
		}
		op.Metrics.ServeHTTP(w, r)
	case path == "/admin":
		if op.AdminData == nil {
			writeError(w, http.StatusNotFound, CodeNotFound, "no admin page on this listener")
			return true
		}
		hdr := w.Header()
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
		hdr.Set("Referrer-Policy", "no-referrer")
		w.Write(admin.Page) //nolint:errcheck // the client is gone; nothing to do
	case path == "/admin/data":
		if op.AdminData == nil {
			writeError(w, http.StatusNotFound, CodeNotFound, "no admin page on this listener")
			return true
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, op.AdminData())
	case op.Topics == nil:
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "topic listing is not available on this listener")
	case path == "/topics":
		h.serveTopics(w, r)
	default:
		name := path[len("/topics/"):]
		if !wire.ValidTopic(name) {
			writeError(w, http.StatusBadRequest, CodeInvalidTopic, invalidTopicText(name))
			return true
		}
		d, ok := op.Topics.Topic(name)
		if !ok {
			writeError(w, http.StatusNotFound, CodeNotFound, "no such topic: "+name)
			return true
		}
		writeJSON(w, http.StatusOK, d)
	}
	return true
}

// serveTopics answers GET /topics?limit=&offset=&sort=.
func (h *handler) serveTopics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), defaultTopicLimit, 1, maxTopicLimit)
	if err != "" {
		writeError(w, http.StatusBadRequest, CodeBadParameter, "limit: "+err)
		return
	}
	offset, err := intParam(q.Get("offset"), 0, 0, 1<<31-1)
	if err != "" {
		writeError(w, http.StatusBadRequest, CodeBadParameter, "offset: "+err)
		return
	}
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "subscribers"
	}
	if sortBy != "subscribers" && sortBy != "name" {
		writeError(w, http.StatusBadRequest, CodeBadParameter, `sort: want "subscribers" (default) or "name"`)
		return
	}
	all, complete := h.op.Topics.Topics()
	SortTopics(all, sortBy)
	page := TopicPage{Total: len(all), Offset: offset, Limit: limit, Topics: []TopicInfo{}, Partial: !complete}
	if offset < len(all) {
		end := min(len(all), offset+limit)
		page.Topics = all[offset:end]
		if end < len(all) {
			page.NextOffset = &end
		}
	}
	writeJSON(w, http.StatusOK, page)
}

// SortTopics orders topics by subscribers (descending, then name) or by name.
func SortTopics(ts []TopicInfo, by string) {
	slices.SortFunc(ts, func(a, b TopicInfo) int {
		if by == "subscribers" && a.Subscribers != b.Subscribers {
			return cmp.Compare(b.Subscribers, a.Subscribers)
		}
		return strings.Compare(a.Topic, b.Topic)
	})
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(s string, def, lo, hi int) (int, string) {
	if s == "" {
		return def, ""
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, "want an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)
	}
	return v, ""
}

// MetricsOnly serves GET /metrics with h and a JSON 404 for every other
// path: the handler of a --metrics-listen address, open to scrapers.
func MetricsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path+" (this listener serves only /metrics)")
		case !isGet(r):
			methodNotAllowed(w, r, "GET, HEAD")
		default:
			h.ServeHTTP(w, r)
		}
	})
}
