package master

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// Bounded inputs (issue #16): every field of every message is bounded
// (protocol.CheckBounds, in DecodeBody) and every record is at most
// protocol.MaxRecordBytes, before the master writes anything; the number of
// records of each kind is bounded (Config.MaxWorkers/MaxApps/MaxDrivers,
// 429 beyond); a registering worker's URL must be its own address.

// Default record limits (spark.deploy.maxWorkers, maxApplications,
// maxDrivers).
const (
	DefaultMaxWorkers = 10000
	DefaultMaxApps    = 10000
	DefaultMaxDrivers = 10000
)

// errLimit is the 429 for a registration beyond a record limit.
func errLimit(kind, key string, n, limit int) error {
	return &protocol.StatusError{Code: http.StatusTooManyRequests,
		Message: fmt.Sprintf("master: %d %s are registered, the limit (%s=%d); refusing another", n, kind, key, limit)}
}

// checkWorkerAddress refuses a registration whose url is not the worker's
// own command listener: url must be http(s)://host:port on the declared
// host, and the declared host must be the address the request
// came from (or a name that resolves to it; from a loopback address, a
// name of this machine). So the master never POSTs to an address a caller
// picked. Config.TrustWorkerAddress turns the source check off (NAT).
func (m *Master) checkWorkerAddress(ctx context.Context, r *http.Request, req protocol.RegisterWorker) error {
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") {
		return &protocol.FieldError{Field: "url", Reason: "must be http://host:port of the worker's command listener"}
	}
	if !strings.EqualFold(u.Hostname(), req.Host) {
		return &protocol.FieldError{Field: "url", Reason: fmt.Sprintf("%q is not on the declared host %s", req.URL, req.Host)}
	}
	if w, err := url.Parse(req.WebUIURL); req.WebUIURL != "" && (err != nil || (w.Scheme != "http" && w.Scheme != "https") || w.User != nil) {
		return &protocol.FieldError{Field: "webUiUrl", Reason: "must be an http(s) URL"}
	}
	if m.cfg.TrustWorkerAddress {
		return nil
	}
	src, _, err := net.SplitHostPort(r.RemoteAddr)
	srcIP := net.ParseIP(src)
	if err != nil || srcIP == nil {
		return nil // not a TCP peer (an in-process test)
	}
	if ip := net.ParseIP(strings.Trim(req.Host, "[]")); ip != nil {
		if ip.Equal(srcIP) || ip.IsLoopback() && srcIP.IsLoopback() {
			return nil
		}
		return &protocol.FieldError{Field: "host", Reason: fmt.Sprintf("%s is not the address this registration came from (%s)", req.Host, src)}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, _ := net.DefaultResolver.LookupIPAddr(ctx, req.Host)
	local := srcIP.IsLoopback()
	for _, a := range addrs {
		if a.IP.Equal(srcIP) || local && (a.IP.IsLoopback() || isLocalIP(a.IP)) {
			return nil
		}
	}
	return &protocol.FieldError{Field: "host", Reason: fmt.Sprintf("%s does not resolve to the address this registration came from (%s); set spark.deploy.trustWorkerAddress=true behind NAT", req.Host, src)}
}

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
