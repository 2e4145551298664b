package protocol

import (
	"net/http"
	"time"
)

// Limits of every sparkd HTTP server (RPC listeners, web UIs, REST). A
// client that sends its headers or body slowly, or holds an idle
// connection, is disconnected instead of holding a goroutine and a buffer
// indefinitely.
const (
	// ServerReadHeaderTimeout bounds reading a request's headers.
	ServerReadHeaderTimeout = 10 * time.Second
	// ServerReadTimeout bounds reading a whole request, body included
	// (bodies are at most MaxBodyBytes).
	ServerReadTimeout = 30 * time.Second
	// ServerWriteTimeout bounds writing a response; the largest are log
	// pages, which are paged.
	ServerWriteTimeout = 60 * time.Second
	// ServerIdleTimeout closes keep-alive connections idle this long, so
	// that a master's fds follow its active peers, not every peer it ever
	// talked to.
	ServerIdleTimeout = 2 * time.Minute
	// ServerMaxHeaderBytes bounds a request's headers.
	ServerMaxHeaderBytes = 64 << 10
)

// ServerLimits are the limits of one server.
type ServerLimits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}

// DefaultServerLimits are the limits NewServer applies.
var DefaultServerLimits = ServerLimits{ServerReadHeaderTimeout, ServerReadTimeout, ServerWriteTimeout, ServerIdleTimeout, ServerMaxHeaderBytes}

// NewServer returns an http.Server for h with sparkd's limits. Every
// sparkd listener is served through it.
func NewServer(h http.Handler) *http.Server { return NewServerWithLimits(h, DefaultServerLimits) }

// NewServerWithLimits is NewServer with other limits.
func NewServerWithLimits(h http.Handler, l ServerLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
