// Package webui holds what the master, worker and application UIs share:
// one stylesheet and one small script (collapsible sections, sortable
// tables), served under /static/, and the version shown in each page's
// header. It has no dependencies, so every daemon may use it.
package webui

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"
)

//go:embed sparkd.css
var css []byte

//go:embed sparkd.js
var js []byte

// Version is shown in every page's header; cmd/sparkd sets it at start.
var Version = "dev"

// Prefix is where Static is mounted.
const Prefix = "/static/"

var started = time.Now()

// Static serves /static/sparkd.css and /static/sparkd.js.
func Static() http.Handler {
	mux := http.NewServeMux()
	serve := func(name, ctype string, body []byte) {
		mux.HandleFunc("GET "+Prefix+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "max-age=3600")
			http.ServeContent(w, r, name, started, bytes.NewReader(body))
		})
	}
	serve("sparkd.css", "text/css; charset=utf-8", css)
	serve("sparkd.js", "text/javascript; charset=utf-8", js)
	return mux
}
