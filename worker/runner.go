package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// proc is one supervised executor or driver process, started by the
// worker's Launcher (real processes unless Config.Launcher says otherwise).
type proc struct {
	p     Process
	pid   int
	done  chan struct{} // closed once the process has ended (Wait returned)
	grace time.Duration
	clock Clock

	mu       sync.Mutex
	killReq  bool
	exitCode *int
	message  string
}

// launchProc starts c through l (nil: a real process, c.Dir created if
// needed, stdout and stderr appended to c.Dir/stdout and c.Dir/stderr).
func launchProc(l Launcher, c Command, grace time.Duration, clock Clock) (*proc, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, errors.New("empty command")
	}
	if l == nil {
		l = osLauncher{}
	}
	p, err := l.Launch(c)
	if err != nil {
		return nil, err
	}
	return &proc{p: p, pid: p.PID(), done: make(chan struct{}), grace: grace, clock: clock}, nil
}

// wait waits for the process to end and records how it ended. Call it
// exactly once.
func (p *proc) wait() {
	code, msg := p.p.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(p.done)
	p.exitCode, p.message = code, msg
}

// outcome is how the process ended, once wait has returned: its exit code
// (nil if lost track of), a message, and whether kill was requested.
func (p *proc) outcome() (code *int, message string, killed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode, p.message, p.killReq
}

// kill sends SIGTERM to the process (its group, for a real one) and SIGKILL
// after the grace period if it is still there. It returns once the process
// has ended. Safe to call more than once.
func (p *proc) kill() {
	p.mu.Lock()
	p.killReq = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.p.Signal(syscall.SIGTERM)
	t := p.clock.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C():
		_ = p.p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// executor is one executor this worker launched.
type executor struct {
	appID    string
	execID   int
	cores    int
	memoryMB int
	app      protocol.AppDescription
	dir      string
	proc     *proc
	state    protocol.ExecutorState
	started  time.Time
	finished time.Time
	exitCode *int
	message  string
}

func execKey(appID string, execID int) string { return appID + "/" + strconv.Itoa(execID) }

func (e *executor) description() protocol.ExecutorDescription {
	d := protocol.ExecutorDescription{AppID: e.appID, ExecutorID: e.execID, Cores: e.cores, MemoryMB: e.memoryMB, State: e.state}
	if e.proc != nil {
		d.PID = e.proc.pid
	}
	return d
}

// driver is one cluster-mode driver this worker launched.
type driver struct {
	id       string
	attempt  int // LaunchDriver.Attempt: which launch by a master this is
	desc     protocol.DriverSpec
	dir      string
	argv     []string
	env      []string
	proc     *proc
	state    protocol.DriverState
	started  time.Time
	finished time.Time
	message  string
	// A supervised driver that exited non-zero is restarted here, under its
	// id, after backoff (see superviseDriver). wake is non-nil while it
	// waits for that; closing it (a kill, a shutdown) ends the wait and
	// aborted says the driver is not to be restarted.
	backoff  time.Duration
	restarts int
	wake     chan struct{}
	aborted  bool
}

// Supervised-driver restarts, as Spark's DriverRunner: 1 s after a failure,
// doubling while the driver keeps failing within driverSuccessfulRun of its
// start; sparkd caps the wait at driverMaxBackoff (Spark does not).
const (
	driverSuccessfulRun = 5 * time.Second
	driverFirstBackoff  = time.Second
	driverMaxBackoff    = time.Minute
)

// abortLocked stops a supervised driver from being restarted; it reports
// whether the driver was waiting for a restart (then no process runs).
func (d *driver) abortLocked() bool {
	d.aborted = true
	if d.wake == nil {
		return false
	}
	close(d.wake)
	d.wake = nil
	return true
}

func (d *driver) description() protocol.DriverDescription {
	return protocol.DriverDescription{DriverID: d.id, Cores: d.desc.Cores, MemoryMB: d.desc.MemoryMB, State: d.state}
}

// safeName reports whether s can name a directory under the work dir.
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && len(s) <= 255
}

// mayLaunchLocked re-checks a launch command's stamp (stillCurrentLocked)
// and refuses new work (503, naming what) while decommissioned or stopping.
func (w *Worker) mayLaunchLocked(cmd string, s protocol.Stamp, what string) error {
	if err := w.stillCurrentLocked(cmd, s); err != nil {
		return err
	}
	if !w.stopping && !w.decommissioned {
		return nil
	}
	reason := "is shutting down"
	if w.decommissioned {
		reason = "is decommissioned"
	}
	return &protocol.StatusError{Code: 503, Message: fmt.Sprintf("worker %s %s; refusing new %s", w.id, reason, what)}
}

// expandCommand substitutes the {{...}} placeholders of sub in command and
// in env's values, and returns the argv and the child's environment: the
// worker's, then env, then extra.
func expandCommand(sub *strings.Replacer, command []string, env map[string]string, extra ...string) (argv, environ []string) {
	argv = make([]string, len(command))
	for i, a := range command {
		argv[i] = sub.Replace(a)
	}
	environ = childEnviron()
	for k, v := range env {
		environ = append(environ, k+"="+sub.Replace(v))
	}
	return argv, append(environ, extra...)
}

// sparkdPath is this worker's own binary, for the {{SPARKD}} placeholder
// (an executor command such as `{{SPARKD}} executor`), or "sparkd" (looked
// up in PATH) if it cannot be found.
func sparkdPath() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "sparkd"
}

// retain appends x to list and drops the oldest entries beyond n.
func retain[T any](list []T, x T, n int) []T {
	list = append(list, x)
	if over := len(list) - n; over > 0 {
		list = append([]T(nil), list[over:]...)
	}
	return list
}

// killLocked kills p, the process of a running executor or driver (nil if
// none runs as key), in the background, after re-checking the command's
// stamp. w.mu is held.
func (w *Worker) killLocked(cmd string, s protocol.Stamp, kind, key string, p *proc) error {
	if err := w.stillCurrentLocked(cmd, s); err != nil {
		return err
	}
	if p == nil {
		w.log.Warnf("Asked to kill unknown %s %s", kind, key)
		return nil
	}
	if w.stopping {
		return nil // shutdown kills everything
	}
	w.log.Infof("Asked to kill %s %s", kind, key)
	w.procs.Go(p.kill)
	return nil
}

// launchExecutor starts the executor m describes. A second launch of the
// same executor starts nothing and re-reports its state.
func (w *Worker) launchExecutor(m protocol.LaunchExecutor) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.mayLaunchLocked("LaunchExecutor", m.Stamp, "executors"); err != nil {
		return err
	}
	key := execKey(m.AppID, m.ExecutorID)
	if e, ok := w.executors[key]; ok {
		w.log.Warnf("Executor %s is already running; not launching it twice", key)
		w.queueExecutorStateLocked(e)
		return nil
	}
	for _, e := range w.finishedExecs {
		if e.appID == m.AppID && e.execID == m.ExecutorID {
			w.log.Warnf("Executor %s already ran and ended %s; not launching it again", key, e.state)
			w.queueExecutorStateLocked(e)
			return nil
		}
	}
	w.log.Infof("Asked to launch executor %s for %s", key, m.App.Name)
	e := &executor{appID: m.AppID, execID: m.ExecutorID, cores: m.Cores, memoryMB: m.MemoryMB, app: m.App,
		dir: filepath.Join(w.cfg.WorkDir, m.AppID, strconv.Itoa(m.ExecutorID)), started: w.clock.Now(),
		state: protocol.ExecutorLaunching}
	delete(w.finishedApps, m.AppID)
	sub := strings.NewReplacer(
		"{{APP_ID}}", m.AppID,
		"{{EXECUTOR_ID}}", strconv.Itoa(m.ExecutorID),
		"{{CORES}}", strconv.Itoa(m.Cores),
		"{{MEMORY_MB}}", strconv.Itoa(m.MemoryMB),
		"{{HOSTNAME}}", w.host,
		"{{WORKER_URL}}", w.url,
		"{{DRIVER_URL}}", m.App.DriverURL,
		"{{SPARKD}}", sparkdPath(),
	)
	argv, env := expandCommand(sub, m.App.Command, m.App.Env,
		"SPARK_EXECUTOR_ID="+strconv.Itoa(m.ExecutorID),
		"SPARK_APP_ID="+m.AppID,
		"SPARK_EXECUTOR_CORES="+strconv.Itoa(m.Cores),
		"SPARK_EXECUTOR_MEMORY="+strconv.Itoa(m.MemoryMB)+"m",
		"SPARK_WORKER_URL="+w.url,
		"SPARK_DRIVER_URL="+m.App.DriverURL,
		"SPARK_WORKER_ID="+w.id,
		"SPARK_EXECUTOR_DIRS="+e.dir,
	)
	argv, env = scrubChild(argv, env, w.appCredential(m.App.Principal))
	p, err := launchProc(w.cfg.Launcher, Command{Kind: "executor", ID: key, Argv: argv, Env: env, Dir: e.dir},
		w.cfg.KillGracePeriod, w.clock)
	if err != nil {
		w.log.WithError(err).Errorf("Failed to launch executor %s", key)
		e.state = protocol.ExecutorFailed
		e.message = "failed to launch: " + err.Error()
		e.finished = w.clock.Now()
		w.retireExecutorLocked(e)
		w.queueExecutorStateLocked(e)
		return nil
	}
	e.proc = p
	e.state = protocol.ExecutorRunning
	w.executors[key] = e
	w.log.WithField("pid", p.pid).Infof("Launched executor %s: %s", key, strings.Join(argv, " "))
	w.queueExecutorStateLocked(e)
	w.procs.Go(func() { w.superviseExecutor(e) })
	return nil
}

// superviseExecutor waits for the executor's process and reports its end.
func (w *Worker) superviseExecutor(e *executor) {
	e.proc.wait()
	code, msg, killed := e.proc.outcome()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case killed:
		e.state = protocol.ExecutorKilled
	case code == nil:
		e.state = protocol.ExecutorLost
	case *code == 0:
		e.state = protocol.ExecutorExited
	default:
		e.state = protocol.ExecutorFailed
	}
	e.exitCode, e.message, e.finished = code, msg, w.clock.Now()
	delete(w.executors, execKey(e.appID, e.execID))
	w.retireExecutorLocked(e)
	w.log.Infof("Executor %s finished with state %s%s", execKey(e.appID, e.execID), e.state, finishDetail(msg, code))
	w.queueExecutorStateLocked(e)
	w.checkDrainedLocked()
}

// finishDetail is the end of Spark's ExecutorRunner line: " message M" when
// there is a message, then " exitStatus N" when the code is known, so that
// a clean exit reads "finished with state EXITED exitStatus 0".
func finishDetail(msg string, code *int) string {
	var b strings.Builder
	if msg != "" {
		b.WriteString(" message " + msg)
	}
	if code != nil {
		b.WriteString(" exitStatus " + strconv.Itoa(*code))
	}
	return b.String()
}

// retireExecutorLocked records a finished executor, and removes the
// directory of the application's oldest finished executor beyond
// RetainedExecutorDirs. The removal (a rename to .removing-*, then
// RemoveAll) runs without the lock; a removal cut short by a stop is
// finished by the next work-dir cleanup.
func (w *Worker) retireExecutorLocked(e *executor) {
	w.finishedExecs = retain(w.finishedExecs, e, w.cfg.RetainedExecutors)
	dirs := append(w.finishedDirs[e.appID], e.dir)
	over := len(dirs) - w.cfg.RetainedExecutorDirs
	if over <= 0 {
		w.finishedDirs[e.appID] = dirs
		return
	}
	old := append([]string(nil), dirs[:over]...)
	w.finishedDirs[e.appID] = append([]string(nil), dirs[over:]...)
	trash := filepath.Join(w.cfg.WorkDir, fmt.Sprintf(".removing-%s-%d-%d", e.appID, e.execID, w.clock.Now().UnixNano()))
	w.removals.Add(1)
	w.procs.Go(func() {
		defer w.removals.Done()
		for i, dir := range old {
			t := fmt.Sprintf("%s-%d", trash, i)
			err := os.Rename(dir, t)
			if err == nil {
				err = removeAll(t)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				w.log.WithError(err).Warnf("Could not remove the directory %s of a finished executor", dir)
				continue
			}
			w.log.Debugf("Removed the directory %s of a finished executor", dir)
		}
	})
}

// killExecutor kills a running executor in the background.
func (w *Worker) killExecutor(s protocol.Stamp, appID string, execID int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := execKey(appID, execID)
	var p *proc
	if e, ok := w.executors[key]; ok {
		p = e.proc
	}
	return w.killLocked("KillExecutor", s, "executor", key, p)
}

// launchDriver starts a cluster-mode driver. A supervised one that fails is
// restarted here under its id (superviseDriver); a master relaunches a
// driver only when its worker was lost, under its id with a higher attempt.
func (w *Worker) launchDriver(m protocol.LaunchDriver) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.mayLaunchLocked("LaunchDriver", m.Stamp, "drivers"); err != nil {
		return err
	}
	if d, ok := w.drivers[m.DriverID]; ok {
		w.log.Warnf("Driver %s is already running; not launching it twice", m.DriverID)
		w.queueDriverStateLocked(d)
		return nil
	}
	for _, d := range w.finishedDrivers {
		// A master relaunches a driver under its id with a higher attempt
		// (its worker was lost); only a repeat of the same launch is one.
		if d.id == m.DriverID && d.attempt >= m.Attempt {
			w.log.Warnf("Driver %s already ran and ended %s; not launching it again", m.DriverID, d.state)
			w.queueDriverStateLocked(d)
			return nil
		}
	}
	w.log.Infof("Asked to launch driver %s", m.DriverID)
	d := &driver{id: m.DriverID, attempt: m.Attempt, desc: m.Desc, dir: filepath.Join(w.cfg.WorkDir, m.DriverID), started: w.clock.Now()}
	masters := m.Desc.Masters
	if masters == "" {
		masters = w.mastersList()
	}
	sub := strings.NewReplacer("{{WORKER_URL}}", w.url, "{{DRIVER_ID}}", m.DriverID, "{{HOSTNAME}}", w.host,
		"{{CORES}}", strconv.Itoa(m.Desc.Cores), "{{MEMORY_MB}}", strconv.Itoa(m.Desc.MemoryMB))
	argv, env := expandCommand(sub, m.Desc.Command, m.Desc.Env,
		"SPARK_MASTER="+masters,
		"SPARK_DRIVER_ID="+m.DriverID,
		"SPARK_DRIVER_CORES="+strconv.Itoa(m.Desc.Cores),
		"SPARK_DRIVER_MEMORY="+strconv.Itoa(m.Desc.MemoryMB)+"m",
		"SPARK_WORKER_URL="+w.url,
	)
	argv, env = scrubChild(argv, env, w.appCredential(m.DriverID))
	d.argv, d.env = argv, env
	p, err := launchProc(w.cfg.Launcher, Command{Kind: "driver", ID: m.DriverID, Argv: argv, Env: env, Dir: d.dir},
		w.cfg.KillGracePeriod, w.clock)
	if err != nil {
		w.log.WithError(err).Errorf("Failed to launch driver %s", m.DriverID)
		d.state = protocol.DriverError
		d.message = "failed to launch: " + err.Error()
		d.finished = w.clock.Now()
		w.retireDriverLocked(d)
		w.queueDriverStateLocked(d)
		return nil
	}
	d.proc = p
	d.state = protocol.DriverRunning
	w.drivers[m.DriverID] = d
	w.log.WithField("pid", p.pid).Infof("Launched driver %s: %s", m.DriverID, strings.Join(argv, " "))
	w.queueDriverStateLocked(d)
	w.procs.Go(func() { w.superviseDriver(d) })
	return nil
}

// mastersList is the configured master list as one spark:// URL.
func (w *Worker) mastersList() string {
	hosts := make([]string, len(w.cfg.Masters))
	for i, m := range w.cfg.Masters {
		hosts[i] = normAddr(m)
	}
	return "spark://" + strings.Join(hosts, ",")
}

// superviseDriver waits for the driver's process and reports its end. A
// supervised driver that exits non-zero is restarted under the same id, in
// the same directory, after a backoff (Spark's DriverRunner): it is
// reported RELAUNCHING meanwhile and RUNNING again once restarted, and stays
// listed as running, so a master (also a new leader) keeps one entry for it
// and can kill it during the wait.
func (w *Worker) superviseDriver(d *driver) {
	for {
		d.proc.wait()
		code, msg, killed := d.proc.outcome()
		w.mu.Lock()
		if killed || code == nil || *code == 0 || !d.desc.Supervise || d.aborted || w.stopping {
			w.finishDriverLocked(d, code, msg, killed || d.aborted)
			w.mu.Unlock()
			return
		}
		now := w.clock.Now()
		if d.backoff == 0 || now.Sub(d.started) >= driverSuccessfulRun {
			d.backoff = driverFirstBackoff
		}
		delay := d.backoff
		d.backoff = min(2*d.backoff, driverMaxBackoff)
		d.state, d.message = protocol.DriverRelaunching, msg
		d.wake = make(chan struct{})
		wake := d.wake
		w.log.Infof("Driver %s exited with code %d; supervised, re-launching it after %s", d.id, *code, delay)
		w.queueDriverStateLocked(d)
		w.mu.Unlock()

		t := w.clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-wake:
		}
		t.Stop()

		w.mu.Lock()
		if d.aborted || w.stopping {
			d.wake = nil
			w.finishDriverLocked(d, nil, "killed while waiting to be re-launched", true)
			w.mu.Unlock()
			return
		}
		d.wake = nil
		p, err := launchProc(w.cfg.Launcher, Command{Kind: "driver", ID: d.id, Argv: d.argv, Env: d.env, Dir: d.dir}, w.cfg.KillGracePeriod, w.clock)
		if err != nil {
			w.log.WithError(err).Errorf("Failed to re-launch driver %s", d.id)
			d.state, d.message, d.finished = protocol.DriverError, "failed to re-launch: "+err.Error(), w.clock.Now()
			delete(w.drivers, d.id)
			w.retireDriverLocked(d)
			w.queueDriverStateLocked(d)
			w.checkDrainedLocked()
			w.mu.Unlock()
			return
		}
		d.proc, d.state, d.message, d.started = p, protocol.DriverRunning, "", w.clock.Now()
		d.restarts++
		w.log.WithField("pid", p.pid).Infof("Re-launched driver %s (restart %d)", d.id, d.restarts)
		w.queueDriverStateLocked(d)
		w.mu.Unlock()
	}
}

// finishDriverLocked ends d for good and reports it.
func (w *Worker) finishDriverLocked(d *driver, code *int, msg string, killed bool) {
	switch {
	case killed:
		d.state = protocol.DriverKilled
	case code == nil:
		d.state = protocol.DriverError
	case *code == 0:
		d.state = protocol.DriverFinished
	default:
		d.state = protocol.DriverFailed
	}
	d.message, d.finished = msg, w.clock.Now()
	delete(w.drivers, d.id)
	w.retireDriverLocked(d)
	w.log.Infof("Driver %s finished with state %s%s", d.id, d.state, finishDetail(msg, code))
	w.queueDriverStateLocked(d)
	w.checkDrainedLocked()
}

func (w *Worker) retireDriverLocked(d *driver) {
	w.finishedDrivers = retain(w.finishedDrivers, d, w.cfg.RetainedDrivers)
}

// killDriver kills a running driver in the background.
func (w *Worker) killDriver(s protocol.Stamp, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var p *proc
	if d, ok := w.drivers[id]; ok {
		if err := w.stillCurrentLocked("KillDriver", s); err != nil {
			return err
		}
		if d.abortLocked() {
			w.log.Infof("Asked to kill driver %s, which waits to be re-launched", id)
			return nil // its supervisor reports it KILLED
		}
		p = d.proc
	}
	return w.killLocked("KillDriver", s, "driver", id, p)
}
