package zkutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/sirupsen/logrus"
)

// Conn is a ZooKeeper client connection with session tracking. It is safe for
// concurrent use. The underlying library reconnects on its own, and after a
// session expiry it opens a new session with a new id: watch Events (or
// compare SessionID) to notice.
type Conn struct {
	cfg     Config
	servers []string
	chroot  string
	acl     []zk.ACL
	log     *logrus.Entry
	zk      atomic.Pointer[zk.Conn]

	base        time.Time    // monotonic origin of lastContact
	lastContact atomic.Int64 // time.Since(base) at the last read; 0 = never
	negotiated  atomic.Int64 // negotiated session timeout (ns); 0 = unknown
	wireSession atomic.Int64 // session id of the last connect response

	mu          sync.Mutex
	state       State
	sessionID   int64 // current (or last) session; 0 before the first
	expiredID   int64 // last session reported Expired
	closed      bool
	established chan struct{} // closed at the first session
	estOnce     sync.Once

	q         *eventQueue
	closeOnce sync.Once

	// onWatch, when set, receives every watch event (see SetWatchHandler).
	onWatch atomic.Pointer[func(WatchEvent)]
}

// WatchEvent is a watch that fired (a node's data changed, it was created
// or deleted, its children changed) or was lost (NotWatching: the session
// expired), with Path relative to the chroot; or (Type EventSession, no
// Path) the connection was lost, after which changes made meanwhile are
// reported only once the library has re-armed the watches, in no order
// relative to other replies.
type WatchEvent struct {
	Type zk.EventType
	Path string
}

// SetWatchHandler makes f receive every watch event of this connection,
// including those of the watches set by GetWatched and ChildrenWatched,
// which have no channel. f runs on the library's receive goroutine, before
// the reply to any request sent after the change that fired it is
// delivered; so it must be quick and must not block. nil removes it.
func (c *Conn) SetWatchHandler(f func(WatchEvent)) {
	if f == nil {
		c.onWatch.Store(nil)
		return
	}
	c.onWatch.Store(&f)
}

// Connect dials the ensemble in cfg.Connect and returns once a session is
// established (or fails when ctx ends or cfg.ConnectTimeout passes). It then
// adds the configured credentials (the library re-sends them on every
// reconnect and every new session) and creates the chroot if it is missing.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	servers, chroot, err := ParseConnect(cfg.Connect)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	c := &Conn{
		cfg:         cfg,
		servers:     servers,
		chroot:      chroot,
		acl:         cfg.ACL,
		log:         log,
		base:        time.Now(),
		state:       Disconnected,
		established: make(chan struct{}),
		q:           newEventQueue(),
	}
	zc, _, err := zk.Connect(servers, cfg.SessionTimeout,
		zk.WithEventCallback(c.onEvent),
		zk.WithDialer(c.dial),
		zk.WithLogger(LogAdapter(log.WithField("component", "go-zookeeper"))),
	)
	if err != nil {
		c.q.close(Event{State: Closed, At: time.Now()})
		return nil, fmt.Errorf("zkutil: connect %s: %w", cfg.Connect, err)
	}
	c.zk.Store(zc)

	timer := time.NewTimer(cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-c.established:
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("zkutil: connect %s: %w: %w", cfg.Connect, ErrNoSession, ctx.Err())
	case <-timer.C:
		c.Close()
		return nil, fmt.Errorf("zkutil: connect %s: %w within %v", cfg.Connect, ErrNoSession, cfg.ConnectTimeout)
	}

	if cfg.Auth != "" {
		_, err := run(c, ctx, "add auth", cfg.AuthScheme, func(zc *zk.Conn) (struct{}, error) {
			return struct{}{}, zc.AddAuth(cfg.AuthScheme, []byte(cfg.Auth))
		})
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	if chroot != "" {
		if err := c.ensureFull(ctx, chroot); err != nil {
			c.Close()
			return nil, fmt.Errorf("zkutil: create chroot: %w", err)
		}
	}
	c.log.WithFields(logrus.Fields{
		"session": fmt.Sprintf("0x%x", c.SessionID()), "timeout": c.NegotiatedTimeout(),
		"servers": strings.Join(servers, ","), "chroot": chroot,
	}).Info("Connected to ZooKeeper")
	return c, nil
}

// onEvent is the library's event callback. It runs on the library's
// connection goroutine, so it only updates state under a short lock and
// queues an Event; it never blocks (P7).
func (c *Conn) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		if f := c.onWatch.Load(); f != nil && ev.Path != "" {
			(*f)(WatchEvent{Type: ev.Type, Path: c.rel(ev.Path)})
		}
		return
	}
	if f := c.onWatch.Load(); f != nil && (ev.State == zk.StateDisconnected || ev.State == zk.StateExpired) {
		// Watches survive a reconnect only once the library has re-sent
		// them, asynchronously: whoever relies on them must re-check.
		(*f)(WatchEvent{Type: zk.EventSession})
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	switch ev.State {
	case zk.StateHasSession:
		id := c.wireSession.Load()
		if zc := c.zk.Load(); zc != nil {
			if s := zc.SessionID(); s != 0 {
				id = s
			}
		}
		if c.sessionID != 0 && id != c.sessionID {
			// A new session without an expiry report first: the old one is gone.
			c.expireLocked(now)
		}
		c.sessionID = id
		if c.state != Connected {
			c.state = Connected
			c.log.WithField("session", fmt.Sprintf("0x%x", id)).Info("ZooKeeper session connected")
		}
		c.q.push(Event{State: Connected, SessionID: id, At: now})
		c.estOnce.Do(func() { close(c.established) })
	case zk.StateExpired:
		c.expireLocked(now)
	default: // Disconnected, Connecting, Connected (TCP only), AuthFailed, ...
		if c.state == Connected {
			c.state = Disconnected
			c.log.WithField("session", fmt.Sprintf("0x%x", c.sessionID)).Info("ZooKeeper session disconnected")
			c.q.push(Event{State: Disconnected, SessionID: c.sessionID, At: now})
		}
	}
}

// expireLocked reports the expiry of the current session, at most once per
// session. Callers hold c.mu.
func (c *Conn) expireLocked(now time.Time) {
	if c.sessionID == 0 || c.expiredID == c.sessionID {
		return
	}
	c.expiredID = c.sessionID
	c.state = Expired
	c.log.WithField("session", fmt.Sprintf("0x%x", c.sessionID)).Warn("ZooKeeper session expired")
	c.q.push(Event{State: Expired, SessionID: c.sessionID, At: now})
}

// Events delivers session-state changes. Pending Disconnected/Connected
// events are coalesced, so a slow reader still gets the latest state; every
// Expired event is delivered (one per expired session). The channel is closed
// after the Closed event that Close sends. There is one channel per Conn: use
// a single reader.
func (c *Conn) Events() <-chan Event { return c.q.out }

// State is the current session state.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// SessionID is the id of the current session, which may be Disconnected but
// still alive on the server; 0 when there is none (before the first session,
// after an expiry until the next session, and after Close).
func (c *Conn) SessionID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Expired || c.state == Closed {
		return 0
	}
	return c.sessionID
}

// NegotiatedTimeout is the session timeout the server granted on the last
// connect (the requested timeout until a server has answered).
func (c *Conn) NegotiatedTimeout() time.Duration {
	if d := c.negotiated.Load(); d > 0 {
		return time.Duration(d)
	}
	return c.cfg.SessionTimeout
}

// LastContact is the last time any bytes arrived from a server: replies,
// watch events and ping answers. When the connection is healthy it is at most
// about a third of the negotiated timeout old (the library pings every third),
// so a leader can fence itself when it is older than a bound safely below the
// session timeout. It carries a monotonic clock reading; compare it with
// time.Since. The zero Time means never.
func (c *Conn) LastContact() time.Time {
	d := c.lastContact.Load()
	if d == 0 {
		return time.Time{}
	}
	return c.base.Add(time.Duration(d))
}

// Server is the address of the server the library is connected (or
// connecting) to; "" after Close.
func (c *Conn) Server() string {
	if zc := c.zk.Load(); zc != nil && !c.isClosed() {
		return zc.Server()
	}
	return ""
}

// Chroot is the chroot of the connect string ("" for none).
func (c *Conn) Chroot() string { return c.chroot }

// ACL is the ACL used for nodes this Conn creates (a copy).
func (c *Conn) ACL() []zk.ACL { return append([]zk.ACL(nil), c.acl...) }

// Close closes the session, so its ephemeral nodes vanish at once (when a
// server is reachable; it waits at most a few seconds otherwise), sends a
// final Closed event and closes the Events channel. It is idempotent.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		id := c.sessionID
		if c.state == Expired {
			id = 0
		}
		c.state = Closed
		c.mu.Unlock()
		if zc := c.zk.Load(); zc != nil {
			zc.Close()
		}
		c.q.close(Event{State: Closed, SessionID: id, At: time.Now()})
		c.log.WithField("session", fmt.Sprintf("0x%x", id)).Info("ZooKeeper session closed")
	})
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// run calls f on the library connection with a deadline: ctx's, or
// CallTimeout when ctx has none. On timeout it returns ErrTimeout (wrapping
// context.DeadlineExceeded) and leaves f running in the background: the call
// may still happen. Library errors are wrapped, so errors.Is works with zk's
// sentinels.
func run[T any](c *Conn, ctx context.Context, op, path string, f func(*zk.Conn) (T, error)) (T, error) {
	var zero T
	zc := c.zk.Load()
	if zc == nil || c.isClosed() {
		return zero, fmt.Errorf("zkutil: %s %s: %w", op, path, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("zkutil: %s %s: %w", op, path, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		v, err := f(zc)
		if obs := c.cfg.ObserveCall; obs != nil {
			obs(op, time.Since(start), err)
		}
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.v, fmt.Errorf("zkutil: %s %s: %w", op, path, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, fmt.Errorf("zkutil: %s %s: %w (%w)", op, path, ErrTimeout, ctx.Err())
		}
		return zero, fmt.Errorf("zkutil: %s %s: %w (the call may still happen)", op, path, ctx.Err())
	}
}
