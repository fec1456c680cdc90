package api

import (
	"bytes"
	"net/http"
	"time"

	"github.com/fanwire/fanwire/server/js"
)

// serveClient answers GET /fanwire.js (or its .d.ts) for pages on any
// origin: ServeContent handles HEAD, If-None-Match (304) and ranges.
func serveClient(w http.ResponseWriter, r *http.Request, types bool) {
	body, etag, ctype := js.Source, js.ETag, js.ContentType
	if types {
		body, etag, ctype = js.Types, js.TypesETag, "application/typescript; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", js.CacheControl)
	h.Set("ETag", etag)
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
