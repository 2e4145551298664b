package zkutil

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/sirupsen/logrus"
)

// watchedConn wraps the library's TCP connection to a server. Every Read that
// returns bytes counts as contact with the server (replies, watch events and
// ping answers alike), and the first 20 bytes of a connection, the start of the
// server's connect response (length, protocol version, negotiated timeout in
// ms, session id), give the negotiated session timeout, which the library
// keeps to itself. The library reads a connection from one goroutine at a time.
type watchedConn struct {
	net.Conn
	owner *Conn
	hdr   [20]byte
	hdrN  int
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.owner.touch()
		if w.hdrN < len(w.hdr) {
			w.hdrN += copy(w.hdr[w.hdrN:], p[:n])
			if w.hdrN == len(w.hdr) {
				w.owner.onConnectResponse(w.hdr[:])
			}
		}
	}
	return n, err
}

// dial is the zk.Dialer of every Conn.
func (c *Conn) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	nc, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: nc, owner: c}, nil
}

// touch records contact with the server now (monotonic clock).
func (c *Conn) touch() {
	d := time.Since(c.base)
	if d <= 0 {
		d = 1
	}
	c.lastContact.Store(int64(d))
}

// onConnectResponse parses the fixed head of a ConnectResponse.
func (c *Conn) onConnectResponse(h []byte) {
	if binary.BigEndian.Uint32(h[0:4]) < 16 {
		return
	}
	timeoutMs := int32(binary.BigEndian.Uint32(h[8:12]))
	sid := int64(binary.BigEndian.Uint64(h[12:20]))
	if sid == 0 || timeoutMs <= 0 {
		return // session expired: the library reports it
	}
	c.negotiated.Store(int64(time.Duration(timeoutMs) * time.Millisecond))
	c.wireSession.Store(sid)
}

// LogAdapter returns a zk.Logger that writes the library's lines to e, with
// a level chosen from the message: connection changes at Info, failures at
// Warn, loop chatter at Debug.
func LogAdapter(e *logrus.Entry) zk.Logger { return zkLogger{e} }

type zkLogger struct{ e *logrus.Entry }

func (l zkLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case strings.HasPrefix(msg, "connected to"),
		strings.HasPrefix(msg, "authenticated"),
		strings.HasPrefix(msg, "failed to connect"),
		strings.HasPrefix(msg, "recv loop terminated"):
		l.e.Info(msg)
	case strings.Contains(msg, "authentication failed"),
		strings.Contains(msg, "error"),
		strings.HasPrefix(msg, "Failed"),
		strings.HasPrefix(msg, "gave up"):
		l.e.Warn(msg)
	default:
		l.e.Debug(msg)
	}
}
