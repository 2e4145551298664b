// Package worker is sparkd's worker daemon, Spark standalone's Worker made
// safe against failover races. It registers with every configured master at
// once (following a standby's leader hint), heartbeats to the current leader
// only, obeys master commands that carry an epoch at least as high as the
// highest it has seen (lower ones get HTTP 409), runs executor and driver
// processes in their own process groups under the work dir, reports every
// state change until a master acknowledges it, and serves a web UI with
// Spark's labels, /json, log pages and Prometheus metrics.
//
// Guarantees: a master failover never kills running executors or drivers; a
// state change is re-sent until acknowledged (also across master changes);
// timers never stack across re-registrations (one goroutine owns them).
// Non-guarantees: reports queued when the worker itself stops are sent once,
// best effort.
//
// worker imports only protocol from the project.
package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
)

// Worker is one worker daemon. Create it with New, then call Run.
type Worker struct {
	cfg   Config
	log   *logrus.Entry
	clock Clock
	jit   func() float64 // jitter source in [0, 1)

	id       string
	host     string // advertised host of the command listener
	port     int    // bound port of the command listener
	url      string // http://host:port of the command listener
	webUIURL string

	rpcLn, uiLn   net.Listener
	rpcSrv, uiSrv *http.Server
	creds         *protocol.Credentials // nil = authentication off
	client        *protocol.Client      // heartbeats, reports, state sync
	regClient     *protocol.Client      // registration: no keep-alive, so DNS is re-resolved every attempt

	guard protocol.EpochGuard

	reconnectCh     chan struct{} // master asked us to re-register (cap 1)
	masterChangedCh chan struct{} // a MasterChanged attached us to a master (cap 1)
	reportWake      chan struct{} // new report queued or master changed (cap 1)

	mu              sync.Mutex
	registered      bool
	masterAddr      string // where heartbeats and reports go ("" = nowhere yet)
	masterURL       string // spark://host:port as the master names itself
	masterWebUI     string
	decommissioned  bool
	stopping        bool
	drained         chan struct{} // closed when decommissioned with no work left (see checkDrainedLocked)
	drainOnce       sync.Once
	executors       map[string]*executor
	finishedExecs   []*executor
	drivers         map[string]*driver
	finishedDrivers []*driver
	finishedApps    map[string]time.Time
	// finishedDirs lists, per application, the directories of its finished
	// executors, oldest first (see retireExecutorLocked).
	finishedDirs map[string][]string
	// removals counts directory removals started by retireExecutorLocked
	// and not yet done (tests wait for them).
	removals sync.WaitGroup
	reports  []report // unacknowledged state changes, oldest first

	procs sync.WaitGroup // process supervisors and killers

	started   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{} // closed when Run returns
}

// New validates cfg, creates the work dir and binds the command listener
// (cfg.Host:cfg.Port) and the web UI listener (cfg.WebUIPort). Port 0 binds a
// random port; ID, URL and WebUIURL report the real ones.
func New(cfg Config, log *logrus.Entry) (*Worker, error) {
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	return newWorker(cfg, log, clock)
}

func newWorker(cfg Config, log *logrus.Entry, clock Clock) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(os.Stderr)
		log = logrus.NewEntry(l)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: create work dir %s: %w", ErrConfig, cfg.WorkDir, err)
	}
	rpcLn, err := protocol.Listen(cfg.Host, cfg.Port, cfg.MaxPortRetries, protocol.ServiceWorker, log)
	if err != nil {
		return nil, fmt.Errorf("worker: bind command listener %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	var uiLn net.Listener
	webUIURL := ""
	if !cfg.NoWebUI {
		uiLn, err = protocol.Listen(cfg.Host, cfg.WebUIPort, cfg.MaxPortRetries, protocol.ServiceWorkerUI, log)
		if err != nil {
			rpcLn.Close()
			return nil, fmt.Errorf("worker: bind web UI listener %s:%d: %w", cfg.Host, cfg.WebUIPort, err)
		}
		uiHost := cfg.Host
		if cfg.PublicDNS != "" {
			uiHost = cfg.PublicDNS
		}
		webUIURL = cfg.UITLS.Scheme() + "://" + net.JoinHostPort(uiHost, strconv.Itoa(uiLn.Addr().(*net.TCPAddr).Port))
		uiLn = cfg.UITLS.Listener(uiLn)
	}
	port := rpcLn.Addr().(*net.TCPAddr).Port
	w := &Worker{
		cfg:             cfg,
		log:             log,
		clock:           clock,
		jit:             rand.Float64,
		host:            cfg.Host,
		port:            port,
		id:              fmt.Sprintf("worker-%s-%s-%d", clock.Now().Format("20060102150405"), cfg.Host, port),
		url:             cfg.RPCTLS.Scheme() + "://" + net.JoinHostPort(cfg.Host, strconv.Itoa(port)),
		webUIURL:        webUIURL,
		rpcLn:           cfg.RPCTLS.Listener(rpcLn),
		uiLn:            uiLn,
		reconnectCh:     make(chan struct{}, 1),
		masterChangedCh: make(chan struct{}, 1),
		reportWake:      make(chan struct{}, 1),
		executors:       map[string]*executor{},
		drivers:         map[string]*driver{},
		finishedApps:    map[string]time.Time{},
		finishedDirs:    map[string][]string{},
		closed:          make(chan struct{}),
		drained:         make(chan struct{}),
		done:            make(chan struct{}),
	}
	w.log = w.log.WithField("worker", w.id)
	w.creds = protocol.ClusterCredentials(cfg.AuthSecret, protocol.Identity{Role: protocol.RoleWorker, Principal: w.id})
	w.client = protocol.NewRoleClient(cfg.RequestTimeout, w.creds)
	w.regClient = newRegistrationClient(cfg.RequestTimeout, w.creds)
	cfg.RPCTLS.Apply(w.client)
	cfg.RPCTLS.Apply(w.regClient)
	w.rpcSrv = protocol.NewServer(protocol.AuthenticateRoles(w.creds, protocol.VerifyOptions{Hosts: []string{net.JoinHostPort(cfg.Host, strconv.Itoa(port))}},
		protocol.AllowRoles(protocol.RoleMaster), w.rpcHandler()))
	w.uiSrv = protocol.NewServer(w.uiHandler())
	return w, nil
}

// newRegistrationClient returns a client without connection reuse: every
// registration attempt dials, so a master's DNS name is resolved afresh.
func newRegistrationClient(timeout time.Duration, creds *protocol.Credentials) *protocol.Client {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		DisableKeepAlives: true,
	}
	return &protocol.Client{HTTP: &http.Client{Timeout: timeout, Transport: tr}, Creds: creds}
}

// ID is the worker id, worker-<yyyyMMddHHmmss>-<host>-<port>.
func (w *Worker) ID() string { return w.id }

// URL is the http:// address of the command listener masters push to.
func (w *Worker) URL() string { return w.url }

// WebUIURL is the http:// address of the web UI.
func (w *Worker) WebUIURL() string { return w.webUIURL }

// Master returns the URL of the master the worker currently follows ("" when
// it has none) and whether it is registered.
func (w *Worker) Master() (masterURL string, registered bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.masterURL, w.registered
}

// Epoch returns the highest master epoch seen.
func (w *Worker) Epoch() int64 {
	e, _ := w.guard.Current()
	return e
}

// StaleEpochRejections counts commands refused because of a lower epoch.
func (w *Worker) StaleEpochRejections() uint64 { return w.guard.Rejected() }

// Run serves the listeners, registers with the masters and supervises the
// work until ctx is cancelled, Close is called, or a decommissioned worker's
// last executor and driver have finished; then it kills every
// executor and driver (SIGTERM, SIGKILL after the grace period), reports
// their final states, tells the master it is leaving, and returns nil. It
// returns ErrGaveUp (after the same clean-up) if no master accepted it.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	defer close(w.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var bg sync.WaitGroup
	bg.Go(func() {
		select {
		case <-w.closed:
			cancel()
		case <-w.drained:
			w.log.Info("Decommissioned worker has no executors or drivers left; exiting")
			cancel()
		case <-ctx.Done():
		}
	})
	serveErr := make(chan error, 2)
	bg.Go(func() {
		if err := w.rpcSrv.Serve(w.rpcLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("worker: command listener: %w", err)
			cancel()
		}
	})
	if w.uiLn != nil {
		bg.Go(func() {
			if err := w.uiSrv.Serve(w.uiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("worker: web UI: %w", err)
				cancel()
			}
		})
	}
	w.log.WithFields(logrus.Fields{"url": w.url, "webUi": w.webUIURL, "cores": w.cfg.Cores, "memoryMb": w.cfg.MemoryMB,
		"workDir": w.cfg.WorkDir}).Infof("Starting Spark worker %s with %d cores, %s RAM", net.JoinHostPort(w.host, strconv.Itoa(w.port)), w.cfg.Cores, protocol.MegabytesString(w.cfg.MemoryMB))

	var loopErr error
	bg.Go(func() {
		if err := w.connLoop(ctx); err != nil {
			loopErr = err
			cancel()
		}
	})
	bg.Go(func() { w.reportLoop(ctx) })
	if w.cfg.CleanupEnabled {
		bg.Go(func() { w.cleanupLoop(ctx) })
	}

	<-ctx.Done()
	w.shutdown()
	bg.Wait()
	if loopErr != nil {
		return loopErr
	}
	select {
	case err := <-serveErr:
		return err
	default:
		return nil
	}
}

// Close stops the worker as cancelling Run's context does, and waits for Run
// to return. It is idempotent; on a worker whose Run was never called it
// releases the listeners.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() { close(w.closed) })
	if w.started.Load() {
		<-w.done
		return nil
	}
	w.rpcLn.Close()
	if w.uiLn != nil {
		w.uiLn.Close()
	}
	return nil
}

// shutdown kills all work, reports it, unregisters and stops the servers.
func (w *Worker) shutdown() {
	w.mu.Lock()
	w.stopping = true
	var kills []func()
	for _, e := range w.executors {
		kills = append(kills, e.proc.kill)
	}
	for _, d := range w.drivers {
		if !d.abortLocked() { // a driver waiting to be re-launched has no process
			kills = append(kills, d.proc.kill)
		}
	}
	w.mu.Unlock()
	if len(kills) > 0 {
		w.log.Infof("Killing %d executors and drivers before shutting down", len(kills))
	}
	for _, k := range kills {
		w.procs.Go(k)
	}
	w.procs.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.RequestTimeout)
	defer cancel()
	w.flushReports(ctx)
	if addr, ok := w.currentMaster(); ok {
		err := w.client.Call(ctx, http.MethodPost, addr, w.masterPath(protocol.PathWorkerUnregister),
			protocol.WorkerDecommissioning{WorkerID: w.id}, nil)
		if err != nil {
			w.log.WithError(err).Warn("Could not tell the master this worker is shutting down")
		} else {
			w.log.Infof("Unregistered from master %s", addr)
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = w.rpcSrv.Shutdown(sctx)
	_ = w.uiSrv.Shutdown(sctx)
	w.client.HTTP.CloseIdleConnections()
}

// currentMaster returns the address of the master to talk to, if registered.
func (w *Worker) currentMaster() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.masterAddr, w.registered && w.masterAddr != ""
}

func (w *Worker) masterPath(p string) string {
	return strings.Replace(p, "{id}", url.PathEscape(w.id), 1)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
