// Package master is the sparkd master daemon: the leader-election driven
// state machine (STANDBY → ALIVE, recovering the stored peers as they
// answer; see lead in leader.go), the
// registries of workers, applications, executors and drivers, the RPC
// listener (spark://host:7077), the scheduler, the web UI, /json, the REST
// submission server and metrics.
//
// Guarantees:
//   - Every registration and submission is persisted through the
//     recovery.Store before it is acknowledged.
//   - Every message sent to a worker or a driver carries the master's
//     protocol.Stamp{epoch, masterUrl}.
//   - Losing leadership (revocation, or a write fenced by a newer epoch)
//     returns the master to STANDBY in the same process; the Elector then
//     campaigns again. The master never exits because it lost leadership.
//   - With Config.SelfFenceAfter set, a master whose contact with the
//     coordination service is stale, or that was paused (SIGSTOP) and has
//     not yet had its term confirmed by Elector.Confirm, reports STANDBY
//     everywhere (View, /json, /readyz, PathLeader, metrics), serves no
//     leader request and sends nothing (see pause.go).
//   - Messages to one worker or application client arrive in the order of
//     the state changes that produced them (one FIFO queue per peer and
//     term, one call in flight per peer; see outbox). A slow or dead peer
//     delays no other.
//   - A new leader over stored state is ALIVE once it has read the store
//     and queued MasterChanged to every stored peer; a peer that has not
//     answered is UNKNOWN and is given nothing, and what the store says it
//     holds stays counted. (Spark, and DESIGN.md, keep the master
//     RECOVERING until every peer answered: at 10,000 workers that is the
//     whole re-attach round, during which nothing is scheduled.)
//   - No network or store I/O happens while the state lock is held.
//   - A term (term.go) owns every goroutine of its leadership: revoking it
//     cancels and waits for them before the Elector campaigns again. Every
//     effect reports its outcome back to the state machine: store writes are
//     retried until they land or the term ends (persist.go), a launch a
//     worker refused frees its resources, reports are accepted only from the
//     worker that runs the executor or driver, and reconciliation with each
//     worker runs both ways (reconcile.go).
//   - Executors are written to their application's record before they are
//     launched: a successor knows every executor that may run, never reuses
//     an executor id, and tells the driver of executors that ended while no
//     master led (workers list their recent ends when a new leader asks).
//
// master imports only protocol and the recovery interfaces from the project;
// cmd/sparkd chooses the Elector and Store implementations.
package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// Errors returned by New and Run.
var (
	// ErrConfig wraps every configuration error New reports.
	ErrConfig = errors.New("master: invalid configuration")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("master: closed")
)

// Config configures a master. Durations and sizes carry their units.
type Config struct {
	Host      string // address to bind (SPARK_MASTER_HOST); "" = all interfaces
	Port      int    // RPC port (7077); 0 = random
	WebUIPort int    // web UI port (8080); 0 = random; -1 = no web UI
	PublicDNS string // host in web UI links (SPARK_PUBLIC_DNS); "" = the advertised RPC host

	RESTEnabled bool // spark.master.rest.enabled
	RESTPort    int  // spark.master.rest.port (6066); 0 = random

	// MaxPortRetries is spark.port.maxRetries (16): a busy RPC, web UI or
	// REST port is retried on the next port, this many times; 0 = never.
	MaxPortRetries int

	WorkerTimeout         time.Duration // spark.worker.timeout (60s)
	RecoveryTimeout       time.Duration // spark.deploy.recoveryTimeout; 0 = WorkerTimeout
	DeadWorkerPersistence int           // spark.dead.worker.persistence (15)
	SpreadOut             bool          // spark.deploy.spreadOut
	DefaultCores          int           // spark.deploy.defaultCores; 0 = unlimited
	MaxExecutorRetries    int           // spark.deploy.maxExecutorRetries (10); -1 disables
	RetainedApplications  int           // spark.deploy.retainedApplications (200)
	RetainedDrivers       int           // spark.deploy.retainedDrivers (200)
	UIKillEnabled         bool          // spark.ui.killEnabled
	AuthSecret            string        // spark.authenticate.secret; "" = no authentication
	// AllowAppSubmit lets applications (not only holders of the cluster
	// secret) submit drivers and read their status
	// (spark.authenticate.allowApplicationSubmit, false).
	AllowAppSubmit bool
	// UIJWS and RESTJWS are the JWSFilter of the web UI's kill forms
	// (spark.ui.filters) and of the REST API (spark.master.rest.filters);
	// nil = none.
	UIJWS, RESTJWS *protocol.JWSVerifier
	// MaxWorkers, MaxApps and MaxDrivers bound the records of each kind
	// (spark.deploy.maxWorkers/maxApplications/maxDrivers; 0 = the
	// defaults, 10000 each): a registration beyond gets 429.
	MaxWorkers, MaxApps, MaxDrivers int
	// RPCTLS, UITLS and RESTTLS turn TLS on for the RPC listener (and the
	// master's calls to workers and drivers), the web UI and the REST
	// server (spark.ssl.rpc.*, spark.ssl.standalone.*, spark.ssl.*); nil =
	// plaintext.
	RPCTLS, UITLS, RESTTLS *protocol.TLS
	// TrustWorkerAddress skips the check that a registering worker's host
	// is the request's source (spark.deploy.trustWorkerAddress; NAT).
	TrustWorkerAddress bool
	ZKEnabled          bool // recovery mode is ZOOKEEPER (shown in HA stats)

	// SelfFenceAfter: when the Elector's last contact with the coordination
	// service (ZooKeeper) is older than this, the master stops acting and
	// reporting as leader at once, without waiting for the Elector to revoke.
	// It also turns on pause detection: after the process was stopped for
	// more than max(100ms, SelfFenceAfter/4) (SIGSTOP, a stalled VM), the
	// master neither reports ALIVE nor sends anything until Elector.Confirm
	// has proved its term, and steps down if it cannot (see pause.go).
	// 0 disables both (NONE, FILESYSTEM).
	SelfFenceAfter time.Duration

	// AppTimeout is how long an application may go without an AppHeartbeat
	// (or another request from its driver) before the master removes it as
	// FINISHED, killing its executors and freeing its cores: its driver
	// died without unregistering (SIGKILL, a crash). Drivers heartbeat every
	// 5s (client.Config.HeartbeatInterval), so the default, 30s, tolerates
	// five lost heartbeats and a loaded machine. A new term gives every
	// application a fresh AppTimeout. 0 = the default; negative = never.
	// Independently, an application whose driver refuses two pushes in a
	// row, with no heartbeat in between, is removed at once (Spark removes
	// an application when its driver's connection drops).
	AppTimeout time.Duration

	// RPCTimeout bounds every message the master sends (default 10s).
	RPCTimeout time.Duration
	// Now is the clock; nil = time.Now. Tests inject a fake.
	Now func() time.Time
}

// DefaultAppTimeout is Config.AppTimeout's default: 6 of the drivers'
// 5-second heartbeats.
const DefaultAppTimeout = 30 * time.Second

// DefaultConfig returns Spark's defaults (ports 7077/8080/6066).
func DefaultConfig() Config {
	return Config{
		Port: 7077, WebUIPort: 8080, RESTEnabled: true, RESTPort: 6066, MaxPortRetries: protocol.DefaultMaxPortRetries,
		WorkerTimeout: 60 * time.Second, DeadWorkerPersistence: 15, SpreadOut: true,
		MaxExecutorRetries: 10, RetainedApplications: 200, RetainedDrivers: 200,
		UIKillEnabled: true, RPCTimeout: 10 * time.Second, AppTimeout: DefaultAppTimeout,
	}
}

// validate checks the configuration and fills derived defaults.
func (c *Config) validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: port %d out of range", ErrConfig, c.Port)
	case c.WebUIPort < -1 || c.WebUIPort > 65535:
		return fmt.Errorf("%w: web UI port %d out of range", ErrConfig, c.WebUIPort)
	case c.RESTEnabled && (c.RESTPort < 0 || c.RESTPort > 65535):
		return fmt.Errorf("%w: spark.master.rest.port %d out of range", ErrConfig, c.RESTPort)
	case c.WorkerTimeout <= 0:
		return fmt.Errorf("%w: spark.worker.timeout must be positive, got %s", ErrConfig, c.WorkerTimeout)
	case c.RecoveryTimeout < 0:
		return fmt.Errorf("%w: spark.deploy.recoveryTimeout must not be negative, got %s", ErrConfig, c.RecoveryTimeout)
	case c.DeadWorkerPersistence < 0:
		return fmt.Errorf("%w: spark.dead.worker.persistence must not be negative, got %d", ErrConfig, c.DeadWorkerPersistence)
	case c.DefaultCores < 0:
		return fmt.Errorf("%w: spark.deploy.defaultCores must not be negative, got %d", ErrConfig, c.DefaultCores)
	case c.MaxExecutorRetries < -1:
		return fmt.Errorf("%w: spark.deploy.maxExecutorRetries must be -1 or more, got %d", ErrConfig, c.MaxExecutorRetries)
	case c.RetainedApplications < 0 || c.RetainedDrivers < 0:
		return fmt.Errorf("%w: spark.deploy.retainedApplications/retainedDrivers must not be negative", ErrConfig)
	}
	if c.RecoveryTimeout == 0 {
		c.RecoveryTimeout = c.WorkerTimeout
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = 10 * time.Second
	}
	if c.AppTimeout == 0 {
		c.AppTimeout = DefaultAppTimeout
	}
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = DefaultMaxWorkers
	}
	if c.MaxApps <= 0 {
		c.MaxApps = DefaultMaxApps
	}
	if c.MaxDrivers <= 0 {
		c.MaxDrivers = DefaultMaxDrivers
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Master is a sparkd master daemon. Create it with New, start it with Run.
type Master struct {
	cfg     Config
	elector recovery.Elector
	store   recovery.Store
	log     *logrus.Entry
	client  *protocol.Client
	creds   *protocol.Credentials // nil = authentication off

	rpcLn, uiLn, restLn net.Listener
	id                  string
	url                 string // spark://host:port
	webUIURL            string // http://host:port
	restURL             string // spark://host:port or ""
	tick                time.Duration

	closeOnce sync.Once
	closed    chan struct{}
	running   sync.Mutex // held by Run

	// bg tracks every goroutine the master starts, so Run leaves none.
	bg sync.WaitGroup

	mu sync.Mutex // guards everything below
	st *state     // registries; reset on every change of term
	// state machine
	status protocol.MasterState
	term   *term // nil unless leader
	// lastTerm is the most recent term, current or ended: OnRevoked and Run
	// wait for its goroutines.
	lastTerm    *term
	leader      recovery.LeaderInfo
	leaderKnown bool
	noLeaderAt  time.Time // when this master last saw "no leader" (for failover duration)
	ha          HAStats

	// pause is the zombie-leader guard; it has its own lock (see pause.go).
	pause pauseGuard

	prom *promMetrics
}

// New validates cfg and binds the RPC, web UI and (if enabled) REST
// listeners. The spark:// URL advertises PublicDNS (or Host, or the
// hostname) and the real bound port.
func New(cfg Config, elector recovery.Elector, store recovery.Store, log *logrus.Entry) (*Master, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if elector == nil || store == nil {
		return nil, fmt.Errorf("%w: elector and store are required", ErrConfig)
	}
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	m := &Master{
		cfg: cfg, elector: elector, store: store, log: log,
		creds:  protocol.ClusterCredentials(cfg.AuthSecret, protocol.Identity{Role: protocol.RoleMaster}),
		closed: make(chan struct{}),
		status: protocol.MasterStandby,
		st:     newState(0),
	}
	m.client = protocol.NewRoleClient(cfg.RPCTimeout, m.creds)
	// A master talks to every peer of the fleet: it keeps few idle
	// connections, briefly, so that its fds follow the calls in flight
	// (at most outboxSenders fast ones), not the number of peers.
	if tr, ok := m.client.HTTP.Transport.(*http.Transport); ok {
		tr.MaxIdleConns = 2 * outboxSenders
		tr.MaxIdleConnsPerHost = 1
		tr.IdleConnTimeout = rpcIdleTimeout
	}
	cfg.RPCTLS.Apply(m.client)
	m.ha.ZKEnabled = cfg.ZKEnabled
	m.prom = newPromMetrics(m)
	m.tick = tickInterval(cfg.WorkerTimeout, cfg.RecoveryTimeout)
	m.pause.every, m.pause.threshold = defaultPauseEvery, pauseThreshold(cfg.SelfFenceAfter)
	var err error
	if m.rpcLn, err = protocol.Listen(cfg.Host, cfg.Port, cfg.MaxPortRetries, protocol.ServiceMaster, m.log); err != nil {
		return nil, fmt.Errorf("master: bind RPC port %d: %w", cfg.Port, err)
	}
	if cfg.WebUIPort >= 0 {
		if m.uiLn, err = protocol.Listen(cfg.Host, cfg.WebUIPort, cfg.MaxPortRetries, protocol.ServiceMasterUI, m.log); err != nil {
			m.rpcLn.Close()
			return nil, fmt.Errorf("master: bind web UI port %d: %w", cfg.WebUIPort, err)
		}
	}
	if cfg.RESTEnabled {
		if m.restLn, err = protocol.Listen(cfg.Host, cfg.RESTPort, cfg.MaxPortRetries, protocol.ServiceREST, m.log); err != nil {
			m.rpcLn.Close()
			if m.uiLn != nil {
				m.uiLn.Close()
			}
			return nil, fmt.Errorf("master: bind REST port %d (spark.master.rest.port): %w", cfg.RESTPort, err)
		}
	}
	m.rpcLn, m.uiLn, m.restLn = cfg.RPCTLS.Listener(m.rpcLn), cfg.UITLS.Listener(m.uiLn), cfg.RESTTLS.Listener(m.restLn)
	host := advertisedHost(cfg)
	m.url = protocol.SparkURL(net.JoinHostPort(host, strconv.Itoa(portOf(m.rpcLn))))
	if m.uiLn != nil {
		uiHost := host
		if cfg.PublicDNS != "" {
			uiHost = cfg.PublicDNS // as in Spark: only the UI links use SPARK_PUBLIC_DNS
		}
		m.webUIURL = cfg.UITLS.Scheme() + "://" + net.JoinHostPort(uiHost, strconv.Itoa(portOf(m.uiLn)))
	}
	if m.restLn != nil {
		m.restURL = protocol.SparkURL(net.JoinHostPort(host, strconv.Itoa(portOf(m.restLn))))
	}
	m.id = fmt.Sprintf("master-%s-%s-%d", cfg.Now().Format(idTime), host, portOf(m.rpcLn))
	m.log = m.log.WithField("master", m.url)
	return m, nil
}

// tickInterval is how often the leader checks worker timeouts and the
// recovery deadline: ten times per the shorter timeout, between 10ms and 1s.
// (Spark checks once per timeout, so noticing a dead worker takes up to two
// timeouts.)
func tickInterval(workerTimeout, recoveryTimeout time.Duration) time.Duration {
	d := min(workerTimeout, recoveryTimeout) / 10
	return max(10*time.Millisecond, min(d, time.Second))
}

// advertisedHost is the host in the master's spark:// and REST URLs and its
// id: the bind host, or the machine's name when bound to every address.
// SPARK_PUBLIC_DNS is not used here: it names the host for browsers (UI
// links), and two masters given the same public name (a proxy, a NAT,
// "localhost" in docker-compose) must still advertise distinct RPC URLs.
func advertisedHost(cfg Config) string {
	if cfg.Host != "" && cfg.Host != "0.0.0.0" && cfg.Host != "::" {
		return cfg.Host
	}
	if h, err := osHostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

func portOf(ln net.Listener) int {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Addr is the RPC listener's bound address (host:port).
func (m *Master) Addr() string { return m.rpcLn.Addr().String() }

// URL is the advertised spark://host:port URL.
func (m *Master) URL() string { return m.url }

// ID is this master's candidate id.
func (m *Master) ID() string { return m.id }

// WebUIAddr is the web UI's bound address, or "" without a web UI.
func (m *Master) WebUIAddr() string {
	if m.uiLn == nil {
		return ""
	}
	return m.uiLn.Addr().String()
}

// RESTAddr is the REST server's bound address, or "" when disabled.
func (m *Master) RESTAddr() string {
	if m.restLn == nil {
		return ""
	}
	return m.restLn.Addr().String()
}

// Close releases the listeners. It is idempotent and safe to call while Run
// is running (Run then returns).
func (m *Master) Close() error {
	m.closeOnce.Do(func() {
		close(m.closed)
		m.rpcLn.Close()
		if m.uiLn != nil {
			m.uiLn.Close()
		}
		if m.restLn != nil {
			m.restLn.Close()
		}
	})
	return nil
}

// Resign gives up leadership at once (used on SIGTERM) so that a standby
// takes office without waiting for a session timeout.
func (m *Master) Resign(ctx context.Context) error {
	m.log.Info("Resigning leadership for a fast hand-off")
	return m.elector.Resign(ctx)
}

// Handler returns the RPC handler (what the spark:// listener serves).
func (m *Master) Handler() http.Handler {
	return protocol.AuthenticateRoles(m.creds, protocol.VerifyOptions{Hosts: []string{strings.TrimPrefix(m.url, "spark://")}}, nil, m.router())
}

// Run serves the listeners and campaigns for leadership until ctx is done
// or Close is called. It returns nil then, or the Elector's fatal error.
// It leaves no goroutine behind.
func (m *Master) Run(ctx context.Context) error {
	if !m.running.TryLock() {
		return errors.New("master: Run called twice")
	}
	defer m.running.Unlock()
	select {
	case <-m.closed:
		return ErrClosed
	default:
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m.log.Infof("Starting Spark master at %s", m.url)
	m.log.Infof("Running sparkd (Spark standalone compatible); web UI at %s", m.webUIURL)
	// Peers' keep-alive connections to the RPC port close after
	// rpcIdleTimeout: workers heartbeat every spark.worker.timeout/4 and
	// drivers every few seconds, so an idle fleet holds a few connections,
	// not one per peer.
	servers := []*http.Server{m.serve(m.rpcLn, m.Handler(), rpcIdleTimeout)}
	if m.uiLn != nil {
		m.log.Infof("Bound MasterWebUI to %s, and started at %s", m.uiLn.Addr(), m.webUIURL)
		servers = append(servers, m.serve(m.uiLn, NewWebUI(m, UIOptions{KillEnabled: m.cfg.UIKillEnabled, Logger: m.log, Metrics: m.MetricsHandler(), JWS: m.cfg.UIJWS}), 0))
	}
	if m.restLn != nil {
		m.log.Infof("Started REST server for submitting applications on %s", m.restURL)
		if m.cfg.RESTJWS == nil {
			m.log.Warnf("The REST submission server has no authentication: anyone who reaches %s can run a driver; set spark.master.rest.filters=%s", m.restURL, protocol.JWSFilterClass)
		}
		servers = append(servers, m.serve(m.restLn, NewRESTServer(m, UIOptions{KillEnabled: m.cfg.UIKillEnabled, Logger: m.log, JWS: m.cfg.RESTJWS}), 0))
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-m.closed:
			cancel()
		}
	}()

	m.runPauseDetector(ctx)
	me := recovery.Candidate{ID: m.id, RPCURL: m.url, WebUIURL: m.webUIURL, RESTURL: m.restURL}
	errc := make(chan error, 1)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		errc <- m.elector.Run(ctx, me, recovery.Callbacks{
			OnElected:       m.onElected,
			OnRevoked:       m.onRevoked,
			OnLeaderChanged: m.onLeaderChanged,
		})
	}()
	var runErr error
	select {
	case <-ctx.Done():
		runErr = <-errc
	case runErr = <-errc:
		cancel()
	}
	m.stepDown(nil, errShutdown, false)
	m.mu.Lock()
	last := m.lastTerm
	m.mu.Unlock()
	if last != nil {
		last.wait()
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			s.Close()
		}
	}
	m.bg.Wait()
	m.client.HTTP.CloseIdleConnections()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("master: election: %w", runErr)
	}
	return nil
}

// rpcIdleTimeout closes the master's idle RPC connections, in and out.
const rpcIdleTimeout = 2 * time.Second

// serve serves h on ln with sparkd's server limits; idle > 0 replaces the
// keep-alive idle timeout.
func (m *Master) serve(ln net.Listener, h http.Handler, idle time.Duration) *http.Server {
	s := protocol.NewServer(h)
	if idle > 0 {
		s.IdleTimeout = idle
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			m.log.WithError(err).Error("listener stopped")
		}
	}()
	return s
}

// router maps the RPC paths.
func (m *Master) router() *mux.Router {
	r := mux.NewRouter()
	post := func(path string, rl rule, h protocol.HandlerFunc) {
		r.Handle(path, m.guard(rl, protocol.Handle(h))).Methods(http.MethodPost)
	}
	get := func(path string, rl rule, h protocol.HandlerFunc) {
		r.Handle(path, m.guard(rl, protocol.Handle(h))).Methods(http.MethodGet)
	}
	get(protocol.PathLeader, anyRole, m.handleLeader)
	post(protocol.PathRegisterWorker, ownWorker, m.handleRegisterWorker)
	post(protocol.PathWorkerHeartbeat, ownWorker, m.handleHeartbeat)
	post(protocol.PathExecutorState, ownWorker, m.handleExecutorState)
	post(protocol.PathDriverState, ownWorker, m.handleDriverState)
	post(protocol.PathWorkerLatestState, ownWorker, m.handleWorkerLatestState)
	post(protocol.PathWorkerDecommission, ownWorker, m.handleWorkerDecommission)
	post(protocol.PathWorkerUnregister, ownWorker, m.handleWorkerUnregister)
	post(protocol.PathRegisterApp, ownApp, m.handleRegisterApp)
	post(protocol.PathUnregisterApp, ownApp, m.handleUnregisterApp)
	post(protocol.PathKillApp, ownApp, m.handleKillApp)
	post(protocol.PathRequestExecutors, ownApp, m.handleRequestExecutors)
	post(protocol.PathAppHeartbeat, ownApp, m.handleAppHeartbeat)
	post(protocol.PathSubmitDriver, driverSubmit, m.handleSubmitDriver)
	get(protocol.PathDriverStatus, driverSubmit, m.handleDriverStatus)
	post(protocol.PathKillDriver, masterOnly, m.handleKillDriver)
	ui := NewWebUI(m, UIOptions{KillEnabled: m.cfg.UIKillEnabled, Logger: m.log})
	r.Handle(protocol.PathMasterStateJSON, m.guard(anyRole, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req2 := req.Clone(req.Context())
		req2.URL.Path = "/json"
		ui.ServeHTTP(w, req2)
	}))).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		protocol.WriteError(w, http.StatusNotFound, "no such endpoint: "+req.Method+" "+req.URL.Path, nil)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		protocol.WriteError(w, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed on "+req.URL.Path, nil)
	})
	return r
}
