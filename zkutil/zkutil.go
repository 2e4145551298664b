// Package zkutil is sparkd's thin layer over github.com/go-zookeeper/zk.
//
// It owns what the library leaves to its users (see ha-anchors P1-P10):
//
//   - connect strings with an optional chroot ("zk1:2181,zk2:2181/sparkd"); every
//     path given to a Conn is relative to the chroot;
//   - session-state tracking that never loses an event: the library's own event
//     channel drops events, so Conn feeds a coalescing queue from the library's
//     callback and never blocks it (P1, P7); a session expiry is reported exactly
//     once per session, also when the library silently opens a new one (P3);
//   - the session id, the negotiated session timeout, and LastContact: the last
//     time any byte arrived from the server, pings included, so that a leader can
//     fence itself before the server expires its session (P2);
//   - a deadline on every call (P4): the library's calls take no context;
//   - EnsurePath, digest auth and ACLs, and a logrus adapter for the library.
//
// zkutil imports nothing from the rest of sparkd.
package zkutil

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/sirupsen/logrus"
)

// Defaults for Config fields left zero.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultConnectTimeout = 15 * time.Second
	DefaultCallTimeout    = 5 * time.Second
	// DefaultPort is used for a server given without a port.
	DefaultPort = 2181
)

var (
	// ErrTimeout means a call's deadline passed before ZooKeeper answered.
	// The call may still have happened (or may still happen) on the server:
	// a create may have created its node, a multi may have committed.
	ErrTimeout = errors.New("zkutil: call deadline exceeded")
	// ErrClosed is returned by calls on a Conn after Close.
	ErrClosed = errors.New("zkutil: connection closed")
	// ErrBadConnect means a connect string could not be parsed.
	ErrBadConnect = errors.New("zkutil: bad connect string")
	// ErrBadConfig means a Config field is invalid.
	ErrBadConfig = errors.New("zkutil: bad config")
	// ErrBadPath means a path is not absolute, or otherwise invalid.
	ErrBadPath = errors.New("zkutil: bad path")
	// ErrNoSession means Connect gave up before a session was established.
	ErrNoSession = errors.New("zkutil: no session")
)

// Config configures Connect. Zero values take the documented defaults.
type Config struct {
	// Connect is "host:port,host:port[/chroot]". A host without a port uses 2181.
	Connect string
	// SessionTimeout is the session timeout requested from the server (default
	// 10s). The server clamps it to [minSessionTimeout, maxSessionTimeout]; see
	// Conn.NegotiatedTimeout for what was granted.
	SessionTimeout time.Duration
	// ConnectTimeout bounds how long Connect waits for a first session (default 15s).
	ConnectTimeout time.Duration
	// CallTimeout is the deadline of each call whose ctx has none (default 5s).
	CallTimeout time.Duration
	// AuthScheme and Auth add credentials to every session, e.g. "digest" and
	// "user:pass". An empty Auth means none. An empty AuthScheme with a
	// non-empty Auth means "digest".
	AuthScheme, Auth string
	// ACL is used for every node this Conn creates. Nil means
	// zk.WorldACL(zk.PermAll), or zk.DigestACL(zk.PermAll, user, pass) when
	// digest Auth is set, or zk.AuthACL(zk.PermAll) for another auth scheme.
	ACL []zk.ACL
	// Logger receives the library's log lines and zkutil's state transitions.
	// Nil discards them.
	Logger *logrus.Entry
	// ObserveCall, when set, is told the operation ("get", "multi", ...),
	// duration and outcome of every call (for latency metrics). It must not
	// block.
	ObserveCall func(op string, d time.Duration, err error)
}

// withDefaults validates cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	switch {
	case cfg.SessionTimeout < 0:
		return cfg, fmt.Errorf("%w: session timeout %v is negative", ErrBadConfig, cfg.SessionTimeout)
	case cfg.ConnectTimeout < 0:
		return cfg, fmt.Errorf("%w: connect timeout %v is negative", ErrBadConfig, cfg.ConnectTimeout)
	case cfg.CallTimeout < 0:
		return cfg, fmt.Errorf("%w: call timeout %v is negative", ErrBadConfig, cfg.CallTimeout)
	case cfg.SessionTimeout > 0 && cfg.SessionTimeout < time.Millisecond:
		return cfg, fmt.Errorf("%w: session timeout %v is below 1ms", ErrBadConfig, cfg.SessionTimeout)
	}
	if cfg.Auth != "" && cfg.AuthScheme == "" {
		cfg.AuthScheme = "digest"
	}
	if cfg.Auth == "" && cfg.AuthScheme != "" {
		return cfg, fmt.Errorf("%w: auth scheme %q set without credentials", ErrBadConfig, cfg.AuthScheme)
	}
	if cfg.AuthScheme == "digest" {
		user, pass, ok := strings.Cut(cfg.Auth, ":")
		if !ok || user == "" {
			return cfg, fmt.Errorf("%w: digest auth must be user:password", ErrBadConfig)
		}
		if cfg.ACL == nil {
			cfg.ACL = zk.DigestACL(zk.PermAll, user, pass)
		}
	}
	if cfg.ACL == nil {
		if cfg.Auth != "" {
			cfg.ACL = zk.AuthACL(zk.PermAll)
		} else {
			cfg.ACL = zk.WorldACL(zk.PermAll)
		}
	}
	if len(cfg.ACL) == 0 {
		return cfg, fmt.Errorf("%w: empty ACL", ErrBadConfig)
	}
	return cfg, nil
}

// ParseConnect splits a ZooKeeper connect string "h1:p1,h2:p2[/chroot]" into
// its servers (each "host:port", port 2181 filled in when missing; IPv6 hosts in
// brackets) and its chroot ("" when absent or "/"). A chroot must be a valid
// absolute ZooKeeper path without a trailing slash.
func ParseConnect(s string) (servers []string, chroot string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, "", fmt.Errorf("%w: empty", ErrBadConnect)
	}
	if strings.Contains(s, "://") {
		return nil, "", fmt.Errorf("%w: %q: want host:port[,host:port][/chroot], not a URL", ErrBadConnect, s)
	}
	hosts := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		hosts, chroot = s[:i], s[i:]
		if chroot == "/" {
			chroot = ""
		} else if err := validatePath(chroot); err != nil {
			return nil, "", fmt.Errorf("%w: %q: chroot: %w", ErrBadConnect, s, err)
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, "", fmt.Errorf("%w: %q: empty server entry", ErrBadConnect, s)
		}
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return nil, "", fmt.Errorf("%w: %q: unclosed '[' in %q", ErrBadConnect, s, h)
			}
			host = h[1:end]
			rest := h[end+1:]
			switch {
			case rest == "":
			case strings.HasPrefix(rest, ":"):
				port = rest[1:]
			default:
				return nil, "", fmt.Errorf("%w: %q: junk after ']' in %q", ErrBadConnect, s, h)
			}
		} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i+1:]
			if strings.Contains(host, ":") {
				return nil, "", fmt.Errorf("%w: %q: IPv6 address %q must be in brackets", ErrBadConnect, s, h)
			}
		}
		if host == "" || strings.ContainsAny(host, " \t[]") {
			return nil, "", fmt.Errorf("%w: %q: bad host in %q", ErrBadConnect, s, h)
		}
		p := DefaultPort
		if port != "" || strings.HasSuffix(h, ":") {
			p, err = strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, "", fmt.Errorf("%w: %q: bad port %q in %q", ErrBadConnect, s, port, h)
			}
		}
		servers = append(servers, net.JoinHostPort(host, strconv.Itoa(p)))
	}
	return servers, chroot, nil
}

// validatePath checks that p is an absolute ZooKeeper path: it starts with
// "/", has no empty, "." or ".." component, no trailing slash (except "/"
// itself), and no NUL.
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrBadPath)
	}
	if p[0] != '/' {
		return fmt.Errorf("%w: %q is not absolute", ErrBadPath, p)
	}
	if p == "/" {
		return nil
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: %q has a trailing slash", ErrBadPath, p)
	}
	for _, part := range strings.Split(p[1:], "/") {
		switch part {
		case "":
			return fmt.Errorf("%w: %q has an empty component", ErrBadPath, p)
		case ".", "..":
			return fmt.Errorf("%w: %q has a relative component", ErrBadPath, p)
		}
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("%w: %q contains NUL", ErrBadPath, p)
	}
	return nil
}
