package task

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/protocol"
)

// DriverConfig configures a Driver.
type DriverConfig struct {
	Scheduler Config
	// Commands are the tasks: task i runs Commands[i] with /bin/sh -c on an
	// executor, {{TASK_ID}} and {{ATTEMPT}} replaced.
	Commands []string
	// Calls, instead of Commands, are function tasks: task i calls the
	// function Calls[i].Func, registered by the executor's program, with
	// Calls[i].Input. Their outputs come back in Result.Outputs, one
	// attempt's output per task, chosen by the commit coordinator.
	Calls []Call
	// Preferred optionally names the hosts task i prefers (nil = any).
	Preferred map[int][]string
	// OutputDir, when set, receives task i's stdout as part-NNNNN, committed
	// exactly once. Resume skips tasks whose part file exists.
	OutputDir string
	Resume    bool
	// ListenAddr is where the task server binds (default 127.0.0.1:0);
	// AdvertiseHost is the host executors use to reach it (default: the
	// listener's host, or this machine's host name when unspecified).
	ListenAddr, AdvertiseHost string
	// Secret is spark.authenticate.secret ("" = none).
	Secret string
	// HeartbeatInterval is spark.executor.heartbeatInterval (10s): how long
	// a poll is held. NetworkTimeout is spark.network.timeout (120s): an
	// executor that has not polled for that long is lost.
	HeartbeatInterval, NetworkTimeout time.Duration
	// MaxOutput bounds a task's captured stdout (default 2 MiB, so that its base64 fits
	// protocol.MaxBodyBytes).
	MaxOutput int64
	// Logger gets debug details; Notify gets the human-readable lines of
	// what happens (executor added and lost, task failures, speculation).
	Logger *logrus.Entry
	Notify func(line string)
	// BeforeShutdown, if set, runs when the job is over, before the driver
	// tells its executors to exit (e.g. to set the application's executor
	// target to 0, so that the master does not replace them).
	BeforeShutdown func()
	// Observe, if set, is told of executors added and lost and of every
	// attempt launched and ended (for the application UI and metrics). It
	// is called with the driver's lock held: it must not block or call
	// the Driver.
	Observe func(Event)
	// MaxExecutorStartFailures ends the job when that many executors in a
	// row failed to start (reported on PathExecutorFailed) while none is
	// registered: the cluster would replace them forever (default 10, as
	// spark.deploy.maxExecutorRetries).
	MaxExecutorStartFailures int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Call is one function task: the name of a function the executor's
// program registered, and its input.
type Call struct {
	Func  string
	Input []byte
}

// MaxCallInput bounds a function task's input, so that a launch fits
// protocol.MaxBodyBytes once base64-encoded.
const MaxCallInput = 1 << 20

// EventKind says what an Event is about.
type EventKind string

// Kinds of Event.
const (
	ExecutorAdded   EventKind = "EXECUTOR_ADDED"
	ExecutorLost    EventKind = "EXECUTOR_LOST"
	AttemptLaunched EventKind = "ATTEMPT_LAUNCHED"
	AttemptEnded    EventKind = "ATTEMPT_ENDED"
)

// How an attempt ended, in Event.State (Spark's task states).
const (
	AttemptSuccess = "SUCCESS"
	AttemptFailed  = "FAILED"
	AttemptKilled  = "KILLED"
	AttemptLost    = "LOST" // with its executor; not counted as a failure
)

// Event is something the driver did or saw, for observers.
type Event struct {
	Kind        EventKind
	Time        time.Time
	Executor    string // executor key (appId/executorId)
	Host        string
	Cores       int // ExecutorAdded
	Task        int // attempt events
	Number      int // attempt number
	Attempt     AttemptID
	Speculative bool   // AttemptLaunched
	State       string // AttemptEnded: AttemptSuccess, AttemptFailed, AttemptKilled or AttemptLost
	Error       string // AttemptEnded (failed), ExecutorLost (why)
}

// DefaultMaxOutput is the default bound on a task's captured stdout.
const DefaultMaxOutput = 2 << 20

// Result is how a job ended.
type Result struct {
	OK       bool
	Counts   Counts
	Failure  *TaskFailure  // the task that failed the job, if one did
	Failures []TaskFailure // every task with failed attempts
	Reason   string        // why the job ended without success, when no task failed it
	Elapsed  time.Duration // from Run to the end of the job
	// Outputs holds each function task's committed output (Calls jobs),
	// in task order.
	Outputs [][]byte
	Lost    map[int]string // task -> executor its attempt was lost with (for reports)
	// Overhead is the median, over successful attempts, of the time from
	// the driver handing the attempt to its executor until the driver has
	// its result, minus the task process's own run time: what the runtime
	// adds to each task (0 when none succeeded).
	Overhead time.Duration
}

// Driver is the driver side of a job: the task scheduler, the commit
// coordinator and the task server executors register with. It learns of
// executors granted and lost from the application client's events
// (HandleEvent); task traffic never goes through the master, so a master
// failover costs a running job nothing.
type Driver struct {
	cfg   DriverConfig
	log   *logrus.Entry
	now   func() time.Time
	out   *OutputDir
	ln    net.Listener
	srv   *http.Server
	url   string
	start time.Time

	mu         sync.Mutex
	sched      *Scheduler
	coord      *CommitCoordinator
	execs      map[string]*execConn
	dead       map[string]string // executor key -> why it was lost
	apps       map[string]bool   // app ids executors may register under
	current    string            // the latest of them
	workers    map[string]string // executor key -> worker id, from client events
	ended      string            // set when the job ends without the scheduler being over
	lost       map[int]string
	sentAt     map[AttemptID]time.Time // when each running attempt was handed to its executor's orders
	added      []time.Duration         // per successful attempt: round trip minus the process's run time
	commits    []commitJob             // authorized outputs waiting for the committer
	committing int                     // outputs being written by the committer
	commitN    chan struct{}           // wakes the committer
	commitD    chan struct{}           // closed when the committer has stopped
	startFails int                     // executors in a row that failed to start
	outputs    [][]byte                // Calls jobs: committed output per task
	changed    chan struct{}
	stop       chan struct{}
	closeMu    sync.Once
	wg         sync.WaitGroup
}

type execConn struct {
	key, host, worker string
	pid               int
	cores             int
	seq               int64
	outstanding       []Orders // sent, not yet acknowledged (resent to a poll that is behind)
	launch            []TaskLaunch
	kill              []AttemptID
	shutdown          bool
	shutdownSent      bool
	lastSeen          time.Time
	polling           int
	wake              chan struct{}
}

// takeOrdersLocked turns what is pending for the executor into its next
// Orders, kept outstanding until the executor acknowledges them.
func (e *execConn) takeOrdersLocked() (Orders, bool) {
	if !(len(e.launch) > 0 || len(e.kill) > 0 || e.shutdown && !e.shutdownSent) {
		return Orders{}, false
	}
	e.seq++
	o := Orders{Seq: e.seq, Launch: e.launch, Kill: e.kill, Shutdown: e.shutdown}
	e.launch, e.kill = nil, nil
	e.shutdownSent = e.shutdown
	e.outstanding = append(e.outstanding, o)
	return o, true
}

// ackLocked forgets the orders the executor has received (seq <= ack).
func (e *execConn) ackLocked(ack int64) {
	k := 0
	for k < len(e.outstanding) && e.outstanding[k].Seq <= ack {
		k++
	}
	e.outstanding = e.outstanding[k:]
}

// resendLocked merges the outstanding orders into one (launches and kills
// are idempotent on the executor).
func (e *execConn) resendLocked() (Orders, bool) {
	if len(e.outstanding) == 0 {
		return Orders{}, false
	}
	o := Orders{Seq: e.outstanding[len(e.outstanding)-1].Seq}
	for _, x := range e.outstanding {
		o.Launch = append(o.Launch, x.Launch...)
		o.Kill = append(o.Kill, x.Kill...)
		o.Shutdown = o.Shutdown || x.Shutdown
	}
	return o, true
}

func (e *execConn) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// NewDriver validates cfg, prepares the output directory (reading what is
// committed when Resume is set) and binds the task server.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if len(cfg.Commands) == 0 && len(cfg.Calls) == 0 {
		return nil, fmt.Errorf("%w: no tasks", ErrConfig)
	}
	if len(cfg.Commands) > 0 && len(cfg.Calls) > 0 {
		return nil, fmt.Errorf("%w: a job has commands or function calls, not both", ErrConfig)
	}
	for i, c := range cfg.Calls {
		if strings.TrimSpace(c.Func) == "" {
			return nil, fmt.Errorf("%w: task %d names no function", ErrConfig, i)
		}
		if len(c.Input) > MaxCallInput {
			return nil, fmt.Errorf("%w: task %d's input is %d bytes, more than the %d a function task may take", ErrConfig, i, len(c.Input), MaxCallInput)
		}
	}
	if len(cfg.Calls) > 0 && cfg.OutputDir != "" {
		return nil, fmt.Errorf("%w: function tasks return their outputs; they take no output directory", ErrConfig)
	}
	if cfg.Resume && cfg.OutputDir == "" {
		return nil, fmt.Errorf("%w: resume needs an output directory", ErrConfig)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.NetworkTimeout <= 0 {
		cfg.NetworkTimeout = 120 * time.Second
	}
	if cfg.HeartbeatInterval >= cfg.NetworkTimeout {
		return nil, fmt.Errorf("%w: spark.executor.heartbeatInterval (%s) must be less than spark.network.timeout (%s)",
			ErrConfig, cfg.HeartbeatInterval, cfg.NetworkTimeout)
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxExecutorStartFailures <= 0 {
		cfg.MaxExecutorStartFailures = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string) {}
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	n := len(cfg.Commands) + len(cfg.Calls)
	specs := make([]Spec, n)
	for i := range specs {
		specs[i] = Spec{Index: i, Preferred: cfg.Preferred[i]}
	}
	var out *OutputDir
	skip := map[int]bool{}
	if cfg.OutputDir != "" {
		out = &OutputDir{Dir: cfg.OutputDir}
		done, err := out.Committed(len(specs))
		if err != nil {
			return nil, err
		}
		if len(done) > 0 && !cfg.Resume {
			return nil, fmt.Errorf("%w: output directory %s already holds %d committed part file(s); use --resume to run only the others, or another directory",
				ErrConfig, cfg.OutputDir, len(done))
		}
		if err := out.Prepare(); err != nil {
			return nil, err
		}
		skip = done
	}
	sched, err := NewScheduler(cfg.Scheduler, specs, skip, cfg.Now)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("task: listen on %s: %w", cfg.ListenAddr, err)
	}
	host := cfg.AdvertiseHost
	if host == "" {
		h, _, _ := net.SplitHostPort(cfg.ListenAddr)
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			h = hostname()
		}
		host = h
	}
	d := &Driver{
		cfg: cfg, log: cfg.Logger.WithField("component", "driver"), now: cfg.Now, out: out, ln: ln,
		url:   "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)),
		sched: sched, coord: NewCommitCoordinator(), execs: map[string]*execConn{}, dead: map[string]string{},
		apps: map[string]bool{}, workers: map[string]string{}, lost: map[int]string{}, sentAt: map[AttemptID]time.Time{},
		changed: make(chan struct{}, 1), stop: make(chan struct{}),
		commitN: make(chan struct{}, 1), commitD: make(chan struct{}),
	}
	if len(cfg.Calls) > 0 {
		d.outputs = make([][]byte, n)
	}
	r := mux.NewRouter()
	r.Handle(PathRegisterExecutor, protocol.Handle(d.handleRegister)).Methods(http.MethodPost)
	r.Handle(PathPoll, protocol.Handle(d.handlePoll)).Methods(http.MethodPost)
	r.Handle(PathStatus, protocol.Handle(d.handleStatus)).Methods(http.MethodPost)
	r.Handle(PathExecutorFailed, protocol.Handle(d.handleExecutorFailed)).Methods(http.MethodPost)
	// A poll is held up to HeartbeatInterval, so writes get that much on
	// top of the usual bound; bodies are bounded by protocol.DecodeBody.
	d.srv = &http.Server{Handler: protocol.Authenticate(cfg.Secret, r), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: cfg.HeartbeatInterval + 30*time.Second,
		IdleTimeout: 2 * cfg.NetworkTimeout, MaxHeaderBytes: 64 << 10}
	go d.committer()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.WithError(err).Error("task server stopped")
		}
	}()
	return d, nil
}

// URL is the task server's http:// URL, the application's driverUrl.
func (d *Driver) URL() string { return d.url }

// Skipped is the number of tasks already committed (Resume).
func (d *Driver) Skipped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.counts.Skipped
}

// AllowApp lets executors of application id register.
func (d *Driver) AllowApp(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.allowLocked(id)
}

func (d *Driver) allowLocked(id string) {
	if id != "" && !d.apps[id] {
		d.apps[id] = true
		d.current = id
	}
}

// Counts returns the job's progress.
func (d *Driver) Counts() Counts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.Counts()
}

func (d *Driver) kick() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// HandleEvent feeds an application client event to the driver: executors
// that ended (EXECUTOR_UPDATED with a finished state, EXECUTOR_REMOVED) or
// whose worker was removed are lost; their running tasks are re-queued
// without counting a failure. An APPLICATION_REMOVED ends the job.
func (d *Driver) HandleEvent(e client.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	app := e.AppID
	if app == "" {
		// A push that came before the registration's answer: it is about
		// the application being registered.
		app = d.current
	}
	key := app + "/" + strconv.Itoa(e.ExecutorID)
	switch e.Kind {
	case client.EventRegistered, client.EventReregistered:
		d.allowLocked(e.AppID)
	case client.EventExecutorAdded:
		d.workers[key] = e.WorkerID
	case client.EventExecutorUpdated, client.EventExecutorRemoved:
		if !e.State.Finished() && e.Kind != client.EventExecutorRemoved {
			return
		}
		why := "executor " + string(e.State)
		if e.ExitCode != nil {
			why += fmt.Sprintf(" with exit code %d", *e.ExitCode)
		}
		if e.Message != "" {
			why += " (" + e.Message + ")"
		}
		d.loseLocked(key, why)
	case client.EventWorkerRemoved:
		var keys []string
		for k, x := range d.execs {
			if x.worker == e.WorkerID || d.workers[k] == e.WorkerID {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			d.loseLocked(k, "worker "+e.WorkerID+" lost: "+e.Message)
		}
	case client.EventApplicationRemoved:
		if d.ended == "" && !d.sched.Over() {
			d.ended = fmt.Sprintf("the master ended the application: %s %s", e.AppState, e.Message)
		}
		d.kick()
	}
}

// loseLocked removes an executor: its running attempts are lost and their
// tasks re-queued, not counted as failures. A key not registered yet is
// remembered, so that a late registration is refused.
func (d *Driver) loseLocked(key, why string) {
	if _, ok := d.dead[key]; ok {
		return
	}
	d.dead[key] = why
	x, ok := d.execs[key]
	if !ok {
		return
	}
	delete(d.execs, key)
	x.poke()
	if d.overLocked() {
		// The job is over and its executors are exiting, as told: nothing
		// of theirs is re-run, and the counts stay as the job ended.
		return
	}
	lost := d.sched.RemoveExecutor(key, why)
	if d.sched.Over() {
		d.killLocked(d.sched.KillAll())
		d.kick()
	}
	var tasks []string
	d.observeLocked(Event{Kind: ExecutorLost, Executor: key, Host: x.host, Error: why})
	for _, l := range lost {
		d.observeLocked(Event{Kind: AttemptEnded, Executor: key, Host: x.host, Task: l.Task, Number: l.Number, Attempt: l.Attempt, State: AttemptLost, Error: why})
		delete(d.sentAt, l.Attempt)
		tasks = append(tasks, strconv.Itoa(l.Task))
		d.lost[l.Task] = key
	}
	line := fmt.Sprintf("Lost executor %s on %s: %s", key, x.host, why)
	if len(tasks) > 0 {
		line += fmt.Sprintf("; its running task(s) %s go back to the queue (not counted as failures)", strings.Join(tasks, ", "))
	}
	d.log.Debug(line)
	d.cfg.Notify(line)
	d.offerLocked()
}

func (d *Driver) observeLocked(e Event) {
	if d.cfg.Observe != nil {
		e.Time = d.now()
		d.cfg.Observe(e)
	}
}

func (d *Driver) overLocked() bool { return d.ended != "" || d.sched.Over() }

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "127.0.0.1"
}

// offerLocked fills free slots and queues the launches for their executors.
func (d *Driver) offerLocked() {
	if d.ended != "" {
		return // cancelled, or the master ended the application: launch nothing more
	}
	for _, l := range d.sched.Offer() {
		x, ok := d.execs[l.Executor]
		if !ok {
			continue // cannot happen: the scheduler only offers live executors
		}
		d.sentAt[l.Attempt] = d.now()
		tl := TaskLaunch{Attempt: l.Attempt, Task: l.Task, Number: l.Number}
		if d.cfg.Calls != nil {
			tl.Func, tl.Input = d.cfg.Calls[l.Task].Func, d.cfg.Calls[l.Task].Input
		} else {
			sub := strings.NewReplacer("{{TASK_ID}}", strconv.Itoa(l.Task), "{{ATTEMPT}}", strconv.Itoa(l.Number))
			tl.Command = sub.Replace(d.cfg.Commands[l.Task])
		}
		x.launch = append(x.launch, tl)
		x.poke()
		d.observeLocked(Event{Kind: AttemptLaunched, Executor: l.Executor, Host: x.host, Task: l.Task, Number: l.Number, Attempt: l.Attempt, Speculative: l.Speculative})
		if l.Speculative {
			line := fmt.Sprintf("Launching speculative copy of task %d (attempt %d) on executor %s", l.Task, l.Number, l.Executor)
			d.log.Debug(line)
			d.cfg.Notify(line)
		}
	}
}

func (d *Driver) killLocked(kills []Kill) {
	for _, k := range kills {
		if x, ok := d.execs[k.Executor]; ok {
			x.kill = append(x.kill, k.Attempt)
			x.poke()
		}
	}
}

// gone is the answer to an executor the driver no longer wants: it exits.
func gone(msg string) error { return &protocol.StatusError{Code: http.StatusGone, Message: msg} }

func (d *Driver) handleRegister(r *http.Request) (any, error) {
	var m RegisterExecutor
	if err := protocol.DecodeBody(r, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	key := m.Key()
	d.mu.Lock()
	defer d.mu.Unlock()
	if why, ok := d.dead[key]; ok {
		return nil, gone(fmt.Sprintf("executor %s was removed: %s", key, why))
	}
	if d.ended != "" || d.sched.Over() {
		return nil, gone("the job is over")
	}
	if !d.apps[m.AppID] {
		return nil, &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: fmt.Sprintf("application %s is not known to this driver (yet)", m.AppID)}
	}
	if _, ok := d.execs[key]; !ok {
		x := &execConn{key: key, host: m.Host, worker: m.WorkerID, pid: m.PID, cores: m.Cores, lastSeen: d.now(), wake: make(chan struct{}, 1)}
		if x.worker == "" {
			x.worker = d.workers[key]
		}
		d.execs[key] = x
		d.startFails = 0
		d.sched.AddExecutor(key, m.Host, m.Cores)
		slots := m.Cores / d.sched.Config().TaskCPUs
		line := fmt.Sprintf("Registered executor %s on %s (pid %d) with %d core(s): %d task slot(s)", key, m.Host, m.PID, m.Cores, slots)
		if slots == 0 {
			line += fmt.Sprintf("; none, since spark.task.cpus=%d", d.sched.Config().TaskCPUs)
		}
		d.log.Debug(line)
		d.cfg.Notify(line)
		d.observeLocked(Event{Kind: ExecutorAdded, Executor: key, Host: m.Host, Cores: m.Cores})
		d.offerLocked()
	}
	return RegisteredExecutor{Executor: key, HoldMs: d.cfg.HeartbeatInterval.Milliseconds(), TimeoutMs: d.cfg.NetworkTimeout.Milliseconds(),
		Capture: d.out != nil || d.outputs != nil, MaxOutput: d.cfg.MaxOutput, TaskCPUs: d.sched.Config().TaskCPUs}, nil
}

// handleExecutorFailed hears why an executor could not start. The
// executor is lost (a late registration is refused); after
// MaxExecutorStartFailures of them in a row with none registered, the job
// ends with the last reason.
func (d *Driver) handleExecutorFailed(r *http.Request) (any, error) {
	var m ExecutorFailed
	if err := protocol.DecodeBody(r, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	key := m.AppID + "/" + m.ExecutorID
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.apps[m.AppID] {
		return nil, &protocol.StatusError{Code: http.StatusNotFound, Message: fmt.Sprintf("application %s is not known to this driver", m.AppID)}
	}
	line := fmt.Sprintf("Executor %s on %s failed to start: %s", key, m.Host, m.Error)
	d.log.Debug(line)
	d.cfg.Notify(line)
	d.loseLocked(key, "failed to start: "+m.Error)
	d.startFails++
	if len(d.execs) == 0 && d.startFails >= d.cfg.MaxExecutorStartFailures && d.ended == "" && !d.sched.Over() {
		d.ended = fmt.Sprintf("%d executors in a row failed to start; the last: %s", d.startFails, m.Error)
		d.kick()
	}
	return struct{}{}, nil
}

func (d *Driver) handlePoll(r *http.Request) (any, error) {
	var p Poll
	if err := protocol.DecodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Executor == "" {
		return nil, &protocol.FieldError{Field: "executor", Reason: "is required"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	x, ok := d.execs[p.Executor]
	if !ok {
		return nil, d.unknownLocked(p.Executor)
	}
	x.polling++
	x.lastSeen = d.now()
	defer func() {
		x.polling--
		x.lastSeen = d.now()
	}()
	x.ackLocked(p.Ack)
	if o, ok := x.resendLocked(); ok {
		return o, nil // an earlier answer was lost (or is still on its way): resend
	}
	timer := time.NewTimer(d.cfg.HeartbeatInterval)
	defer timer.Stop()
	for {
		if d.execs[p.Executor] != x {
			return nil, d.unknownLocked(p.Executor)
		}
		if o, ok := x.takeOrdersLocked(); ok {
			return o, nil
		}
		if x.shutdownSent {
			return Orders{Seq: x.seq, Shutdown: true}, nil
		}
		d.mu.Unlock()
		select {
		case <-x.wake:
		case <-timer.C:
			d.mu.Lock()
			return Orders{Seq: x.seq}, nil
		case <-r.Context().Done():
			d.mu.Lock()
			return nil, r.Context().Err()
		case <-d.stop:
			d.mu.Lock()
			return Orders{Seq: x.seq, Shutdown: true}, nil
		}
		d.mu.Lock()
	}
}

func (d *Driver) unknownLocked(key string) error {
	if why, ok := d.dead[key]; ok {
		return gone(fmt.Sprintf("executor %s was removed: %s", key, why))
	}
	return gone(fmt.Sprintf("executor %s is not registered with this driver", key))
}

func (d *Driver) handleStatus(r *http.Request) (any, error) {
	var u StatusUpdate
	if err := protocol.DecodeBody(r, &u); err != nil {
		return nil, err
	}
	if u.Executor == "" {
		return nil, &protocol.FieldError{Field: "executor", Reason: "is required"}
	}
	for i, res := range u.Results {
		switch res.State {
		case StateFinished, StateFailed, StateKilled:
		default:
			return nil, &protocol.FieldError{Field: fmt.Sprintf("results[%d].state", i), Reason: fmt.Sprintf("is %q: want FINISHED, FAILED or KILLED", res.State)}
		}
	}
	for _, res := range u.Results {
		d.result(u.Executor, res)
	}
	// The executor's freed slots usually have new tasks already: hand them
	// over in the answer, which saves a round trip through its poll.
	d.mu.Lock()
	defer d.mu.Unlock()
	if x, ok := d.execs[u.Executor]; ok {
		x.lastSeen = d.now() // a status update is a sign of life too
		x.ackLocked(u.Ack)
		if o, ok := x.takeOrdersLocked(); ok {
			return StatusAck{Orders: &o}, nil
		}
	}
	return StatusAck{}, nil
}

// result applies one attempt's end. A successful attempt with output is
// committed if the coordinator authorizes it; the file work is done
// without holding the driver's lock.
func (d *Driver) result(executor string, res TaskResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	task, number, owner, ok := d.sched.Attempt(res.Attempt)
	if !ok || owner != executor || d.sched.Released(res.Attempt) {
		return // lost with its executor, already ended, or a resent report
	}
	if t0, ok := d.sentAt[res.Attempt]; ok {
		delete(d.sentAt, res.Attempt)
		if res.State == StateFinished {
			d.added = append(d.added, d.now().Sub(t0)-time.Duration(res.DurationUs)*time.Microsecond)
		}
	}
	switch res.State {
	case StateKilled:
		d.finishLocked(res.Attempt, EndKilled, "")
	case StateFailed:
		msg := res.Error
		if res.StderrTail != "" {
			msg += "; stderr: " + res.StderrTail
		}
		d.failedLocked(task, number, executor, res.Attempt, msg)
	case StateFinished:
		if d.outputs != nil {
			// A function task's output is kept in memory: the first
			// attempt to finish is authorized, the others are denied.
			if !d.coord.CanCommit(task, res.Attempt) {
				d.finishLocked(res.Attempt, EndDenied, "")
				return
			}
			d.outputs[task] = res.Output
			d.coord.Committed(task)
			d.finishLocked(res.Attempt, EndSucceeded, "")
			return
		}
		if d.out == nil {
			d.finishLocked(res.Attempt, EndSucceeded, "")
			return
		}
		if !d.coord.CanCommit(task, res.Attempt) {
			d.log.Debugf("Denied commit of task %d attempt %d: another attempt committed", task, number)
			d.finishLocked(res.Attempt, EndDenied, "")
			return
		}
		// Authorized: the slot is free now, and the committer writes the
		// output off the executor's critical path.
		d.sched.Release(res.Attempt)
		d.commits = append(d.commits, commitJob{task: task, number: number, executor: executor, attempt: res.Attempt, data: res.Output})
		select {
		case d.commitN <- struct{}{}:
		default:
		}
		d.offerLocked()
	}
}

// commitJob is an authorized attempt's output to commit.
type commitJob struct {
	task, number int
	executor     string
	attempt      AttemptID
	data         []byte
}

// committer commits authorized outputs one at a time, without holding the
// driver's lock for the file work, until the driver closes and nothing is
// left.
func (d *Driver) committer() {
	defer close(d.commitD)
	for {
		d.mu.Lock()
		if len(d.commits) == 0 {
			d.mu.Unlock()
			select {
			case <-d.commitN:
				continue
			case <-d.stop:
				d.mu.Lock()
				left := len(d.commits)
				d.mu.Unlock()
				if left == 0 {
					return
				}
				continue
			}
		}
		// Group commit: everything queued, up to maxCommitBatch parts.
		batch := d.commits
		if len(batch) > maxCommitBatch {
			batch = batch[:maxCommitBatch]
		}
		d.commits = d.commits[len(batch):]
		d.committing += len(batch)
		d.mu.Unlock()
		parts := make([]Part, len(batch))
		for i, j := range batch {
			parts[i] = Part{Task: j.task, Attempt: j.attempt, Data: j.data}
		}
		errs := d.out.CommitBatch(parts)
		d.mu.Lock()
		for i, j := range batch {
			d.committedLocked(j, errs[i])
		}
		d.committing -= len(batch)
		d.mu.Unlock()
	}
}

// maxCommitBatch bounds a group commit.
const maxCommitBatch = 256

// committedLocked applies the outcome of one commit.
func (d *Driver) committedLocked(j commitJob, err error) {
	if err != nil {
		d.coord.AttemptFailed(j.task, j.attempt)
		d.failedLocked(j.task, j.number, j.executor, j.attempt, err.Error())
		return
	}
	d.coord.Committed(j.task)
	if _, _, _, still := d.sched.Attempt(j.attempt); still {
		d.finishLocked(j.attempt, EndSucceeded, "")
		return
	}
	d.observeLocked(Event{Kind: AttemptEnded, Executor: j.executor, Task: j.task, Number: j.number, Attempt: j.attempt, State: AttemptSuccess})
	d.killLocked(d.sched.TaskCommitted(j.task))
	d.offerLocked()
	d.kick()
}

// commitsPendingLocked reports whether authorized outputs are not
// committed yet (queued or being written).
func (d *Driver) commitsPendingLocked() bool { return len(d.commits) > 0 || d.committing > 0 }

func (d *Driver) failedLocked(task, number int, executor string, a AttemptID, msg string) {
	d.finishLocked(a, EndFailed, msg)
	max := d.sched.Config().MaxFailures
	fails := 0
	for _, f := range d.sched.Failures() {
		if f.Task == task {
			fails = f.Failures
		}
	}
	line := fmt.Sprintf("Task %d attempt %d failed on executor %s (failure %d of %d): %s", task, number, executor, fails, max, msg)
	if fails >= max {
		line = fmt.Sprintf("Task %d failed %d times; aborting job: %s", task, fails, msg)
	}
	d.log.Debug(line)
	d.cfg.Notify(line)
}

func (d *Driver) finishLocked(a AttemptID, end AttemptEnd, msg string) {
	if task, number, executor, ok := d.sched.Attempt(a); ok {
		e := Event{Kind: AttemptEnded, Executor: executor, Task: task, Number: number, Attempt: a, Error: msg}
		if x, ok := d.execs[executor]; ok {
			e.Host = x.host
		}
		switch end {
		case EndSucceeded:
			e.State = AttemptSuccess
		case EndFailed:
			e.State = AttemptFailed
		default:
			e.State = AttemptKilled
		}
		d.observeLocked(e)
	}
	kills, _ := d.sched.Finished(a, end, msg)
	d.killLocked(kills)
	d.offerLocked()
	if d.sched.Over() {
		d.kick()
	}
}

// Run drives the job until every task succeeded, a task failed
// spark.task.maxFailures times, the master ended the application, or ctx
// is done. It then kills running attempts, tells every executor to shut
// down (waiting briefly for them to hear it) and returns the result.
func (d *Driver) Run(ctx context.Context) Result {
	d.mu.Lock()
	d.start = d.now()
	d.mu.Unlock()
	tick := d.sched.Config().SpeculationInterval
	if tick > 100*time.Millisecond {
		tick = 100 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		d.mu.Lock()
		over := d.sched.Over() || d.ended != ""
		if !over {
			now := d.now()
			var late []string
			for k, x := range d.execs {
				if x.polling == 0 && now.Sub(x.lastSeen) > d.cfg.NetworkTimeout {
					late = append(late, k)
				}
			}
			sort.Strings(late)
			for _, k := range late {
				d.loseLocked(k, fmt.Sprintf("Executor heartbeat timed out after %d ms", now.Sub(d.execs[k].lastSeen).Milliseconds()))
			}
			d.sched.CheckSpeculatable()
			d.offerLocked()
		}
		d.mu.Unlock()
		if over {
			break
		}
		select {
		case <-ctx.Done():
			d.mu.Lock()
			if d.ended == "" {
				d.ended = "cancelled: " + context.Cause(ctx).Error()
			}
			d.mu.Unlock()
		case <-t.C:
		case <-d.changed:
		}
	}
	if d.cfg.BeforeShutdown != nil {
		d.cfg.BeforeShutdown()
	}
	d.mu.Lock()
	d.killLocked(d.sched.KillAll())
	for _, x := range d.execs {
		x.shutdown = true
		x.poke()
	}
	d.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !d.allShutDown() {
		time.Sleep(10 * time.Millisecond)
	}
	// Outputs already authorized are committed even when the job failed or
	// was cancelled, so that --resume finds them.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && d.commitsPending(); {
		time.Sleep(5 * time.Millisecond)
	}
	var syncErr error
	if d.out != nil {
		syncErr = d.out.Sync()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	res := Result{Counts: d.sched.Counts(), Failure: d.sched.Failure(), Failures: d.sched.Failures(), Reason: d.ended,
		Elapsed: d.now().Sub(d.start), Lost: d.lost, Overhead: median(d.added)}
	if d.outputs != nil {
		res.Outputs = make([][]byte, len(d.outputs))
		copy(res.Outputs, d.outputs)
	}
	if syncErr != nil && res.Reason == "" {
		res.Reason = syncErr.Error()
	}
	res.OK = res.Failure == nil && syncErr == nil && res.Counts.Succeeded+res.Counts.Skipped == res.Counts.Total
	return res
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func (d *Driver) commitsPending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commitsPendingLocked()
}

func (d *Driver) allShutDown() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.execs {
		if !x.shutdownSent {
			return false
		}
	}
	return true
}

// Close stops the task server. It is idempotent.
func (d *Driver) Close() {
	d.closeMu.Do(func() {
		close(d.stop)
		<-d.commitD
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := d.srv.Shutdown(ctx); err != nil {
			_ = d.srv.Close()
		}
		d.wg.Wait()
	})
}
