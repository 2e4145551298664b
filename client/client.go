// Package client is sparkd's application client, used by drivers and by
// `sparkd submit --exec`. It registers an application with a list of masters,
// finds the leader (probing all masters at once and following leader hints),
// runs an HTTP listener for the leader's pushes (ExecutorAdded, ExecutorUpdated,
// ExecutorRemoved, WorkerRemoved, ApplicationRemoved, MasterChanged), and
// follows the leader through failovers: MasterChanged is epoch-checked and
// acknowledged, and a periodic AppHeartbeat notices a master that forgot the
// application, in which case the client registers it again.
//
// Guarantees: every push is checked with a protocol.EpochGuard and refused
// with HTTP 409 when it comes from a lower epoch than one already seen;
// events reach the Listener one at a time, in the order they were accepted.
// Not guaranteed: that a registration retried after a timeout does not create
// a second application on the master (the first attempt may have committed).
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
)

// Errors returned by the client. Match with errors.Is.
var (
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("client: invalid config")
	// ErrUnresponsive: no master accepted the registration in time.
	ErrUnresponsive = errors.New("client: all masters are unresponsive")
	// ErrNoLeader: no master could be found that leads.
	ErrNoLeader = errors.New("client: no leading master found")
	// ErrNotRegistered: the call needs a registered application.
	ErrNotRegistered = errors.New("client: application not registered")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrRefused: a master refused a request for a reason that retrying
	// cannot change (see RefusedError).
	ErrRefused = errors.New("client: refused by a master")
)

// RefusedError is a master's answer that retrying cannot change: a 4xx
// other than 404 (a master that does not know the application yet), 408,
// 409 (a stale epoch) and 429; e.g. 400 naming a bad field, or 401 for a
// spark.authenticate.secret that does not match. Calls that get one fail at
// once instead of retrying until their deadline. errors.Is(err, ErrRefused)
// holds for it.
type RefusedError struct {
	Master string // the master that refused, as addressed
	What   string // what it refused: "the application", "the leader probe"
	Status *protocol.StatusError
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("client: master %s refused %s: %v", e.Master, e.What, e.Status)
}

// Unwrap gives ErrRefused and the master's *protocol.StatusError.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Status} }

// IsRefusal reports whether an HTTP status from a master is a refusal that
// retrying cannot change: a 4xx other than 404, 408, 409 and 429.
func IsRefusal(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}

// refusal returns the first *protocol.StatusError in err's tree (through
// wrapping and errors.Join) whose code IsRefusal, or nil.
func refusal(err error) *protocol.StatusError {
	switch e := err.(type) {
	case nil:
		return nil
	case *protocol.StatusError:
		if IsRefusal(e.Code) {
			return e
		}
		return nil
	case interface{ Unwrap() error }:
		return refusal(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, u := range e.Unwrap() {
			if se := refusal(u); se != nil {
				return se
			}
		}
	}
	return nil
}

// Config configures a Client. Zero durations take the defaults in
// DefaultConfig.
type Config struct {
	// Masters are the master RPC addresses: "spark://h:7077", "h:7077" or
	// an http:// URL. At least one is required.
	Masters []string
	// App describes the application to register.
	App protocol.AppDescription
	// ListenAddr is where the push listener binds. Default: "127.0.0.1:0"
	// when every master is on a loopback address, else ":0" (all
	// interfaces), since masters on other hosts must reach it.
	ListenAddr string
	// AdvertiseHost is the host masters use to reach the listener (Spark's
	// spark.driver.host). Default: the host of ListenAddr; when that is
	// unspecified, this machine's host name (127.0.0.1 if every master is
	// on loopback).
	AdvertiseHost string
	// MaxPortRetries is spark.port.maxRetries: when ListenAddr's port is
	// busy, the next port is tried, this many times. 0 = the default, 16;
	// negative = never. A random port (":0") is never retried.
	MaxPortRetries int
	// Secret is the application credential a worker or `sparkd submit`
	// gave the driver (SPARK_AUTHENTICATE_SECRET, see
	// protocol.NewAppCredential), or the cluster secret
	// (spark.authenticate.secret), from which the client derives an
	// application credential of its own; "" = no authentication.
	Secret string
	// TLS, when set, serves the push listener over TLS and calls masters
	// over TLS (spark.ssl.rpc.*); nil = plaintext.
	TLS *protocol.TLS
	// RequestTimeout bounds each HTTP call (default 5s).
	RequestTimeout time.Duration
	// HeartbeatInterval is the period of AppHeartbeat (default 5s: the master
	// removes an application after 30s without one; at 5,000 applications
	// that is 1,000 requests/s at the leader).
	HeartbeatInterval time.Duration
	// RegisterTimeout bounds Register's retries (default 60s, like Spark's
	// 3 x 20 s before "All masters are unresponsive! Giving up.").
	RegisterTimeout time.Duration
	// BackoffInitial and BackoffMax bound the jittered exponential backoff
	// between retries (defaults 100ms and 2s).
	BackoffInitial, BackoffMax time.Duration
	// Logger receives the client's log lines (default: logrus standard logger).
	Logger *logrus.Entry
	// Principal is the application principal to sign as when Secret is the
	// cluster secret ("" = a fresh random one). A driver that serves its
	// executors itself picks it first, so that it knows the application
	// credential (AppSecret) its executors will be given.
	Principal string
}

// DefaultConfig returns the defaults applied to zero fields.
func DefaultConfig() Config {
	return Config{
		MaxPortRetries:    protocol.DefaultMaxPortRetries,
		RequestTimeout:    5 * time.Second,
		HeartbeatInterval: 5 * time.Second,
		RegisterTimeout:   60 * time.Second,
		BackoffInitial:    100 * time.Millisecond,
		BackoffMax:        2 * time.Second,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.App.User == "" {
		c.App.User = defaultUser()
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
		if !allLoopback(c.Masters) {
			c.ListenAddr = ":0"
		}
	}
	if c.MaxPortRetries == 0 {
		c.MaxPortRetries = d.MaxPortRetries
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = d.RegisterTimeout
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = d.BackoffInitial
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = d.BackoffMax
	}
	if c.BackoffMax < c.BackoffInitial {
		c.BackoffMax = c.BackoffInitial
	}
	if c.Logger == nil {
		c.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	if len(c.Masters) == 0 {
		return fmt.Errorf("%w: no master URL given (spark.master)", ErrConfig)
	}
	for _, m := range c.Masters {
		if err := checkMasterURL(m); err != nil {
			return fmt.Errorf("%w: master URL %q: %v", ErrConfig, m, err)
		}
	}
	if err := c.App.Validate(); err != nil {
		return fmt.Errorf("%w: app.%v", ErrConfig, err)
	}
	return nil
}

func checkMasterURL(m string) error {
	base := protocol.HTTPBase(m)
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if u.Host == "" || u.Port() == "" {
		return errors.New("want host:port")
	}
	return nil
}

// key normalises a master URL so that "spark://h:1", "h:1" and "http://h:1"
// compare equal.
func key(m string) string { return protocol.HTTPBase(m) }

// EventKind names what happened.
type EventKind string

const (
	EventRegistered         EventKind = "REGISTERED"          // AppID, Epoch, MasterURL
	EventReregistered       EventKind = "REREGISTERED"        // a master forgot the app; AppID is the new id
	EventMasterChanged      EventKind = "MASTER_CHANGED"      // a new leader re-attached the app
	EventDisconnected       EventKind = "DISCONNECTED"        // the current master stopped answering
	EventExecutorAdded      EventKind = "EXECUTOR_ADDED"      // ExecutorID, WorkerID, HostPort, Cores, MemoryMB
	EventExecutorUpdated    EventKind = "EXECUTOR_UPDATED"    // ExecutorID, State, ExitCode, Message
	EventExecutorRemoved    EventKind = "EXECUTOR_REMOVED"    // ExecutorID, State, ExitCode, Message
	EventWorkerRemoved      EventKind = "WORKER_REMOVED"      // WorkerID, HostPort (host), Message
	EventApplicationRemoved EventKind = "APPLICATION_REMOVED" // AppState, Message: the app has ended
)

// Event is one thing the client learned. Fields not relevant to Kind are zero.
type Event struct {
	Kind       EventKind
	At         time.Time
	AppID      string
	Epoch      int64
	MasterURL  string
	ExecutorID int
	WorkerID   string
	HostPort   string
	Cores      int
	MemoryMB   int
	State      protocol.ExecutorState
	ExitCode   *int
	WorkerLost bool
	AppState   protocol.AppState
	Message    string
}

// Listener receives events, one at a time, in order, from one goroutine.
// It must not call Close (it may call other methods).
type Listener func(Event)

// Client is a registered (or registering) application.
type Client struct {
	cfg        Config
	log        *logrus.Entry
	rpc        *protocol.Client
	guard      protocol.EpochGuard
	credential string // the application credential ("" = no authentication)

	ln      net.Listener
	srv     *http.Server
	selfURL string

	mu           sync.Mutex
	appID        string
	master       string // current master RPC URL (as the master names itself)
	registered   bool
	ended        bool
	disconnected bool
	waiting      string // the master's waiting reason, from the last heartbeat
	closed       bool

	events *queue

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hbOnce sync.Once
	closeM sync.Mutex
}

// defaultUser is the application's user as Spark names it: SPARK_USER, else
// the user running the driver.
func defaultUser() string {
	if u := os.Getenv("SPARK_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// allLoopback reports whether every master address is on this machine's
// loopback interface (so a listener on 127.0.0.1 is reachable by them).
func allLoopback(masters []string) bool {
	if len(masters) == 0 {
		return false
	}
	for _, m := range masters {
		u, err := url.Parse(protocol.HTTPBase(m))
		if err != nil {
			return false
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); !(h == "localhost" || ip != nil && ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// defaultAdvertiseHost: the listener's own host when it names one, else the
// machine's host name (Spark's spark.driver.host default), or 127.0.0.1 for
// masters on loopback.
func defaultAdvertiseHost(listenAddr string, masters []string) string {
	h, _, _ := net.SplitHostPort(listenAddr)
	if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
		return h
	}
	if allLoopback(masters) {
		return "127.0.0.1"
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		return name
	}
	return "127.0.0.1"
}

// AppSecret is the secret a driver's own servers (task runtime, shipped
// files) share with its executors: the application credential of principal
// when secret is the cluster secret, the credential itself when secret is
// one already (a driver launched by a worker), "" without authentication.
// Workers give executors exactly this credential.
func AppSecret(secret, principal string) string {
	if secret == "" || protocol.IsAppCredential(secret) {
		return secret
	}
	return protocol.NewAppCredential(secret, principal)
}

// Credential is the application credential this client signs with (see
// protocol.NewAppCredential): what the driver's task runtime and its
// executors share (the workers give executors the same one). "" without
// authentication.
func (c *Client) Credential() string { return c.credential }

// New validates cfg, binds the push listener and starts serving it. It does
// not contact any master: call Register.
func New(cfg Config, listener Listener) (*Client, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lnHost, lnPort, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, cfg.ListenAddr, err)
	}
	port, err := net.LookupPort("tcp", lnPort)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, cfg.ListenAddr, err)
	}
	ln, err := protocol.Listen(lnHost, port, max(cfg.MaxPortRetries, 0), protocol.ServiceDriver, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("client: listen on %s: %w", cfg.ListenAddr, err)
	}
	host := cfg.AdvertiseHost
	if host == "" {
		host = defaultAdvertiseHost(cfg.ListenAddr, cfg.Masters)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	principal := cfg.Principal
	if principal == "" {
		principal = protocol.NewPrincipal("app-")
	}
	creds, err := protocol.CredentialsFor(cfg.Secret, protocol.Identity{Role: protocol.RoleApplication, Principal: principal})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, EnvAuthSecret, err)
	}
	if creds != nil && creds.Identity().Role != protocol.RoleApplication {
		return nil, fmt.Errorf("%w: %s holds a %s credential, not an application's", ErrConfig, EnvAuthSecret, creds.Identity().Role)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.WithField("component", "client"),
		rpc:     protocol.NewRoleClient(cfg.RequestTimeout, creds),
		ln:      ln,
		selfURL: cfg.TLS.Scheme() + "://" + net.JoinHostPort(host, fmt.Sprint(port)),
		events:  newQueue(listener),
		ctx:     ctx,
		cancel:  cancel,
	}
	cfg.TLS.Apply(c.rpc)
	c.ln = cfg.TLS.Listener(c.ln)
	r := mux.NewRouter()
	r.Handle(protocol.PathAppMasterChanged, protocol.Handle(c.handleMasterChanged)).Methods(http.MethodPost)
	r.Handle(protocol.PathExecutorAdded, protocol.Handle(c.handleExecutorAdded)).Methods(http.MethodPost)
	r.Handle(protocol.PathExecutorUpdated, protocol.Handle(c.handleExecutorUpdated(EventExecutorUpdated))).Methods(http.MethodPost)
	r.Handle(protocol.PathExecutorRemoved, protocol.Handle(c.handleExecutorUpdated(EventExecutorRemoved))).Methods(http.MethodPost)
	r.Handle(protocol.PathApplicationRemoved, protocol.Handle(c.handleApplicationRemoved)).Methods(http.MethodPost)
	r.Handle(protocol.PathWorkerRemoved, protocol.Handle(c.handleWorkerRemoved)).Methods(http.MethodPost)
	r.Handle(protocol.PathAppPing, protocol.Handle(func(*http.Request) (any, error) { return struct{}{}, nil })).Methods(http.MethodPost)
	var allow protocol.Authorizer
	if creds != nil { // pushes are signed with this application's key (by the master)
		allow = protocol.AllowOnly(creds.Identity())
	}
	if creds != nil {
		c.credential = cfg.Secret
		if creds.Cluster() {
			c.credential = creds.AppCredential(creds.Identity().Principal)
		}
	}
	c.srv = protocol.NewServer(protocol.AuthenticateRoles(creds, protocol.VerifyOptions{Hosts: []string{strings.TrimPrefix(strings.TrimPrefix(c.selfURL, "http://"), "https://")}}, allow, r))
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.WithError(err).Error("client listener stopped")
		}
	}()
	go func() {
		defer c.wg.Done()
		c.events.run()
	}()
	return c, nil
}

// URL is the http:// URL of the push listener (sent to masters as clientUrl).
func (c *Client) URL() string { return c.selfURL }

// AppID returns the application id ("" before registration).
func (c *Client) AppID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.appID
}

// Master returns the URL of the master the client currently follows.
func (c *Client) Master() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.master
}

// Epoch returns the highest master epoch seen.
func (c *Client) Epoch() int64 {
	e, _ := c.guard.Current()
	return e
}

// WaitingReason is why the master has given the application no executor,
// as its last heartbeat answer said (the master's /json waitingreason;
// e.g. "each executor needs 10 cores but the largest worker has 8"). It
// is "" while the application has executors, before the first heartbeat,
// and with a master that does not report it.
func (c *Client) WaitingReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}

// Ended reports whether the master has ended the application (or it was
// unregistered or killed).
func (c *Client) Ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *Client) emit(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.AppID == "" {
		e.AppID = c.AppID()
	}
	c.events.push(e)
}

// ---- registration ----

// Register registers the application with the leading master, retrying with
// jittered backoff until one accepts, ctx is done, or RegisterTimeout passes
// (ErrUnresponsive). It starts the heartbeat loop. It returns the app id.
func (c *Client) Register(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RegisterTimeout)
	defer cancel()
	ctx, stop := c.mergeClose(ctx)
	defer stop()
	id, err := c.register(ctx)
	if err != nil {
		return "", err
	}
	c.emit(Event{Kind: EventRegistered, AppID: id, MasterURL: c.Master(), Epoch: c.Epoch()})
	c.hbOnce.Do(func() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.heartbeatLoop()
		}()
	})
	return id, nil
}

// mergeClose returns a context that is also cancelled by Close.
func (c *Client) mergeClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

type regResult struct {
	target string
	resp   protocol.RegisteredApplication
	err    error
}

func (c *Client) register(ctx context.Context) (string, error) {
	req := protocol.RegisterApplication{App: c.cfg.App, ClientURL: c.selfURL}
	b := newBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax)
	var last error
	for attempt := 1; ; attempt++ {
		res, err := c.registerOnce(ctx, req)
		if err == nil {
			c.mu.Lock()
			c.appID = res.resp.AppID
			c.master = res.resp.MasterURL
			if c.master == "" {
				c.master = res.target
			}
			c.registered = true
			c.ended = false
			c.disconnected = false
			c.mu.Unlock()
			if res.resp.Epoch > 0 {
				_, _ = c.guard.Admit(res.resp.Stamp)
			}
			c.log.WithFields(logrus.Fields{"appId": res.resp.AppID, "master": c.Master(), "epoch": res.resp.Epoch}).
				Info("Connected to Spark cluster with app ID ", res.resp.AppID)
			return res.resp.AppID, nil
		}
		var re *RefusedError
		if errors.As(err, &re) {
			return "", err
		}
		last = err
		c.log.WithError(err).WithField("attempt", attempt).Debug("registration attempt failed")
		if werr := b.wait(ctx); werr != nil {
			return "", fmt.Errorf("%w: %d attempts, last error: %w", ErrUnresponsive, attempt, last)
		}
	}
}

// registerOnce sends the registration to every master at once (as Spark
// does). The leader accepts; standbys answer 503 with a hint. A hint naming a
// master not in the list is followed at once.
func (c *Client) registerOnce(ctx context.Context, req protocol.RegisterApplication) (regResult, error) {
	// The first master to accept wins and the other requests are cancelled,
	// so a hung or blackholed master costs nothing (only a leader persists
	// and acknowledges a registration, so at most one accepts). A leader
	// hint naming a master not asked yet is asked at once, in parallel.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan regResult)
	asked := map[string]bool{}
	pending := 0
	ask := func(m string) {
		asked[key(m)] = true
		pending++
		go func() {
			var resp protocol.RegisteredApplication
			err := c.rpc.Call(ctx, http.MethodPost, m, protocol.PathRegisterApp, req, &resp)
			select {
			case results <- regResult{target: m, resp: resp, err: err}:
			case <-ctx.Done():
			}
		}()
	}
	for _, m := range c.cfg.Masters {
		if !asked[key(m)] {
			ask(m)
		}
	}
	var errs []error
	for pending > 0 {
		var r regResult
		select {
		case r = <-results:
		case <-ctx.Done():
			// A sender that sees ctx done drops its result, so waiting
			// for every pending answer here could wait forever.
			return regResult{}, errors.Join(append(errs, ctx.Err())...)
		}
		pending--
		if r.err == nil {
			return r, nil
		}
		if se := refusal(r.err); se != nil {
			// A bad field or a wrong secret: no master will accept it,
			// and waiting for the others changes nothing.
			return regResult{}, &RefusedError{Master: r.target, What: "the application", Status: se}
		}
		errs = append(errs, fmt.Errorf("master %s: %w", r.target, r.err))
		var se *protocol.StatusError
		if errors.As(r.err, &se) && se.Hint != nil && se.Hint.LeaderURL != "" && !asked[key(se.Hint.LeaderURL)] {
			ask(se.Hint.LeaderURL)
		}
	}
	return regResult{}, errors.Join(errs...)
}

// ---- calls to the leader ----

func (c *Client) appPath(p string) (string, error) {
	id := c.AppID()
	if id == "" {
		return "", ErrNotRegistered
	}
	return strings.ReplaceAll(p, "{id}", url.PathEscape(id)), nil
}

// callLeader sends a request to the current master, following a 503 leader
// hint at once, and otherwise probing all masters for the leader between
// jittered retries until ctx is done.
func (c *Client) callLeader(ctx context.Context, method, path string, req, resp any) error {
	b := newBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax)
	target := c.Master()
	var last error
	for {
		if target == "" {
			l, err := c.FindLeader(ctx)
			if err == nil {
				target = l.URL
			} else {
				last = err
				var re *RefusedError
				if errors.As(err, &re) {
					return err
				}
			}
		}
		if target != "" {
			err := c.rpc.Call(ctx, method, target, path, req, resp)
			if err == nil {
				c.setMaster(target)
				return nil
			}
			last = err
			var se *protocol.StatusError
			if errors.As(err, &se) {
				if se.Code == http.StatusServiceUnavailable && se.Hint != nil && se.Hint.LeaderURL != "" && key(se.Hint.LeaderURL) != key(target) {
					target = se.Hint.LeaderURL
					continue
				}
				if IsRefusal(se.Code) {
					return &RefusedError{Master: target, What: "the request", Status: se}
				}
				if se.Code != http.StatusServiceUnavailable {
					return err
				}
			}
			target = ""
		}
		if werr := b.wait(ctx); werr != nil {
			if last == nil {
				last = werr
			}
			return last
		}
	}
}

func (c *Client) setMaster(m string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.master = m
}

// FindLeader asks every master for PathLeader at once and returns the ALIVE
// one with the highest epoch, or failing that the leader named by the
// highest-epoch hint. It returns ErrNoLeader when none is known.
func (c *Client) FindLeader(ctx context.Context) (protocol.LeaderInfo, error) {
	return FindLeader(ctx, c.rpc, c.cfg.Masters)
}

// FindLeader is the standalone form of Client.FindLeader. When no leader is
// found and a master refused the probe (IsRefusal, e.g. 401 for a wrong
// secret), the error holds a *RefusedError.
func FindLeader(ctx context.Context, rpc *protocol.Client, masters []string) (protocol.LeaderInfo, error) {
	infos := ProbeMasters(ctx, rpc, masters)
	var best *protocol.LeaderInfo
	var hint *protocol.LeaderInfo
	var errs []error
	for i := range infos {
		p := &infos[i]
		if p.Err != nil {
			if se := refusal(p.Err); se != nil {
				errs = append(errs, &RefusedError{Master: p.Master, What: "the leader probe", Status: se})
			} else {
				errs = append(errs, fmt.Errorf("master %s: %w", p.Master, p.Err))
			}
			continue
		}
		if p.Info.State == protocol.MasterAlive && (best == nil || p.Info.Epoch > best.Epoch) {
			best = &p.Info
		}
		if p.Info.LeaderURL != "" && (hint == nil || p.Info.Epoch > hint.Epoch) {
			hint = &p.Info
		}
	}
	if best != nil {
		if best.URL == "" {
			best.URL = best.LeaderURL
		}
		return *best, nil
	}
	if hint != nil {
		return protocol.LeaderInfo{URL: hint.LeaderURL, Epoch: hint.Epoch, ID: hint.LeaderID,
			LeaderURL: hint.LeaderURL, LeaderREST: hint.LeaderREST, LeaderWebUI: hint.LeaderWebUI,
			LeaderSince: hint.LeaderSince}, nil
	}
	errs = append([]error{ErrNoLeader}, errs...)
	return protocol.LeaderInfo{}, errors.Join(errs...)
}

// Probe is one master's answer to PathLeader.
type Probe struct {
	Master string // the URL probed, as given
	Info   protocol.LeaderInfo
	Err    error
}

// ProbeMasters asks every master for PathLeader concurrently; the result is
// in the order of masters.
func ProbeMasters(ctx context.Context, rpc *protocol.Client, masters []string) []Probe {
	out := make([]Probe, len(masters))
	var wg sync.WaitGroup
	for i, m := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Master = m
			out[i].Err = rpc.Call(ctx, http.MethodGet, m, protocol.PathLeader, nil, &out[i].Info)
		}()
	}
	wg.Wait()
	return out
}

// RequestExecutors sets the application's total executor target.
func (c *Client) RequestExecutors(ctx context.Context, total int) error {
	if total < 0 {
		return fmt.Errorf("%w: executor total %d is negative", ErrConfig, total)
	}
	p, err := c.appPath(protocol.PathRequestExecutors)
	if err != nil {
		return err
	}
	ctx, stop := c.mergeClose(ctx)
	defer stop()
	if err := c.callLeader(ctx, http.MethodPost, p, protocol.RequestExecutors{Total: total}, nil); err != nil {
		return fmt.Errorf("client: request %d executors: %w", total, err)
	}
	return nil
}

// Kill asks the leader to kill the application: its executors are killed
// and its cores freed.
func (c *Client) Kill(ctx context.Context) error {
	p, err := c.appPath(protocol.PathKillApp)
	if err != nil {
		return err
	}
	if err := c.callLeader(ctx, http.MethodPost, p, nil, nil); err != nil {
		return fmt.Errorf("client: kill %s: %w", c.AppID(), err)
	}
	c.markEnded()
	return nil
}

// Unregister ends the application normally (FINISHED).
func (c *Client) Unregister(ctx context.Context) error {
	p, err := c.appPath(protocol.PathUnregisterApp)
	if err != nil {
		return err
	}
	if err := c.callLeader(ctx, http.MethodPost, p, protocol.UnregisterApplication{AppID: c.AppID()}, nil); err != nil {
		return fmt.Errorf("client: unregister %s: %w", c.AppID(), err)
	}
	c.markEnded()
	return nil
}

func (c *Client) markEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
}

// Close unregisters the application (unless it already ended), stops the
// listener and the heartbeat loop, and delivers pending events. It is
// idempotent; it waits at most ctx for the unregistration.
func (c *Client) Close(ctx context.Context) error {
	c.closeM.Lock()
	defer c.closeM.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	needUnregister := c.registered && !c.ended
	c.mu.Unlock()
	var err error
	if needUnregister {
		err = c.Unregister(ctx)
	}
	c.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if serr := c.srv.Shutdown(sctx); serr != nil {
		_ = c.srv.Close()
	}
	c.events.close()
	c.wg.Wait()
	return err
}

// ---- heartbeats ----

func (c *Client) heartbeatLoop() {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.Ended() {
			continue
		}
		c.heartbeat()
	}
}

// heartbeat sends one AppHeartbeat to the current master and reacts to the
// answer: a master that forgot the app gets it registered again; a master
// that does not answer sends the client looking for the leader.
func (c *Client) heartbeat() {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	p, err := c.appPath(protocol.PathAppHeartbeat)
	if err != nil {
		return
	}
	target := c.Master()
	epoch := c.Epoch()
	var resp protocol.AppHeartbeatResponse
	err = c.rpc.Call(ctx, http.MethodPost, target, p, protocol.AppHeartbeat{AppID: c.AppID(), Epoch: epoch}, &resp)
	var se *protocol.StatusError
	switch {
	case err == nil:
		if resp.Epoch > 0 {
			if _, aerr := c.guard.Admit(resp.Stamp); aerr != nil {
				// A deposed master still answering: look for the real leader.
				c.log.WithError(aerr).Warn("heartbeat answered by a stale master")
				c.lookForLeader(ctx, target)
				return
			}
		}
		c.reconnected(target)
		c.mu.Lock()
		c.waiting = resp.WaitingReason
		c.mu.Unlock()
		if resp.Reregister {
			c.reregister("master " + target + " no longer knows the application")
			return
		}
		if resp.State.Finished() {
			c.applicationEnded(protocol.ApplicationRemoved{State: resp.State, Message: "master reports the application " + string(resp.State)})
		}
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		c.reconnected(target)
		c.reregister("master " + target + " answered 404 for the application")
	case errors.As(err, &se) && se.Code == http.StatusServiceUnavailable && se.Hint != nil &&
		se.Hint.LeaderURL != "" && key(se.Hint.LeaderURL) != key(target) && se.Hint.Epoch >= epoch:
		c.log.Infof("Master %s is %s; following leader hint %s (epoch %d)", target, se.Hint.State, se.Hint.LeaderURL, se.Hint.Epoch)
		c.setMaster(se.Hint.LeaderURL)
	default:
		c.disconnect(target, epoch, err)
		c.lookForLeader(ctx, target)
	}
}

func (c *Client) lookForLeader(ctx context.Context, current string) {
	l, err := c.FindLeader(ctx)
	if err != nil {
		return
	}
	if l.Epoch >= c.Epoch() && key(l.URL) != key(current) {
		c.log.Infof("Found leading master %s (epoch %d); waiting for it to re-attach the application", l.URL, l.Epoch)
		c.setMaster(l.URL)
	}
}

// disconnect records that target, the master followed at epoch, stopped
// answering. A failure that comes back after a new leader has re-attached
// the application (a heartbeat still in flight to the old master) is no
// disconnection: it changes nothing and emits nothing. The event is queued
// under the lock, so that it and EventMasterChanged arrive in the order of
// the state changes.
func (c *Client) disconnect(target string, epoch int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key(c.master) != key(target) || c.Epoch() != epoch || c.disconnected {
		return
	}
	c.disconnected = true
	c.log.WithError(err).Warnf("Disconnected from Spark cluster (master %s)! Waiting for reconnection...", target)
	c.events.push(Event{Kind: EventDisconnected, At: time.Now(), AppID: c.appID, MasterURL: target, Message: err.Error()})
}

func (c *Client) reconnected(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.disconnected = false
}

func (c *Client) reregister(why string) {
	old := c.AppID()
	c.log.Warnf("Application %s must register again: %s", old, why)
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RegisterTimeout)
	defer cancel()
	id, err := c.register(ctx)
	if err != nil {
		c.log.WithError(err).Error("re-registration failed; will retry on the next heartbeat")
		return
	}
	c.emit(Event{Kind: EventReregistered, AppID: id, MasterURL: c.Master(), Epoch: c.Epoch(),
		Message: fmt.Sprintf("previous app id %s: %s", old, why)})
}

// ---- push handlers ----

// admit checks a push's stamp; stale ones are refused with 409.
func (c *Client) admit(s protocol.Stamp) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, err := c.guard.Admit(s); err != nil {
		c.log.WithError(err).Warn("refused a command from a stale master")
		return err
	}
	return nil
}

func (c *Client) handleMasterChanged(r *http.Request) (any, error) {
	var m protocol.MasterChanged
	if err := protocol.DecodeMessage(r, &m); err != nil {
		return nil, err
	}
	if err := c.admit(m.Stamp); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.master = m.MasterURL
	c.disconnected = false
	id := c.appID
	c.log.WithFields(logrus.Fields{"master": m.MasterURL, "epoch": m.Epoch}).Info("Master has changed, new master is at ", m.MasterURL)
	c.events.push(Event{Kind: EventMasterChanged, At: time.Now(), AppID: id, MasterURL: m.MasterURL, Epoch: m.Epoch})
	c.mu.Unlock()
	return protocol.MasterChangeAcknowledged{AppID: id}, nil
}

func (c *Client) handleExecutorAdded(r *http.Request) (any, error) {
	var m protocol.ExecutorAdded
	if err := protocol.DecodeMessage(r, &m); err != nil {
		return nil, err
	}
	if err := c.admit(m.Stamp); err != nil {
		return nil, err
	}
	c.log.Infof("Executor added: %s/%d on %s (%s) with %d core(s)", c.AppID(), m.ExecutorID, m.WorkerID, m.HostPort, m.Cores)
	c.emit(Event{Kind: EventExecutorAdded, MasterURL: m.MasterURL, Epoch: m.Epoch, ExecutorID: m.ExecutorID,
		WorkerID: m.WorkerID, HostPort: m.HostPort, Cores: m.Cores, MemoryMB: m.MemoryMB})
	return nil, nil
}

func (c *Client) handleExecutorUpdated(kind EventKind) protocol.HandlerFunc {
	return func(r *http.Request) (any, error) {
		var m protocol.ExecutorUpdated
		if err := protocol.DecodeMessage(r, &m); err != nil {
			return nil, err
		}
		if err := c.admit(m.Stamp); err != nil {
			return nil, err
		}
		if m.State == "" {
			return nil, &protocol.FieldError{Field: "state", Reason: "is required"}
		}
		c.log.Infof("Executor updated: %s/%d is now %s%s", c.AppID(), m.ExecutorID, m.State, suffix(m.Message))
		c.emit(Event{Kind: kind, MasterURL: m.MasterURL, Epoch: m.Epoch, ExecutorID: m.ExecutorID,
			State: m.State, ExitCode: m.ExitCode, Message: m.Message, WorkerLost: m.WorkerLost})
		return nil, nil
	}
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

func (c *Client) handleWorkerRemoved(r *http.Request) (any, error) {
	var m protocol.WorkerRemoved
	if err := protocol.DecodeMessage(r, &m); err != nil {
		return nil, err
	}
	if err := c.admit(m.Stamp); err != nil {
		return nil, err
	}
	c.log.Infof("Worker removed: %s on %s%s", m.WorkerID, m.Host, suffix(m.Message))
	c.emit(Event{Kind: EventWorkerRemoved, MasterURL: m.MasterURL, Epoch: m.Epoch, WorkerID: m.WorkerID,
		HostPort: m.Host, Message: m.Message})
	return nil, nil
}

func (c *Client) handleApplicationRemoved(r *http.Request) (any, error) {
	var m protocol.ApplicationRemoved
	if err := protocol.DecodeMessage(r, &m); err != nil {
		return nil, err
	}
	if err := c.admit(m.Stamp); err != nil {
		return nil, err
	}
	c.applicationEnded(m)
	return nil, nil
}

func (c *Client) applicationEnded(m protocol.ApplicationRemoved) {
	c.mu.Lock()
	already := c.ended
	c.ended = true
	c.mu.Unlock()
	if already {
		return
	}
	c.log.Warnf("Application %s has been removed: %s%s", c.AppID(), m.State, suffix(m.Message))
	c.emit(Event{Kind: EventApplicationRemoved, MasterURL: m.MasterURL, Epoch: m.Epoch, AppState: m.State, Message: m.Message})
}

// ---- helpers ----

// backoff is a jittered exponential backoff.
type backoff struct {
	next, max time.Duration
}

func newBackoff(initial, max time.Duration) *backoff { return &backoff{next: initial, max: max} }

// wait sleeps for the next delay (±50% jitter) or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	d := b.next/2 + time.Duration(rand.Int64N(int64(b.next)+1))
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// queue delivers events to a listener in order without ever blocking the
// HTTP handlers that push them.
type queue struct {
	mu       sync.Mutex
	items    []Event
	notify   chan struct{}
	done     bool
	listener Listener
}

func newQueue(l Listener) *queue { return &queue{notify: make(chan struct{}, 1), listener: l} }

func (q *queue) push(e Event) {
	q.mu.Lock()
	if q.done || q.listener == nil {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// run delivers events until close; events pushed before close are delivered.
func (q *queue) run() {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		done := q.done
		q.mu.Unlock()
		for _, e := range items {
			q.listener(e)
		}
		if done && len(items) == 0 {
			return
		}
		if len(items) == 0 {
			<-q.notify
		}
	}
}
