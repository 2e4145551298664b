package protocol

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// DefaultMaxPortRetries is spark.port.maxRetries' default, as in Spark.
const DefaultMaxPortRetries = 16

// Service names passed to Listen: Spark's, so that its log lines read the same.
const (
	ServiceMaster     = "sparkMaster"
	ServiceMasterUI   = "MasterUI"
	ServiceREST       = "RestSubmissionServer"
	ServiceWorker     = "sparkWorker"
	ServiceWorkerUI   = "WorkerUI"
	ServiceDriver     = "sparkDriver"
	minRetryPort      = 1024
	portSpaceAboveMin = 65536 - minRetryPort
)

// Warner is the logger Listen reports a busy port to (a *logrus.Entry).
type Warner interface {
	Warnf(format string, args ...any)
}

// Listen binds a TCP listener for service on host:port as Spark's
// Utils.startServiceOnPort does: when the port is in use (EADDRINUSE), it
// logs "Service 'X' could not bind on port P. Attempting port P+1." and
// tries the next port, up to maxRetries more times (spark.port.maxRetries),
// wrapping from 65535 to 1024. Port 0 binds a random port and is never
// retried; neither is any error other than "address in use". The caller
// reads the bound port from the listener. log may be nil.
func Listen(host string, port, maxRetries int, service string, log Warner) (net.Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("service '%s': port %d out of range", service, port)
	}
	if port == 0 || maxRetries < 0 {
		maxRetries = 0
	}
	var lastErr error
	for offset := 0; offset <= maxRetries; offset++ {
		try := retryPort(port, offset)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(try)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("service '%s' could not bind on %s: %w", service, net.JoinHostPort(host, strconv.Itoa(try)), err)
		}
		if offset < maxRetries && log != nil {
			log.Warnf("Service '%s' could not bind on port %d. Attempting port %d.", service, try, retryPort(port, offset+1))
		}
	}
	return nil, fmt.Errorf("service '%s' failed after %d retries (starting from %d)! Consider explicitly setting the appropriate port for the service '%s' to an available port or increasing spark.port.maxRetries: %w",
		service, maxRetries, port, service, lastErr)
}

// retryPort is Spark's next port: port+offset, wrapped into 1024-65535.
func retryPort(port, offset int) int {
	if offset == 0 {
		return port
	}
	return (port+offset-minRetryPort)%portSpaceAboveMin + minRetryPort
}
