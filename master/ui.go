package master

import "net/http"

// NewWebUI returns the master's web UI handler: "/", "/json", "/json/{field}",
// "/json/clusterutilization", "/readyz", "/healthz",
// "/metrics/master/prometheus", "/metrics/applications/prometheus" and the
// POST kill forms "/app/kill/" and "/driver/kill/".
func NewWebUI(a Actions, opts UIOptions) http.Handler {
	return http.NotFoundHandler()
}
