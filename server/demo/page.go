package demo

import (
	_ "embed"
	"html"
	"strings"
)

// pageTemplate is the demo page. Its WebSocket URL is the placeholder
// wsURLPlaceholder, filled in by RenderPage: the page is served by the
// control listener, which does not know the WS address at build time.
//
//go:embed index.html
var pageTemplate string

const wsURLPlaceholder = "{{WS_URL}}"

// RenderPage returns the demo page wired to wsURL (e.g. WSURL(node.WSAddr())).
// The page itself prefers a ?ws=... query parameter, and replaces a wildcard
// host (0.0.0.0, [::]) with the host the page was loaded from. An empty
// wsURL makes the page assume port 8080 on that host.
func RenderPage(wsURL string) []byte {
	return []byte(strings.Replace(pageTemplate, wsURLPlaceholder, html.EscapeString(wsURL), 1))
}

// WSURL is the subscriber URL for a WebSocket listener bound to addr
// ("host:port"): "ws://host:port/ws".
func WSURL(addr string) string { return "ws://" + addr + "/ws" }
