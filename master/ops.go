package master

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// Registry operations. All run with mu held; they queue pushes and store
// writes as effects.

func workersByID(ws map[string]*workerInfo) []*workerInfo {
	out := make([]*workerInfo, 0, len(ws))
	for _, w := range ws {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func driversBySubmit(ds map[string]*driverInfo) []*driverInfo {
	out := make([]*driverInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].submitTime.Before(out[j].submitTime) || out[i].submitTime.Equal(out[j].submitTime) && out[i].id < out[j].id
	})
	return out
}

func appsByID(set map[*appInfo]bool) []*appInfo {
	out := make([]*appInfo, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func executorsByID(es map[execKey]*executorInfo) []*executorInfo {
	out := make([]*executorInfo, 0, len(es))
	for _, e := range es {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].app.id < out[j].app.id || out[i].app.id == out[j].app.id && out[i].id < out[j].id
	})
	return out
}

// removeRecordLocked queues the removal of a stored record.
func (m *Master) removeRecordLocked(kind recovery.Kind, id string) {
	m.persistLocked(kind, id, true, func(ctx context.Context, s recovery.Store) error { return s.Remove(ctx, kind, id) }, nil)
}

// removeWorkerLocked marks w DEAD: its executors are reported LOST to their
// applications (and rescheduled), its supervised drivers are relaunched
// under their ids and the others end in ERROR, and its record is removed.
func (m *Master) removeWorkerLocked(w *workerInfo, why string) {
	if w.state == protocol.WorkerDead {
		return
	}
	m.log.Infof("Removing worker %s on %s: %s", w.id, w.hostPort(), why)
	w.state = protocol.WorkerDead
	if m.st.workerByAddr[w.hostPort()] == w {
		delete(m.st.workerByAddr, w.hostPort())
	}
	stamp := m.stampLocked()
	told := map[*appInfo]bool{}
	for _, e := range executorsByID(w.executors) {
		m.log.Infof("Telling app of lost executor: %d", e.id)
		m.pushToAppLocked(e.app, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{
			Stamp: stamp, ExecutorID: e.id, State: protocol.ExecutorLost, Message: "worker lost: " + why, WorkerLost: true})
		e.state = protocol.ExecutorLost
		e.app.removeExecutor(e)
		w.removeExecutor(e)
		told[e.app] = true
	}
	for _, app := range appsByID(told) {
		m.pushToAppLocked(app, protocol.PathWorkerRemoved, protocol.WorkerRemoved{
			Stamp: stamp, WorkerID: w.id, Host: w.host, Message: why})
		m.persistAppLocked(app)
	}
	for _, d := range driversBySubmit(w.drivers) {
		w.removeDriver(d)
		d.worker = nil
		if d.spec.Supervise {
			m.relaunchDriverLocked(d)
		} else {
			m.log.Infof("Not re-launching %s because it was not supervised", d.id)
			m.removeDriverLocked(d, protocol.DriverError, "worker lost: "+why)
		}
	}
	m.removeRecordLocked(recovery.KindWorker, w.id)
	m.scheduleSafeLocked()
}

// Supervised-driver relaunch backoff for the rare relaunch after a
// failure that the master does itself (a worker of an older sparkd that
// reports FAILED instead of restarting the driver): as Spark's
// DriverRunner, 1 s after the first failure, doubling while the driver
// keeps failing within driverSuccessfulRun of its launch, at most
// driverMaxBackoff.
const (
	driverSuccessfulRun = 5 * time.Second
	driverFirstBackoff  = time.Second
	driverMaxBackoff    = time.Minute
)

// relaunchFailedDriverLocked relaunches a supervised driver whose worker
// reported it FAILED (workers of this version restart it themselves and
// report RELAUNCHING), under its id and after a backoff.
func (m *Master) relaunchFailedDriverLocked(d *driverInfo, exception string) {
	now := m.now()
	failures := d.failures
	if !d.launchedAt.IsZero() && now.Sub(d.launchedAt) >= driverSuccessfulRun {
		failures = 0
	}
	delay := driverFirstBackoff
	for i := 0; i < failures && delay < driverMaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, driverMaxBackoff)
	m.log.Infof("Driver %s failed (%s); supervised, re-launching after %s", d.id, exception, delay)
	d.exception = exception
	d.failures = failures + 1
	d.notBefore = now.Add(delay)
	m.relaunchDriverLocked(d)
}

// driversDueLocked reports whether a driver held back by a relaunch backoff
// may now be scheduled, and releases it.
func (m *Master) driversDueLocked(now time.Time) bool {
	due := false
	for _, d := range m.st.waitingDrivers {
		if !d.notBefore.IsZero() && !now.Before(d.notBefore) {
			d.notBefore = time.Time{}
			due = true
		}
	}
	return due
}

// relaunchDriverLocked puts a supervised driver that no worker runs any
// more (its worker was lost, or it was not found after a failover) back in
// line as RELAUNCHING, under its id, so that the id the submitter holds
// stays valid for --status and --kill through every relaunch. Its attempt
// grows and is persisted with it: a worker starts a driver it has already
// run only for a higher attempt, and reports from any other worker than
// the one it is assigned to are refused (the fence SPARK-19900's new id
// gives Spark).
func (m *Master) relaunchDriverLocked(d *driverInfo) {
	m.log.Infof("Re-launching %s", d.id)
	st := m.st
	if d.worker != nil {
		d.worker.removeDriver(d)
		d.worker = nil
	}
	d.recoveredWorker = ""
	d.state = protocol.DriverRelaunching
	d.attempt++
	d.acked, d.missed = false, 0
	st.waitingDrivers = append(removeDrv(st.waitingDrivers, d), d)
	rec := d.record()
	m.persistLocked(recovery.KindDriver, d.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutDriver(ctx, rec) }, nil)
	m.scheduleSafeLocked()
}

func (m *Master) addCompletedDriverLocked(d *driverInfo) {
	st := m.st
	if r := m.cfg.RetainedDrivers; len(st.completedDrvs) >= r && len(st.completedDrvs) > 0 {
		n := min(trimCount(r), len(st.completedDrvs))
		st.completedDrvs = append(st.completedDrvs[:0:0], st.completedDrvs[n:]...)
	}
	st.completedDrvs = append(st.completedDrvs, d)
}

// removeDriverLocked ends d in a final state.
func (m *Master) removeDriverLocked(d *driverInfo, final protocol.DriverState, exception string) {
	st := m.st
	if _, ok := st.drivers[d.id]; !ok {
		return
	}
	m.log.Infof("Removing driver: %s (%s)", d.id, final)
	delete(st.drivers, d.id)
	st.waitingDrivers = removeDrv(st.waitingDrivers, d)
	d.state = final
	d.exception = exception
	if d.worker != nil {
		d.worker.removeDriver(d)
	}
	m.addCompletedDriverLocked(d)
	m.removeRecordLocked(recovery.KindDriver, d.id)
	m.scheduleSafeLocked()
}

// removeAppLocked ends an application: its executors are killed, its
// driver told (unless it finished normally), its record removed.
func (m *Master) removeAppLocked(a *appInfo, final protocol.AppState, why string) {
	st := m.st
	if _, ok := st.apps[a.id]; !ok {
		return
	}
	m.log.Infof("Removing app %s (%s)", a.id, final)
	delete(st.apps, a.id)
	if st.appByClient[a.clientURL] == a {
		delete(st.appByClient, a.clientURL)
	}
	st.waitingApps = removeApp(st.waitingApps, a)
	a.state = final
	a.endTime = m.now()
	a.waiting = ""
	a.coresAtEnd = a.granted
	stamp := m.stampLocked()
	workers := map[*workerInfo]bool{}
	for _, e := range a.executors {
		workers[e.worker] = true
		m.killExecutorLocked(e)
	}
	if final != protocol.AppFinished {
		m.sendAsyncLocked(a.clientURL, protocol.PathApplicationRemoved, protocol.ApplicationRemoved{
			Stamp: stamp, State: final, Message: why})
	}
	if r := m.cfg.RetainedApplications; len(st.completedApps) >= r && len(st.completedApps) > 0 {
		n := min(trimCount(r), len(st.completedApps))
		st.completedApps = append(st.completedApps[:0:0], st.completedApps[n:]...)
	}
	st.completedApps = append(st.completedApps, a)
	m.removeRecordLocked(recovery.KindApp, a.id)
	for w := range workers {
		if w.state != protocol.WorkerDead {
			m.sendAsyncLocked(w.url, protocol.PathApplicationFinished, protocol.ApplicationFinished{Stamp: stamp, AppID: a.id})
		}
	}
	m.scheduleSafeLocked()
}

func (m *Master) killExecutorLocked(e *executorInfo) {
	e.worker.removeExecutor(e)
	e.app.removeExecutor(e)
	if e.worker.state != protocol.WorkerDead {
		m.killExecutorOnWorkerLocked(e.worker, e.app.id, e.id)
	}
	e.state = protocol.ExecutorKilled
}

func (m *Master) killExecutorOnWorkerLocked(w *workerInfo, appID string, execID int) {
	m.sendAsyncLocked(w.url, protocol.PathKillExecutor, protocol.KillExecutor{Stamp: m.stampLocked(), AppID: appID, ExecutorID: execID})
}

// checkWorkerTimeoutsLocked removes workers silent for longer than
// spark.worker.timeout and culls DEAD ones after
// spark.dead.worker.persistence more timeouts.
func (m *Master) checkWorkerTimeoutsLocked(now time.Time) {
	timeout := m.cfg.WorkerTimeout
	cull := time.Duration(m.cfg.DeadWorkerPersistence+1) * timeout
	for _, w := range workersByID(m.st.workers) {
		silent := now.Sub(w.lastHeartbeat)
		switch {
		case w.state != protocol.WorkerDead && silent > timeout:
			m.log.Warnf("Removing %s because we got no heartbeat in %d seconds", w.id, int(timeout.Seconds()))
			m.removeWorkerLocked(w, fmt.Sprintf("Not receiving heartbeat for %d seconds", int(timeout.Seconds())))
		case w.state == protocol.WorkerDead && silent > cull:
			delete(m.st.workers, w.id)
		}
	}
}

// scheduleLocked runs one scheduling pass (Schedule) and applies its plan.
// It does nothing unless ALIVE.
func (m *Master) scheduleLocked() {
	if m.status != protocol.MasterAlive || m.term == nil || m.selfFenced() != "" {
		return
	}
	st := m.st
	var workers []SchedWorker
	largest := 0
	for _, w := range workersByID(st.workers) {
		if w.state != protocol.WorkerAlive || w.unreachable || w.needsSync {
			continue
		}
		workers = append(workers, SchedWorker{ID: w.id, CoresFree: w.cores - w.coresUsed, MemFreeMB: w.memMB - w.memUsed})
		largest = max(largest, w.cores)
	}
	drivers := make([]SchedDriver, 0, len(st.waitingDrivers))
	now := m.now()
	for _, d := range st.waitingDrivers {
		if !d.notBefore.IsZero() && now.Before(d.notBefore) {
			continue // relaunch backoff
		}
		drivers = append(drivers, SchedDriver{ID: d.id, Cores: d.spec.Cores, MemMB: d.spec.MemoryMB})
	}
	var apps []SchedApp
	for _, a := range st.waitingApps {
		if a.state.Finished() || a.state == protocol.AppUnknown {
			continue
		}
		maxCores := a.desc.MaxCores
		if maxCores == 0 {
			maxCores = m.cfg.DefaultCores
		}
		left := math.MaxInt32
		if maxCores > 0 {
			left = maxCores - a.granted
		}
		limit := a.desc.InitialLimit
		if a.limitSet {
			if a.limit == 0 {
				// Only a reason to wait when it has none; an application that
				// runs executors and wants no more is not waiting.
				a.waiting = ""
				if len(a.executors) == 0 {
					a.waiting = "the application requested no executors"
				}
				continue
			}
			limit = a.limit
		}
		if left <= 0 {
			a.waiting = ""
			continue
		}
		sa := SchedApp{ID: a.id, CoresLeft: left, ExecutorCores: a.desc.ExecutorCores, MemPerExecMB: a.desc.ExecutorMemMB,
			ExecutorLimit: limit, Executors: len(a.executors)}
		sa.Excluded, _ = backedOffLocked(a, now)
		if len(a.executors) > 0 {
			sa.ExecutorsOn = map[string]int{}
			for _, e := range a.executors {
				sa.ExecutorsOn[e.worker.id]++
			}
		}
		apps = append(apps, sa)
	}
	if len(workers) == 0 && len(drivers) == 0 && len(apps) == 0 {
		return
	}
	plan := Schedule(workers, drivers, apps, m.cfg.SpreadOut, largest)
	for _, p := range plan.Drivers {
		d, w := st.drivers[p.DriverID], st.workers[p.WorkerID]
		if d == nil || w == nil {
			continue
		}
		m.launchDriverLocked(w, d)
	}
	for _, g := range plan.Executors {
		a, w := st.apps[g.AppID], st.workers[g.WorkerID]
		if a == nil || w == nil {
			continue
		}
		m.launchExecutorLocked(w, a, g.Cores, g.MemMB)
	}
	for _, sa := range apps {
		if a := st.apps[sa.ID]; a != nil {
			a.waiting = plan.Waiting[sa.ID]
			if _, until := backedOffLocked(a, now); a.waiting != "" && !until.IsZero() {
				a.waiting = fmt.Sprintf("its executors keep ending right after they start; the next launch waits until %s (relaunch backoff; %s)",
					until.UTC().Format(time.RFC3339), a.waiting)
			}
		}
	}
}

// launchExecutorLocked grants an executor of a on w. The grant is written
// to a's record (with the advanced executor counter) before the worker is
// told to launch it and the driver is told it was added, so a successor
// knows every executor that may run and never hands out its id again.
// The launch's outcome comes back: a definite refusal frees the resources
// at once (launchRefused); an ambiguous failure is settled by the worker's
// heartbeats (reconcileWorkerLocked).
func (m *Master) launchExecutorLocked(w *workerInfo, a *appInfo, cores, memMB int) {
	e := &executorInfo{app: a, id: a.nextExecID, worker: w, cores: cores, memMB: memMB, state: protocol.ExecutorLaunching,
		launchedAt: m.now()}
	a.addExecutor(e)
	w.addExecutor(e)
	a.state = protocol.AppRunning
	m.log.Infof("Launching executor %s/%d on worker %s", a.id, e.id, w.id)
	stamp := m.stampLocked()
	t := m.term
	persisted := m.persistAppLocked(a)
	m.queueLocked(w.url, outMsg{path: protocol.PathLaunchExecutor, gate: persisted,
		req:  protocol.LaunchExecutor{Stamp: stamp, AppID: a.id, ExecutorID: e.id, App: a.desc, Cores: cores, MemoryMB: memMB},
		done: func(err error) { m.onTerm(t, func() { m.executorLaunchedLocked(e, err) }) }})
	m.pushToAppGatedLocked(a, protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: stamp, ExecutorID: e.id,
		WorkerID: w.id, HostPort: w.hostPort(), Cores: cores, MemoryMB: memMB}, persisted)
}

// definiteRefusal reports whether a command's failure proves the peer did
// not carry it out: the connection was refused, or the peer answered with
// an error status. Anything else (a timeout, a reset connection) is
// ambiguous: the peer may have acted.
func definiteRefusal(err error) bool {
	var se *protocol.StatusError
	return errors.Is(err, protocol.ErrConnRefused) || errors.As(err, &se)
}

// executorLaunchedLocked handles the outcome of a LaunchExecutor.
func (m *Master) executorLaunchedLocked(e *executorInfo, err error) {
	a, w := e.app, e.worker
	if m.st.apps[a.id] != a || a.executors[e.id] != e {
		return // ended meanwhile
	}
	if err == nil {
		e.acked = true
		return
	}
	if !definiteRefusal(err) {
		m.log.WithError(err).Warnf("Launch of executor %s/%d on %s may not have arrived; the worker's heartbeats will tell", a.id, e.id, w.id)
		e.acked = true // settled by the heartbeats
		return
	}
	m.log.WithError(err).Warnf("Worker %s refused to launch executor %s/%d; freeing its resources", w.id, a.id, e.id)
	m.ha.Reconciled.LaunchRefused++
	m.workerRefusedLocked(w, err)
	m.executorEndedLocked(e, protocol.ExecutorLost, "the worker refused the launch: "+err.Error(), nil, false)
}

// executorEndedLocked removes an executor the master knows to have ended,
// tells its driver, persists the application, and counts the failure
// against the application when countFailure is set.
func (m *Master) executorEndedLocked(e *executorInfo, state protocol.ExecutorState, msg string, exitCode *int, countFailure bool) {
	a := e.app
	m.log.Infof("Removing executor %s/%d because it is %s", a.id, e.id, state)
	e.state = state
	a.removeExecutor(e)
	e.worker.removeExecutor(e)
	m.pushToAppLocked(a, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: m.stampLocked(),
		ExecutorID: e.id, State: state, Message: msg, ExitCode: exitCode})
	if state == protocol.ExecutorFailed || state == protocol.ExecutorExited {
		m.executorExitedLocked(e, m.now())
	}
	if countFailure {
		a.retries++
		if limit := m.cfg.MaxExecutorRetries; limit >= 0 && a.retries >= limit && !a.anyRunning() {
			m.log.Errorf("Application %s with ID %s failed %d times; removing it", a.desc.Name, a.id, a.retries)
			m.removeAppLocked(a, protocol.AppFailed, fmt.Sprintf("Application %s with ID %s failed %d times", a.desc.Name, a.id, a.retries))
			return
		}
	}
	m.persistAppLocked(a)
	m.scheduleSafeLocked()
}

// Executor relaunch backoff. An executor that ends by itself (FAILED or
// EXITED, whatever its exit code) within executorSuccessfulRun of its start
// holds further launches of its application on its worker back: 1 s after
// the first such end, doubling with each further one in a row, at most
// executorMaxBackoff. An executor that ran for executorSuccessfulRun resets
// the backoff of its worker and the application's failure count
// (spark.deploy.maxExecutorRetries). Spark resets that count as soon as an
// executor reports RUNNING, so an executor that starts and exits at once
// is relaunched without end; here it has to run for a while first.
const (
	executorSuccessfulRun = 10 * time.Second
	executorFirstBackoff  = time.Second
	executorMaxBackoff    = time.Minute
)

// launchBackoffDelay is the backoff after n quick ends in a row (n >= 1).
func launchBackoffDelay(n int) time.Duration {
	d := executorFirstBackoff
	for i := 1; i < n && d < executorMaxBackoff; i++ {
		d *= 2
	}
	return min(d, executorMaxBackoff)
}

// executorExitedLocked updates the relaunch backoff of e's application on
// e's worker after e ended by itself at now.
func (m *Master) executorExitedLocked(e *executorInfo, now time.Time) {
	a, w := e.app, e.worker
	start := e.runningSince
	if start.IsZero() {
		start = e.launchedAt
	}
	if start.IsZero() || now.Sub(start) >= executorSuccessfulRun {
		// Recovered from the store (it ran before the failover) or ran for
		// long enough: a healthy run.
		delete(a.backoff, w.id)
		a.retries = 0
		return
	}
	if a.backoff == nil {
		a.backoff = map[string]*launchBackoff{}
	}
	b := a.backoff[w.id]
	if b == nil {
		b = &launchBackoff{}
		a.backoff[w.id] = b
	}
	b.quickEnds++
	delay := launchBackoffDelay(b.quickEnds)
	b.notBefore = now.Add(delay)
	m.log.Infof("Executor %s/%d ended %s after it started on worker %s (%d in a row); no executor of %s is launched there for %s",
		a.id, e.id, now.Sub(start).Round(time.Millisecond), w.id, b.quickEnds, a.id, delay)
}

// settleExecutorsLocked runs on the leader's tick: an executor RUNNING for
// executorSuccessfulRun resets its application's failure count and the
// backoff of its worker, and a backoff that has expired is released. It
// reports whether a released backoff wants a scheduling pass.
func (m *Master) settleExecutorsLocked(now time.Time) bool {
	due := false
	for _, a := range m.st.apps {
		if a.retries == 0 && len(a.backoff) == 0 {
			continue
		}
		for _, e := range a.executors {
			if e.state == protocol.ExecutorRunning && !e.runningSince.IsZero() && now.Sub(e.runningSince) >= executorSuccessfulRun {
				a.retries = 0
				delete(a.backoff, e.worker.id)
			}
		}
		for _, b := range a.backoff {
			if !b.notBefore.IsZero() && !now.Before(b.notBefore) {
				b.notBefore = time.Time{}
				due = true
			}
		}
	}
	return due
}

// backedOffLocked returns the workers on which a may not launch an
// executor at now (nil if none), and the earliest time one is released.
func backedOffLocked(a *appInfo, now time.Time) (map[string]bool, time.Time) {
	var out map[string]bool
	var first time.Time
	for wid, b := range a.backoff {
		if b.notBefore.IsZero() || !now.Before(b.notBefore) {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[wid] = true
		if first.IsZero() || b.notBefore.Before(first) {
			first = b.notBefore
		}
	}
	return out, first
}

// launchDriverLocked assigns d to w, persists the assignment, and only then
// tells the worker, so that a successor knows where the driver runs.
func (m *Master) launchDriverLocked(w *workerInfo, d *driverInfo) {
	m.log.Infof("Launching driver %s on worker %s", d.id, w.id)
	d.worker = w
	d.launchedAt = m.now()
	d.state = protocol.DriverRunning
	d.acked, d.missed = false, 0
	w.addDriver(d)
	m.st.waitingDrivers = removeDrv(m.st.waitingDrivers, d)
	rec := d.record()
	msg := protocol.LaunchDriver{Stamp: m.stampLocked(), DriverID: d.id, Desc: d.spec, Attempt: d.attempt}
	t := m.term
	persisted := m.persistLocked(recovery.KindDriver, d.id, true, func(ctx context.Context, s recovery.Store) error {
		return s.PutDriver(ctx, rec)
	}, func(err error) {
		if err != nil {
			m.driverAssignFailedLocked(t, w, d, err)
		}
	})
	// Queued now, so that it keeps its place before any later message to
	// the worker (a KillDriver must not overtake it), but held until the
	// assignment is persisted; dropped if that fails.
	m.queueLocked(w.url, outMsg{path: protocol.PathLaunchDriver, req: msg, gate: persisted, done: func(err error) {
		m.onTerm(t, func() { m.driverLaunchedLocked(w, d, err) })
	}})
}

// driverLaunchedLocked handles the outcome of a LaunchDriver: a definite
// refusal puts the driver back in line (first) at once.
func (m *Master) driverLaunchedLocked(w *workerInfo, d *driverInfo, err error) {
	if m.st.drivers[d.id] != d || d.worker != w {
		return
	}
	if err == nil || !definiteRefusal(err) {
		if err != nil {
			m.log.WithError(err).Warnf("Launch of driver %s on %s may not have arrived; the worker's heartbeats will tell", d.id, w.id)
		}
		d.acked = true
		return
	}
	m.log.WithError(err).Warnf("Worker %s refused to launch driver %s; it waits again", w.id, d.id)
	m.ha.Reconciled.LaunchRefused++
	m.workerRefusedLocked(w, err)
	m.unassignDriverLocked(d)
}

// workerRefusedLocked keeps new work off a worker that definitely refused a
// launch, so that the next pass does not send it there again: a 503 means
// it is decommissioning or stopping (it takes no new work); a refused
// connection means its process is gone or restarting, and any other error
// answer (a 401 for a secret that does not match, a 409 for an epoch it
// finds stale) would only repeat: nothing goes there until it heartbeats
// again, so a broken worker costs one launch per heartbeat, not a storm.
func (m *Master) workerRefusedLocked(w *workerInfo, err error) {
	var se *protocol.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusServiceUnavailable && w.state == protocol.WorkerAlive:
		m.log.Infof("Worker %s refuses new work (%s); no more executors or drivers go there", w.id, se.Message)
		w.state = protocol.WorkerDecommissioned
	case !w.unreachable:
		m.log.WithError(err).Warnf("Worker %s refused a launch; nothing is scheduled on it until it heartbeats again", w.id)
		w.unreachable = true
	}
}

// unassignDriverLocked puts a driver that is not running where the master
// assigned it back in line, first, and persists that.
func (m *Master) unassignDriverLocked(d *driverInfo) {
	m.requeueDriverLocked(d)
	rec := d.record()
	m.persistLocked(recovery.KindDriver, d.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutDriver(ctx, rec) }, nil)
	m.scheduleSafeLocked()
}

// requeueDriverLocked takes d off its worker and puts it first in line.
func (m *Master) requeueDriverLocked(d *driverInfo) {
	if d.worker != nil {
		d.worker.removeDriver(d)
	}
	d.worker = nil
	d.state = protocol.DriverSubmitted
	m.st.waitingDrivers = append([]*driverInfo{d}, removeDrv(m.st.waitingDrivers, d)...)
}

// driverLaunchRetry is how long a driver whose assignment could not be
// persisted waits before the next scheduling pass tries again.
var driverLaunchRetry = time.Second

// driverAssignFailedLocked undoes the assignment of d to w when it could
// not be persisted (the store refused it: the persister retries everything
// that may pass): LaunchDriver is never sent then, so without this the
// driver would stay RUNNING on w with no process behind it. It waits again,
// first in line, and a scheduling pass is retried after driverLaunchRetry.
// A fenced or revoked term needs nothing: the successor recovers the record.
func (m *Master) driverAssignFailedLocked(t *term, w *workerInfo, d *driverInfo, err error) {
	if errors.Is(err, recovery.ErrFenced) || errors.Is(err, recovery.ErrNotLeader) {
		return
	}
	if m.st.drivers[d.id] != d || d.worker != w || d.state != protocol.DriverRunning {
		return
	}
	m.log.WithError(err).Warnf("Could not persist the assignment of driver %s to worker %s; it waits again", d.id, w.id)
	m.requeueDriverLocked(d)
	t.spawn(func() {
		timer := time.NewTimer(driverLaunchRetry)
		defer timer.Stop()
		select {
		case <-t.ctx.Done():
			return
		case <-timer.C:
		}
		m.onTerm(t, m.scheduleSafeLocked)
	})
}

// ---- application liveness ----

// appAliveLocked notes that a's driver showed it is alive.
func (m *Master) appAliveLocked(a *appInfo) {
	a.lastHeartbeat = m.now()
	a.refused = 0
	a.probedAt = time.Time{}
}

// pushToAppLocked queues a message for a's client and watches the outcome:
// a client that refuses the connection twice in a row (with no sign of life
// in between) has gone away, and the application is removed at once.
func (m *Master) pushToAppLocked(a *appInfo, path string, req any) {
	m.pushToAppGatedLocked(a, path, req, nil)
}

// pushToAppGatedLocked is pushToAppLocked held back until g opens (nil:
// not held).
func (m *Master) pushToAppGatedLocked(a *appInfo, path string, req any, g *gate) {
	t := m.term
	m.queueLocked(a.clientURL, outMsg{path: path, req: req, gate: g, done: func(err error) { m.appPushed(t, a, path, err) }})
}

// appRefusalsToRemove is how many pushes in a row an application's client
// may refuse before the application is removed.
const appRefusalsToRemove = 2

func (m *Master) appPushed(t *term, a *appInfo, path string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t || m.st.apps[a.id] != a {
		return
	}
	var se *protocol.StatusError
	switch {
	case err == nil, errors.As(err, &se):
		a.refused = 0 // it answered
	case errors.Is(err, protocol.ErrConnRefused):
		a.refused++
		m.log.WithError(err).Debugf("application %s refused %s (%d in a row)", a.id, path, a.refused)
		if a.refused >= appRefusalsToRemove {
			m.log.Infof("%s got disassociated, removing it.", a.clientURL)
			m.removeAppLocked(a, protocol.AppFinished, "the driver's connection was refused")
		}
	default:
		m.log.WithError(err).Debugf("could not deliver %s to application %s", path, a.id)
	}
}

// checkAppTimeoutsLocked removes applications whose driver has not shown
// it is alive for longer than Config.AppTimeout. Nothing is timed out in
// the first AppTimeout of a term: drivers need time to find a new leader.
// A silent driver is asked first (PathAppPing): one that answers keeps its
// application (its heartbeats were lost or late, e.g. at an overloaded
// master), one that refuses the connection loses it at once, and one that
// does not answer within another AppTimeout loses it then.
func (m *Master) checkAppTimeoutsLocked(t *term, now time.Time) {
	timeout := m.cfg.AppTimeout
	if timeout <= 0 || now.Sub(t.elected) <= timeout {
		return
	}
	ids := make([]string, 0, len(m.st.apps))
	for id := range m.st.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := m.st.apps[id]
		if a == nil || a.state == protocol.AppUnknown || now.Sub(a.lastHeartbeat) <= timeout {
			continue
		}
		secs := int(timeout.Seconds())
		if a.probedAt.IsZero() {
			a.probedAt = now
			m.probeAppLocked(t, a, secs)
			continue
		}
		if now.Sub(a.probedAt) <= timeout {
			continue
		}
		m.log.Warnf("Removing application %s because we got no heartbeat in %d seconds", a.id, secs)
		m.removeAppLocked(a, protocol.AppFinished, fmt.Sprintf("no heartbeat from the driver in %d seconds", secs))
	}
}

// probeAppLocked asks a's silent driver whether it is alive.
func (m *Master) probeAppLocked(t *term, a *appInfo, secs int) {
	m.probeAppAttemptLocked(t, a, secs, 1)
}

// probeAppAttemptLocked sends the attempt-th ping. A ping that fails
// without an answer or a refusal (an EOF: a pooled connection the dead
// driver's host closed) is sent once more, on a fresh connection.
func (m *Master) probeAppAttemptLocked(t *term, a *appInfo, secs, attempt int) {
	m.queueLocked(a.clientURL, outMsg{path: protocol.PathAppPing, req: struct{}{}, done: func(err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.term != t || m.st.apps[a.id] != a || a.probedAt.IsZero() {
			return
		}
		var se *protocol.StatusError
		switch {
		case err == nil, errors.As(err, &se): // it answered (an older driver: 404)
			m.log.Warnf("Application %s sent no heartbeat in %d seconds, but its driver answers; keeping it", a.id, secs)
			a.lastHeartbeat, a.probedAt = m.now(), time.Time{}
		case errors.Is(err, protocol.ErrConnRefused):
			m.log.Warnf("Removing application %s because we got no heartbeat in %d seconds and its driver refuses connections", a.id, secs)
			m.removeAppLocked(a, protocol.AppFinished, fmt.Sprintf("no heartbeat from the driver in %d seconds", secs))
		case attempt == 1:
			m.probeAppAttemptLocked(t, a, secs, 2)
		default:
			m.log.WithError(err).Infof("Application %s sent no heartbeat in %d seconds and did not answer", a.id, secs)
		}
	}})
}
