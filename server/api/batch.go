package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/fanwire/fanwire/server/wire"
)

// batchLine is one NDJSON line of POST /publish. Data stays raw so it is
// forwarded to subscribers byte for byte.
type batchLine struct {
	Topic *string         `json:"topic"`
	Data  json.RawMessage `json:"data"`
	Key   *string         `json:"idempotency_key"` // optional, see idempotency.go
}

// BatchResult is the answer to a fully published batch.
type BatchResult struct {
	Published int             `json:"published"`
	Results   []PublishResult `json:"results"`
}

// publishBatch handles POST /publish: NDJSON lines {"topic":..,"data":..},
// blank lines ignored, published in order.
//
// A batch is not atomic. The body is read whole first (so an oversized body
// is refused with 413 before anything is published), then lines are checked
// and published one at a time. At the first bad line the answer is 400 with
// "line" (1-based, counting blank lines) and "published" (how many messages
// went out): those earlier lines stay published, so a client resumes after
// them rather than resending the whole batch.
func (h *handler) publishBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	res := BatchResult{Results: []PublishResult{}}
	lineNo := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		lineNo++
		line = trimJSONSpace(line)
		if len(line) == 0 {
			continue
		}
		topic, data, key, code, msg := parseBatchLine(line)
		if code != "" {
			h.op.Publish.observe(start, res.Published)
			writeJSON(w, http.StatusBadRequest, batchError(code, msg, lineNo, res.Published))
			return
		}
		seq, subs, dup, err := h.publish(topic, data, key)
		if err != nil {
			h.op.Publish.observe(start, res.Published)
			where := batchError("", "", lineNo, res.Published)
			h.writePublishError(w, topic, err, &where)
			return
		}
		res.Published++
		pr := publishResult(topic, seq, subs)
		pr.Duplicate = dup
		res.Results = append(res.Results, pr)
	}
	if res.Published == 0 {
		writeError(w, http.StatusBadRequest, CodeEmptyBody, `the body must hold NDJSON lines {"topic":"...","data":<JSON value>}`)
		return
	}
	h.op.Publish.observe(start, res.Published)
	h.log.Debug("published batch", "messages", res.Published, "bytes", len(body))
	writeJSON(w, http.StatusOK, res)
}

// batchError is the error body of a batch that stopped at line; msg gets a
// "line N: " prefix.
func batchError(code, msg string, line, published int) errorBody {
	return errorBody{Error: code, Message: "line " + strconv.Itoa(line) + ": " + msg, Line: line, Published: &published}
}

// parseBatchLine validates one non-blank line; code is "" when it is good.
func parseBatchLine(line []byte) (topic string, data []byte, key, code, msg string) {
	if msg = checkJSON(line); msg != "" {
		return "", nil, "", CodeBadJSON, msg
	}
	var bl batchLine
	if err := json.Unmarshal(line, &bl); err != nil {
		return "", nil, "", CodeBadJSON, `want an object {"topic":"...","data":<JSON value>}`
	}
	switch {
	case bl.Topic == nil:
		return "", nil, "", CodeMissingTopic, `"topic" is missing`
	case !wire.ValidTopic(*bl.Topic):
		return "", nil, "", CodeInvalidTopic, invalidTopicText(*bl.Topic)
	case len(bl.Data) == 0:
		return "", nil, "", CodeMissingData, `"data" is missing`
	case bl.Key != nil && !validKey(*bl.Key):
		return "", nil, "", CodeInvalidIdempotencyKey, invalidKeyText
	case bl.Key != nil:
		key = *bl.Key
	}
	return *bl.Topic, bl.Data, key, "", ""
}
