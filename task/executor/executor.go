// Package executor is the executor backend of a task application (Spark's
// CoarseGrainedExecutorBackend): launched by a worker with its driver's
// URL, it registers with the driver, long-polls it for orders (the poll is
// its heartbeat), runs up to cores/spark.task.cpus tasks at once as
// `/bin/sh -c COMMAND`, and reports how each ended. It exits when the
// driver says so, when the driver no longer knows it, or when the driver
// has been unreachable for spark.network.timeout ("Driver ...
// disassociated! Shutting down."), killing its running tasks.
//
// A task's stderr goes to the executor's stderr (the worker's stderr log
// file) and its last lines go back with a failure; its stdout goes to the
// executor's stdout, or, when the job commits outputs, to an attempt-private
// buffer (bounded by the driver's MaxOutput) that is sent back to the
// driver, which commits it.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

// Errors Run returns. Match with errors.Is.
var (
	ErrConfig        = errors.New("executor: invalid config")
	ErrDisassociated = errors.New("executor: driver disassociated")
	ErrRemoved       = errors.New("executor: removed by the driver")
)

// Config configures a Backend.
type Config struct {
	DriverURL  string // the driver's task server
	AppID      string
	ExecutorID string
	WorkerID   string
	Host       string
	Cores      int
	Secret     string // spark.authenticate.secret
	// NetworkTimeout bounds how long the driver may be unreachable
	// (spark.network.timeout, 120s); the driver's value replaces it once
	// registered.
	NetworkTimeout time.Duration
	// WorkDir is the tasks' working directory (default: the current
	// directory, the executor's work directory on its worker).
	WorkDir string
	// Stdout and Stderr receive the tasks' stdout (when not captured) and
	// stderr (default os.Stdout and os.Stderr).
	Stdout, Stderr io.Writer
	Logger         *logrus.Entry
	// Funcs are the functions function tasks (task.TaskLaunch.Func) may
	// call, by name: a Go driver program's registered tasks. A launch
	// naming a function not in Funcs fails.
	Funcs map[string]Func
}

// Func is a function task: it gets the task's input and returns its
// output. It should return soon after ctx is cancelled (the driver killed
// the attempt, or the executor is shutting down).
type Func func(ctx context.Context, input []byte) ([]byte, error)

// Validate names the first missing field.
func (c Config) Validate() error {
	switch {
	case c.DriverURL == "":
		return fmt.Errorf("%w: no driver URL (--driver-url or SPARK_DRIVER_URL)", ErrConfig)
	case c.AppID == "":
		return fmt.Errorf("%w: no application id (--app-id or SPARK_APP_ID)", ErrConfig)
	case c.ExecutorID == "":
		return fmt.Errorf("%w: no executor id (--executor-id or SPARK_EXECUTOR_ID)", ErrConfig)
	case c.Cores <= 0:
		return fmt.Errorf("%w: cores %d (--cores or SPARK_EXECUTOR_CORES): want a positive number", ErrConfig, c.Cores)
	}
	return nil
}

// Backend is one executor process's connection to its driver.
type Backend struct {
	cfg  Config
	log  *logrus.Entry
	rpc  *protocol.Client
	poll *protocol.Client

	mu          sync.Mutex
	key         string
	capture     bool
	maxOutput   int64
	timeout     time.Duration
	lastContact time.Time
	seen        map[task.AttemptID]bool
	running     map[task.AttemptID]*run
	pending     []task.TaskResult // finished, not yet acknowledged by the driver
	notify      chan struct{}
	fatal       chan error
	tasks       sync.WaitGroup
	sendMu      sync.Mutex // one StatusUpdate at a time
	ack         int64      // the highest Orders.Seq received
	stopPoll    context.CancelFunc
}

type run struct {
	pid    int
	cancel context.CancelFunc // function tasks
	killed bool
}

// New validates cfg.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.NetworkTimeout <= 0 {
		cfg.NetworkTimeout = 120 * time.Second
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = "."
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Backend{cfg: cfg, log: cfg.Logger.WithField("component", "executor"),
		rpc: protocol.NewClient(10*time.Second, cfg.Secret), timeout: cfg.NetworkTimeout,
		seen: map[task.AttemptID]bool{}, running: map[task.AttemptID]*run{},
		notify: make(chan struct{}, 1), fatal: make(chan error, 1)}, nil
}

func (b *Backend) contact() {
	b.mu.Lock()
	b.lastContact = time.Now()
	b.mu.Unlock()
}

// unreachable reports whether the driver has not answered for the network
// timeout.
func (b *Backend) unreachable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Since(b.lastContact) > b.timeout
}

func isGone(err error) (*protocol.StatusError, bool) {
	var se *protocol.StatusError
	if errors.As(err, &se) && se.Code != http.StatusServiceUnavailable && se.Code/100 == 4 {
		return se, true
	}
	return nil, false
}

// Run registers with the driver and serves it until it says to shut down
// (nil), no longer knows this executor (ErrRemoved), or is unreachable for
// the network timeout (ErrDisassociated), or ctx is done (nil). Running
// tasks are killed before it returns.
func (b *Backend) Run(ctx context.Context) error {
	b.contact()
	reg, err := b.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped (SIGTERM) before it was registered
		}
		return err
	}
	b.mu.Lock()
	b.key, b.capture, b.maxOutput = reg.Executor, reg.Capture, reg.MaxOutput
	if reg.TimeoutMs > 0 {
		b.timeout = time.Duration(reg.TimeoutMs) * time.Millisecond
	}
	b.mu.Unlock()
	hold := time.Duration(reg.HoldMs) * time.Millisecond
	b.poll = protocol.NewClient(hold+10*time.Second, b.cfg.Secret)
	b.log.Infof("Successfully registered with driver %s as executor %s", b.cfg.DriverURL, reg.Executor)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.sendLoop(ctx)
	}()
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	b.mu.Lock()
	b.stopPoll = stopPoll
	b.mu.Unlock()
	err = b.pollLoop(pctx)
	b.killAll()
	waited := make(chan struct{})
	go func() { b.tasks.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
	}
	// Stop the sender before flushing, so that one goroutine sends.
	cancel()
	wg.Wait()
	if err == nil {
		b.flush(2 * time.Second)
	}
	return err
}

func (b *Backend) register(ctx context.Context) (task.RegisteredExecutor, error) {
	req := task.RegisterExecutor{AppID: b.cfg.AppID, ExecutorID: b.cfg.ExecutorID, WorkerID: b.cfg.WorkerID,
		Host: b.cfg.Host, Cores: b.cfg.Cores, PID: os.Getpid()}
	delay := 50 * time.Millisecond
	for {
		var resp task.RegisteredExecutor
		err := b.rpc.Call(ctx, http.MethodPost, b.cfg.DriverURL, task.PathRegisterExecutor, req, &resp)
		if err == nil {
			b.contact()
			return resp, nil
		}
		if se, ok := isGone(err); ok {
			b.log.Errorf("Driver %s refused the registration: %s; shutting down", b.cfg.DriverURL, se.Message)
			return resp, fmt.Errorf("%w: %s", ErrRemoved, se.Message)
		}
		if b.unreachable() {
			b.log.WithError(err).Errorf("Driver %s disassociated! Shutting down.", b.cfg.DriverURL)
			return resp, fmt.Errorf("%w: cannot register: %w", ErrDisassociated, err)
		}
		b.log.WithError(err).Debug("registration attempt failed")
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

// handleOrders carries out orders from a poll or a status answer; it
// reports whether they say to shut down.
func (b *Backend) handleOrders(o task.Orders) bool {
	b.mu.Lock()
	if o.Seq > b.ack {
		b.ack = o.Seq
	}
	b.mu.Unlock()
	for _, k := range o.Kill {
		b.kill(k)
	}
	if o.Shutdown {
		return true
	}
	for _, l := range o.Launch {
		b.launch(l)
	}
	return false
}

func (b *Backend) pollLoop(ctx context.Context) error {
	for {
		select {
		case err := <-b.fatal:
			return err
		default:
		}
		b.mu.Lock()
		p := task.Poll{Executor: b.key, Ack: b.ack}
		for id := range b.running {
			p.Running = append(p.Running, id)
		}
		b.mu.Unlock()
		var o task.Orders
		err := b.poll.Call(ctx, http.MethodPost, b.cfg.DriverURL, task.PathPoll, p, &o)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if se, ok := isGone(err); ok {
				b.log.Errorf("Driver %s removed this executor: %s; shutting down", b.cfg.DriverURL, se.Message)
				return fmt.Errorf("%w: %s", ErrRemoved, se.Message)
			}
			// A refused connection means the driver's process is gone (its
			// port is closed): Spark's executor exits on the disconnect.
			if b.unreachable() || errors.Is(err, protocol.ErrConnRefused) {
				b.log.WithError(err).Errorf("Driver %s disassociated! Shutting down.", b.cfg.DriverURL)
				return fmt.Errorf("%w: %w", ErrDisassociated, err)
			}
			b.log.WithError(err).Debug("poll failed")
			select {
			case <-ctx.Done():
				return nil
			case err := <-b.fatal:
				return err
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		b.contact()
		if b.handleOrders(o) {
			b.log.Info("Driver commanded a shutdown")
			return nil
		}
	}
}

func (b *Backend) launch(l task.TaskLaunch) {
	b.mu.Lock()
	if b.seen[l.Attempt] {
		b.mu.Unlock()
		return
	}
	b.seen[l.Attempt] = true
	r := &run{}
	b.running[l.Attempt] = r
	capture, maxOut := b.capture, b.maxOutput
	b.mu.Unlock()
	b.tasks.Add(1)
	go func() {
		defer b.tasks.Done()
		res := b.runTask(l, r, capture, maxOut)
		b.mu.Lock()
		b.pending = append(b.pending, res)
		b.mu.Unlock()
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}()
}

// tail keeps the last n bytes written to it.
type tail struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.n; over > 0 {
		t.buf = append([]byte(nil), t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// capped keeps up to max bytes written to it and counts the rest.
type capped struct {
	mu   sync.Mutex
	max  int64
	buf  []byte
	over int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - int64(len(c.buf))
	if room >= int64(len(p)) {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		c.buf = append(c.buf, p[:room]...)
	}
	c.over += int64(len(p)) - max(room, 0)
	return len(p), nil
}

// StderrTail is how much of a failed task's stderr goes back to the driver.
const StderrTail = 2048

func (b *Backend) runTask(l task.TaskLaunch, r *run, capture bool, maxOut int64) task.TaskResult {
	start := time.Now()
	res := task.TaskResult{Attempt: l.Attempt}
	end := func(state, msg string, code int) task.TaskResult {
		res.State, res.Error, res.ExitCode = state, msg, code
		res.DurationUs = time.Since(start).Microseconds()
		return res
	}
	if l.Func != "" {
		return b.runFunc(l, r, capture, maxOut, end)
	}
	cmd := exec.Command("/bin/sh", "-c", l.Command)
	cmd.Env = append(os.Environ(), "TASK_ID="+strconv.Itoa(l.Task), "ATTEMPT="+strconv.Itoa(l.Number),
		"SPARK_TASK_ATTEMPT_ID="+strconv.FormatInt(int64(l.Attempt), 10))
	cmd.Dir = b.cfg.WorkDir
	// The task stays in the executor's process group: the worker kills
	// that group once the executor has exited, however it died (SIGKILL
	// included), so no task outlives its executor. A single task is
	// killed with its descendants (killTree).
	cmd.WaitDelay = time.Second
	errTail := &tail{n: StderrTail}
	cmd.Stderr = io.MultiWriter(b.cfg.Stderr, errTail)
	var out *capped
	if capture {
		// The attempt's private output: in memory, bounded, sent to the
		// driver, which commits it (or not).
		out = &capped{max: maxOut}
		cmd.Stdout = out
	} else {
		cmd.Stdout = b.cfg.Stdout
	}
	b.mu.Lock()
	if r.killed {
		b.mu.Unlock()
		return end(task.StateKilled, "killed before it started", -1)
	}
	err := cmd.Start()
	if err == nil {
		r.pid = cmd.Process.Pid
	}
	b.mu.Unlock()
	if err != nil {
		return end(task.StateFailed, "cannot start /bin/sh: "+err.Error(), -1)
	}
	err = cmd.Wait()
	b.mu.Lock()
	killed := r.killed
	b.mu.Unlock()
	res.StderrTail = errTail.String()
	var ee *exec.ExitError
	switch {
	case killed:
		return end(task.StateKilled, "killed by the driver", -1)
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return end(task.StateFailed, "killed by signal "+ws.Signal().String(), 128+int(ws.Signal()))
		}
		return end(task.StateFailed, fmt.Sprintf("exit status %d", ee.ExitCode()), ee.ExitCode())
	default:
		return end(task.StateFailed, err.Error(), -1)
	}
	if capture {
		if out.over > 0 {
			return end(task.StateFailed, fmt.Sprintf("stdout is %d bytes, more than the %d a task may commit", out.max+out.over, maxOut), 0)
		}
		res.Output = out.buf
	}
	return end(task.StateFinished, "", 0)
}

func (b *Backend) kill(id task.AttemptID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.running[id]
	if !ok {
		return
	}
	r.killed = true
	if r.cancel != nil {
		r.cancel()
	}
	if r.pid > 0 {
		killTree(r.pid)
	}
}

// killTree SIGKILLs pid and its descendants (found in /proc; a process
// started while they are listed may survive; without /proc only pid
// is killed). The processes are stopped first so that none forks on.
func killTree(pid int) {
	pids := []int{pid}
	for i := 0; i < len(pids) && len(pids) < 10000; i++ {
		_ = syscall.Kill(pids[i], syscall.SIGSTOP)
		pids = append(pids, children(pids[i])...)
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// children lists pid's child processes (Linux /proc/PID/task/TID/children).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(w); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

func (b *Backend) killAll() {
	b.mu.Lock()
	ids := make([]task.AttemptID, 0, len(b.running))
	for id := range b.running {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	for _, id := range ids {
		b.kill(id)
	}
}

// batchBytes bounds one StatusUpdate's outputs, under protocol.MaxBodyBytes
// (base64 grows them by a third).
const batchBytes = 2 << 20

// sendLoop reports finished attempts, in batches, until ctx is done. A
// result stays pending (and its attempt running, as far as polls say)
// until the driver has acknowledged it.
func (b *Backend) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.notify:
		}
		for {
			n, err := b.sendOnce(ctx)
			if n == 0 && err == nil {
				break
			}
			if err != nil {
				if se, ok := isGone(err); ok {
					select {
					case b.fatal <- fmt.Errorf("%w: %s", ErrRemoved, se.Message):
					default:
					}
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
}

// sendOnce sends one batch of pending results; it returns how many.
func (b *Backend) sendOnce(ctx context.Context) (int, error) {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	b.mu.Lock()
	var batch []task.TaskResult
	size := 0
	for _, r := range b.pending {
		if len(batch) > 0 && size+len(r.Output) > batchBytes {
			break
		}
		batch = append(batch, r)
		size += len(r.Output)
	}
	key, ack := b.key, b.ack
	b.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	var resp task.StatusAck
	err := b.rpc.Call(ctx, http.MethodPost, b.cfg.DriverURL, task.PathStatus, task.StatusUpdate{Executor: key, Ack: ack, Results: batch}, &resp)
	if err != nil {
		return len(batch), err
	}
	b.contact()
	b.mu.Lock()
	b.pending = b.pending[len(batch):]
	for _, r := range batch {
		delete(b.running, r.Attempt)
	}
	stop := b.stopPoll
	b.mu.Unlock()
	if resp.Orders != nil && b.handleOrders(*resp.Orders) {
		b.log.Info("Driver commanded a shutdown")
		if stop != nil {
			stop()
		}
	}
	return len(batch), nil
}

// flush sends what is pending, for at most d (at shutdown).
func (b *Backend) flush(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		n, err := b.sendOnce(ctx)
		if n == 0 || err != nil {
			return
		}
	}
}

// runFunc calls a function task. A panic fails the attempt with the panic's
// value, as an exception fails a Spark task.
func (b *Backend) runFunc(l task.TaskLaunch, r *run, capture bool, maxOut int64, end func(state, msg string, code int) task.TaskResult) task.TaskResult {
	fn, ok := b.cfg.Funcs[l.Func]
	if !ok {
		return end(task.StateFailed, fmt.Sprintf("no task function %q is registered in this executor's program", l.Func), -1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.mu.Lock()
	if r.killed {
		b.mu.Unlock()
		return end(task.StateKilled, "killed before it started", -1)
	}
	r.cancel = cancel
	b.mu.Unlock()
	out, err := callFunc(ctx, fn, l.Input)
	b.mu.Lock()
	killed := r.killed
	b.mu.Unlock()
	switch {
	case killed:
		return end(task.StateKilled, "killed by the driver", -1)
	case err != nil:
		fmt.Fprintf(b.cfg.Stderr, "task %d attempt %d (%s) failed: %v\n", l.Task, l.Number, l.Func, err)
		return end(task.StateFailed, err.Error(), 1)
	case capture && int64(len(out)) > maxOut:
		return end(task.StateFailed, fmt.Sprintf("output is %d bytes, more than the %d a task may return", len(out), maxOut), 0)
	}
	res := end(task.StateFinished, "", 0)
	if capture {
		res.Output = out
	}
	return res
}

func callFunc(ctx context.Context, fn Func, input []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, input)
}
