package api

import (
	"encoding/json"
	"net/http"
)

// Error codes in the "error" field of every error response. They are part of
// the control API contract; the human text in "message" is not.
const (
	CodeBadJSON          = "bad_json"
	CodeEmptyBody        = "empty_body"
	CodeBodyTooLarge     = "body_too_large"
	CodeInvalidTopic     = "invalid_topic"
	CodeMissingTopic     = "missing_topic"
	CodeMissingData      = "missing_data"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNotFound         = "not_found"
	CodeUnavailable      = "unavailable"
	CodeReadFailed       = "read_failed"
	CodeUnauthorized     = "unauthorized" // missing or wrong API key (401)
	// CodeInvalidIdempotencyKey: Idempotency-Key (or "idempotency_key") is
	// not 1-128 printable ASCII characters without spaces.
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
)

// errorBody is the JSON shape of every error response. Line and Published
// are only set for a failed batch, so a client knows where to resume.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	Line      int    `json:"line,omitempty"`
	Published *int   `json:"published,omitempty"`
}

// writeError sends {"error":code,"message":msg} with the given status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// writeJSON sends v as a JSON document. The values passed here always marshal.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal","message":"cannot encode response"}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client is gone; nothing to do
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		r.Method+" is not allowed on "+r.URL.Path+"; use "+allow)
}
