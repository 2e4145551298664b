// Package fleetsim simulates a sparkd fleet in one process, for measuring
// masters at scale: N workers built with the real worker package (its own
// registration with every master, leader hints, jittered heartbeats,
// state-change reports, epoch guard and MasterChanged answers), M
// applications built with the real client package (registration, AppHeartbeat,
// MasterChanged acknowledgements), and the executors the masters schedule
// on those workers.
//
// What is simulated: executor processes. Each worker gets a Launcher whose
// processes live in memory and run until they are killed (SIGTERM ends them
// at once) or, when Config.ExecutorLifetime is set, until that time has
// passed; their launches, state changes, kills and reports still go through
// the worker's own code. Everything else is real: every worker has its own
// command listener (127.0.0.1, a random port) that the masters push to, its
// own HTTP clients, timers and goroutines; every application has its own
// push listener.
//
// Not simulated: the workers' web UIs (worker.Config.NoWebUI: 10,000 of
// them would take a third of the machine's ephemeral ports), separate hosts (all peers share one loopback interface, one
// process's scheduler, GC and file limit, and the machine's ephemeral port
// range), drivers in cluster mode, executors that talk to their drivers, and
// work-dir cleanup (disabled).
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/worker"
)

// Config shapes a fleet. Zero values take the defaults noted.
type Config struct {
	// Masters are the master RPC addresses, e.g. "127.0.0.1:7077" or
	// "spark://h1:7077"; at least one.
	Masters []string
	// Workers is N (at least 1). Apps is M (default N/2, 0 = none when
	// NoApps is set). Executors is the total the applications ask for
	// (default 3N/4, at least one per application): each application
	// gets executors of one core, spread by the masters' scheduler.
	Workers   int
	Apps      int
	NoApps    bool
	Executors int
	// WorkerCores and WorkerMemoryMB are what each worker offers (default
	// 2 cores, 2048 MB); ExecutorMemoryMB is each executor's (default 64).
	WorkerCores      int
	WorkerMemoryMB   int
	ExecutorMemoryMB int
	// WorkerTimeout is spark.worker.timeout, as the masters have it
	// (default 60 s, Spark's; heartbeats every quarter, jittered).
	WorkerTimeout time.Duration
	// AppHeartbeat is the client's AppHeartbeat period (default: the
	// client package's).
	AppHeartbeat time.Duration
	// ExecutorLifetime, when positive, ends each executor with exit code 0
	// after that long (default: executors run until killed).
	ExecutorLifetime time.Duration
	// StartRate, when positive, starts the workers at that many per second
	// (and each application with its share of them) instead of all at
	// once: a fleet that boots over time, not in one instant.
	StartRate float64
	// WorkDir is the root of the workers' work dirs (nothing is written
	// there by the simulated executors). Default: a new temp dir.
	WorkDir string
	// Log receives the fleet's own lines and every warning and error of
	// its workers and applications (default: stderr).
	Log *logrus.Entry
}

// Fleet is a running simulated fleet. Create it with New, then Start.
type Fleet struct {
	cfg      Config
	log      *logrus.Entry
	launcher *launcher
	workers  []*simWorker
	byID     map[string]*simWorker
	apps     []*simApp
	ownDir   string

	counts counters

	mu      sync.Mutex
	started time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

type simWorker struct {
	w *worker.Worker

	mu     sync.Mutex
	url    string    // master it last attached to, as the worker logged it
	at     time.Time // when
	gaveUp bool
}

type simApp struct {
	c *client.Client

	mu      sync.Mutex
	url     string    // master it last attached to (registration or MasterChanged)
	at      time.Time // when
	regErr  error
	started bool
}

// counters are fed by the log hook of every worker and application.
type counters struct {
	mu              sync.Mutex
	regRequests     map[string]int64 // worker registration requests sent, by master host:port
	duplicates      int64            // "Duplicate registration" answers
	retries         int64            // registration rounds after the first
	heartbeatLosses int64            // heartbeats that failed (worker went back to registering)
	appDisconnects  int64
	appReregistered int64
}

// New validates cfg and creates every worker (binding its two listeners)
// and every application client (binding its push listener). It contacts
// no master; Start does.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, log: cfg.Log, byID: map[string]*simWorker{}, launcher: newLauncher(cfg.ExecutorLifetime),
		counts: counters{regRequests: map[string]int64{}}}
	if f.cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "fleetsim-")
		if err != nil {
			return nil, fmt.Errorf("fleetsim: %w", err)
		}
		f.ownDir, f.cfg.WorkDir = dir, dir
	}
	fail := func(err error) (*Fleet, error) {
		f.release()
		return nil, err
	}
	hook := &countHook{f: f}
	for i := 0; i < cfg.Workers; i++ {
		wc := worker.Defaults()
		wc.Masters = cfg.Masters
		wc.Host = "127.0.0.1"
		wc.Port, wc.WebUIPort, wc.MaxPortRetries = 0, 0, 0
		wc.NoWebUI = true // thousands of UIs would take thousands of the machine's ports
		wc.Cores, wc.MemoryMB = cfg.WorkerCores, cfg.WorkerMemoryMB
		wc.WorkDir = f.cfg.WorkDir + "/w" + strconv.Itoa(i)
		wc.Timeout = cfg.WorkerTimeout
		wc.CleanupEnabled = false
		wc.Launcher = f.launcher
		w, err := worker.New(wc, peerLogger(cfg.Log, hook))
		if err != nil {
			return fail(fmt.Errorf("fleetsim: worker %d of %d: %w", i+1, cfg.Workers, err))
		}
		sw := &simWorker{w: w}
		f.workers = append(f.workers, sw)
		f.byID[w.ID()] = sw
	}
	per := executorsPerApp(cfg.Apps, cfg.Executors)
	for i := 0; i < cfg.Apps; i++ {
		sa := &simApp{}
		cc := client.Config{
			Masters: cfg.Masters,
			App: protocol.AppDescription{Name: "fleetsim-" + strconv.Itoa(i), User: "fleetsim",
				Command: []string{"fleetsim-executor", "{{APP_ID}}", "{{EXECUTOR_ID}}"}, ExecutorCores: 1,
				ExecutorMemMB: cfg.ExecutorMemoryMB, MaxCores: per[i]},
			ListenAddr:        "127.0.0.1:0",
			MaxPortRetries:    -1,
			HeartbeatInterval: cfg.AppHeartbeat,
			RegisterTimeout:   10 * time.Minute,
			Logger:            peerLogger(cfg.Log, hook),
		}
		c, err := client.New(cc, sa.listen(f))
		if err != nil {
			return fail(fmt.Errorf("fleetsim: application %d of %d: %w", i+1, cfg.Apps, err))
		}
		sa.c = c
		f.apps = append(f.apps, sa)
	}
	return f, nil
}

func (c *Config) fill() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("fleetsim: invalid config: "+format, a...)
	}
	if len(c.Masters) == 0 {
		return bad("no master given")
	}
	if c.Workers < 1 {
		return bad("workers %d: want at least 1", c.Workers)
	}
	if c.Apps < 0 || c.Executors < 0 {
		return bad("apps %d, executors %d: must not be negative", c.Apps, c.Executors)
	}
	if c.Apps == 0 && !c.NoApps {
		c.Apps = c.Workers / 2
	}
	if c.NoApps {
		c.Apps, c.Executors = 0, 0
	} else {
		if c.Executors == 0 {
			c.Executors = 3 * c.Workers / 4
		}
		c.Executors = max(c.Executors, c.Apps)
	}
	if c.WorkerCores == 0 {
		c.WorkerCores = 2
	}
	if c.WorkerMemoryMB == 0 {
		c.WorkerMemoryMB = 2048
	}
	if c.ExecutorMemoryMB == 0 {
		c.ExecutorMemoryMB = 64
	}
	if c.WorkerCores < 1 || c.WorkerMemoryMB < 1 || c.ExecutorMemoryMB < 1 {
		return bad("worker cores %d, worker memory %d MB, executor memory %d MB: must be positive",
			c.WorkerCores, c.WorkerMemoryMB, c.ExecutorMemoryMB)
	}
	if c.Apps > 0 && c.Executors > c.Workers*c.WorkerCores {
		return bad("%d executors of one core do not fit on %d workers of %d cores", c.Executors, c.Workers, c.WorkerCores)
	}
	if c.WorkerTimeout == 0 {
		c.WorkerTimeout = 60 * time.Second
	}
	if c.WorkerTimeout < 100*time.Millisecond {
		return bad("worker timeout %s is too short", c.WorkerTimeout)
	}
	if c.StartRate < 0 {
		return bad("start rate %v: must not be negative", c.StartRate)
	}
	if c.AppHeartbeat < 0 || c.ExecutorLifetime < 0 {
		return bad("app heartbeat %s, executor lifetime %s: must not be negative", c.AppHeartbeat, c.ExecutorLifetime)
	}
	if c.Log == nil {
		l := logrus.New()
		l.SetOutput(os.Stderr)
		c.Log = logrus.NewEntry(l)
	}
	return nil
}

// executorsPerApp splits total executors over apps as evenly as possible
// (each at least one).
func executorsPerApp(apps, total int) []int {
	out := make([]int, apps)
	for i := range out {
		out[i] = total / apps
		if i < total%apps {
			out[i]++
		}
	}
	return out
}

// Start starts every worker at once (each registers with every master,
// as a fleet started together does) and registers every application, in
// the background. It returns at once; Status tells how far it got.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.cancel != nil {
		return errors.New("fleetsim: Start called twice or after Close")
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.started = time.Now()
	// pace waits until the i-th of n peers is due (at once without a
	// StartRate); false when the fleet is closing.
	pace := func(i, n int) bool {
		if f.cfg.StartRate <= 0 || n == 0 {
			return true
		}
		due := f.started.Add(time.Duration(float64(i) * float64(len(f.workers)) / float64(n) / f.cfg.StartRate * float64(time.Second)))
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for i, sw := range f.workers {
		f.wg.Go(func() {
			if !pace(i, len(f.workers)) {
				return
			}
			if err := sw.w.Run(ctx); err != nil {
				f.log.WithError(err).Warnf("worker %s stopped", sw.w.ID())
				sw.mu.Lock()
				sw.gaveUp = true
				sw.mu.Unlock()
			}
		})
	}
	for i, sa := range f.apps {
		f.wg.Go(func() {
			if !pace(i, len(f.apps)) {
				return
			}
			_, err := sa.c.Register(ctx)
			sa.mu.Lock()
			sa.regErr, sa.started = err, true
			sa.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				f.log.WithError(err).Warnf("application %s did not register", sa.c.URL())
			}
		})
	}
	return nil
}

// Close stops every worker (which kills its simulated executors and tells
// the master it is leaving) and closes every application, waits for all of
// them, and removes the work dir it created. Idempotent.
func (f *Fleet) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.release()
	f.wg.Wait()
}

// release closes what New created (Close on a worker that never ran frees
// its listeners; on a running one it waits for Run).
func (f *Fleet) release() {
	var wg sync.WaitGroup
	for _, sw := range f.workers {
		wg.Go(func() { _ = sw.w.Close() })
	}
	for _, sa := range f.apps {
		if sa.c == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = sa.c.Close(ctx)
		})
	}
	wg.Wait()
	if f.ownDir != "" {
		_ = os.RemoveAll(f.ownDir)
	}
}

// Status is a snapshot of the fleet, for the benchmark.
type Status struct {
	Started   time.Time `json:"started"` // when Start started the workers (zero before)
	Workers   int       `json:"workers"`
	Apps      int       `json:"apps"`
	Executors int       `json:"executors"` // asked for in total
	// ExecutorsRunning are simulated executor processes running now;
	// ExecutorsLaunched were ever launched.
	ExecutorsRunning  int64 `json:"executorsRunning"`
	ExecutorsLaunched int64 `json:"executorsLaunched"`
	// ByMaster: workers registered with each master URL and applications
	// following it, and when the last of them attached to it.
	ByMaster map[string]*Attached `json:"byMaster"`
	// WorkersGaveUp stopped (all masters unresponsive); AppsFailed never
	// registered.
	WorkersGaveUp int `json:"workersGaveUp"`
	AppsFailed    int `json:"appsFailed"`
	// RegisterRequests counts the workers' registration requests by master
	// address (host:port), each attempt and each hint followed.
	RegisterRequests map[string]int64 `json:"registerRequests"`
	Duplicates       int64            `json:"duplicateRegistrations"`
	RegisterRetries  int64            `json:"registrationRetries"`
	HeartbeatLosses  int64            `json:"heartbeatLosses"`
	AppDisconnects   int64            `json:"appDisconnects"`
	AppReregistered  int64            `json:"appReregistrations"`
}

// Attached is what follows one master.
type Attached struct {
	Workers      int       `json:"workers"`
	Apps         int       `json:"apps"`
	LastWorkerAt time.Time `json:"lastWorkerAt"` // when the last of Workers attached (by the worker's log line)
	LastAppAt    time.Time `json:"lastAppAt"`
}

// Status reads every worker's and application's current master.
func (f *Fleet) Status() Status {
	f.mu.Lock()
	st := Status{Started: f.started, Workers: len(f.workers), Apps: len(f.apps), Executors: f.cfg.Executors}
	f.mu.Unlock()
	st.ExecutorsRunning, st.ExecutorsLaunched = f.launcher.running.Load(), f.launcher.launched.Load()
	st.ByMaster = map[string]*Attached{}
	get := func(u string) *Attached {
		a := st.ByMaster[u]
		if a == nil {
			a = &Attached{}
			st.ByMaster[u] = a
		}
		return a
	}
	for _, sw := range f.workers {
		u, ok := sw.w.Master()
		sw.mu.Lock()
		at, atURL, gaveUp := sw.at, sw.url, sw.gaveUp
		sw.mu.Unlock()
		if gaveUp {
			st.WorkersGaveUp++
		}
		if !ok || u == "" {
			continue
		}
		a := get(u)
		a.Workers++
		if atURL == u && at.After(a.LastWorkerAt) {
			a.LastWorkerAt = at
		}
	}
	for _, sa := range f.apps {
		sa.mu.Lock()
		u, at, failed := sa.url, sa.at, sa.started && sa.regErr != nil
		sa.mu.Unlock()
		if failed {
			st.AppsFailed++
		}
		if u == "" || sa.c.Ended() || protocol.HTTPBase(sa.c.Master()) != protocol.HTTPBase(u) {
			continue
		}
		a := get(u)
		a.Apps++
		if at.After(a.LastAppAt) {
			a.LastAppAt = at
		}
	}
	c := &f.counts
	c.mu.Lock()
	st.RegisterRequests = make(map[string]int64, len(c.regRequests))
	for k, v := range c.regRequests {
		st.RegisterRequests[k] = v
	}
	st.Duplicates, st.RegisterRetries, st.HeartbeatLosses = c.duplicates, c.retries, c.heartbeatLosses
	st.AppDisconnects, st.AppReregistered = c.appDisconnects, c.appReregistered
	c.mu.Unlock()
	return st
}

// listen records when the application attached to a master.
func (sa *simApp) listen(f *Fleet) client.Listener {
	return func(e client.Event) {
		switch e.Kind {
		case client.EventRegistered, client.EventReregistered, client.EventMasterChanged:
			sa.mu.Lock()
			sa.url, sa.at = e.MasterURL, e.At
			sa.mu.Unlock()
		}
	}
}

// ---- logging: one logger per peer, counted, only warnings written ----

// peerLogger returns a logger of its own for one worker or application
// (no lock shared by thousands of peers), at Info so that the hook sees
// the registration lines, writing only warnings and errors to base's output.
func peerLogger(base *logrus.Entry, hook logrus.Hook) *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.InfoLevel)
	l.SetOutput(base.Logger.Out)
	l.SetFormatter(quietFormatter{inner: base.Logger.Formatter})
	l.AddHook(hook)
	return logrus.NewEntry(l)
}

// quietFormatter drops Info and Debug lines.
type quietFormatter struct{ inner logrus.Formatter }

func (q quietFormatter) Format(e *logrus.Entry) ([]byte, error) {
	if e.Level > logrus.WarnLevel {
		return nil, nil
	}
	return q.inner.Format(e)
}

// countHook counts the worker and client log lines that matter to the
// benchmark and records when a worker attached to a master. It runs on the
// logging goroutine, possibly under the worker's lock: it takes only the
// fleet's own locks.
type countHook struct{ f *Fleet }

func (h *countHook) Levels() []logrus.Level { return logrus.AllLevels }

// The worker's and client's own lines (worker/register.go, client/client.go).
const (
	lineConnecting   = "Connecting to master "
	lineRegistered   = "Successfully registered with master "
	lineChanged      = "Master has changed, new master is at "
	lineDuplicate    = "Duplicate registration at master "
	lineRetrying     = "Retrying connection to master"
	lineHeartbeatErr = "Connection to master failed!"
	lineAppDisc      = "Disconnected from Spark cluster"
	lineAppRereg     = "must register again"
)

func (h *countHook) Fire(e *logrus.Entry) error {
	msg := e.Message
	c := &h.f.counts
	switch {
	case strings.HasPrefix(msg, lineConnecting):
		addr := strings.TrimSuffix(strings.TrimPrefix(msg, lineConnecting), "...")
		c.mu.Lock()
		c.regRequests[addr]++
		c.mu.Unlock()
	case strings.HasPrefix(msg, lineRegistered), strings.HasPrefix(msg, lineChanged):
		id, _ := e.Data["worker"].(string)
		sw := h.f.byID[id]
		if sw == nil {
			return nil // an application's MasterChanged line: the Listener has it
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(msg, lineRegistered), lineChanged)
		u, _, _ := strings.Cut(rest, " ")
		sw.mu.Lock()
		sw.url, sw.at = u, e.Time
		sw.mu.Unlock()
	case strings.HasPrefix(msg, lineDuplicate):
		c.add(&c.duplicates)
	case strings.HasPrefix(msg, lineRetrying):
		c.add(&c.retries)
	case strings.HasPrefix(msg, lineHeartbeatErr):
		c.add(&c.heartbeatLosses)
	case strings.HasPrefix(msg, lineAppDisc):
		c.add(&c.appDisconnects)
	case strings.Contains(msg, lineAppRereg):
		c.add(&c.appReregistered)
	}
	return nil
}

func (c *counters) add(v *int64) {
	c.mu.Lock()
	*v++
	c.mu.Unlock()
}

// ---- simulated executor processes ----

// launcher starts in-memory processes for every worker of the fleet.
type launcher struct {
	lifetime time.Duration
	nextPID  atomic.Int64
	running  atomic.Int64
	launched atomic.Int64
}

func newLauncher(lifetime time.Duration) *launcher {
	l := &launcher{lifetime: lifetime}
	l.nextPID.Store(1 << 22) // above Linux's default pid_max: never a real process
	return l
}

// Launch starts a simulated process: it runs until signalled (any signal
// ends it, as SIGTERM ends an executor) or until the lifetime has passed.
func (l *launcher) Launch(c worker.Command) (worker.Process, error) {
	p := &process{l: l, pid: int(l.nextPID.Add(1)), end: make(chan struct{})}
	l.running.Add(1)
	l.launched.Add(1)
	if l.lifetime > 0 {
		p.mu.Lock() // the timer may fire before it is stored
		p.timer = time.AfterFunc(l.lifetime, func() { p.exit(0, "") })
		p.mu.Unlock()
	}
	return p, nil
}

type process struct {
	l     *launcher
	pid   int
	timer *time.Timer

	mu    sync.Mutex
	ended bool
	code  int
	msg   string
	end   chan struct{}
}

func (p *process) PID() int { return p.pid }

func (p *process) Wait() (*int, string) {
	<-p.end
	p.mu.Lock()
	defer p.mu.Unlock()
	code := p.code
	return &code, p.msg
}

func (p *process) Signal(sig syscall.Signal) error {
	p.exit(128+int(sig), "killed by signal "+sig.String())
	return nil
}

func (p *process) exit(code int, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended, p.code, p.msg = true, code, msg
	if p.timer != nil {
		p.timer.Stop()
	}
	p.l.running.Add(-1)
	close(p.end)
}

// Discard is a logger that writes nothing, for tests and quiet runs.
func Discard() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
