package fleetsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// PathStatus is where the control listener serves Status as JSON.
const PathStatus = "/status"

// ControlPrefix starts the line the fleetsim command prints on stdout once
// its fleet is created: the prefix, then the control listener's URL.
const ControlPrefix = "fleetsim: control "

// Handler serves the control API: GET PathStatus.
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.Status())
	})
	return mux
}

// ReadStatus asks a fleet's control listener (base: http://host:port) for
// its Status.
func ReadStatus(ctx context.Context, hc *http.Client, base string) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+PathStatus, nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("fleetsim: status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("fleetsim: status: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("fleetsim: status: %w", err)
	}
	return st, nil
}

// NewControlServer is the control listener's server, with timeouts.
func NewControlServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute}
}
