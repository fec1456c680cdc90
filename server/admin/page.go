// Package admin is the live admin page served at GET /admin on the control
// listener: one static HTML file with inline JavaScript and SVG charts (no
// build step, no CDN) that polls GET /admin/data every second.
package admin

import _ "embed"

// Page is the admin page.
//
//go:embed admin.html
var Page []byte
