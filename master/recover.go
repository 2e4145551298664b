package master

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// recoveryTarget is a worker or application told MasterChanged.
type recoveryTarget struct {
	workerID, appID string
	url             string
}

// beginRecoveryLocked loads the stored records, every worker and app
// UNKNOWN, and returns who must be told MasterChanged. The executors an
// application's record lists are put back on their workers, unconfirmed:
// re-attaching the worker confirms them or marks them lost.
func (m *Master) beginRecoveryLocked(stored recovery.State) []recoveryTarget {
	st := m.st
	now := m.now()
	var targets []recoveryTarget
	for _, r := range stored.Apps {
		st.storedIDs[r.ID] = true
	}
	for _, r := range stored.Drivers {
		st.storedIDs[r.ID] = true
	}
	sort.Slice(stored.Workers, func(i, j int) bool { return stored.Workers[i].ID < stored.Workers[j].ID })
	for _, r := range stored.Workers {
		if _, dup := st.workers[r.ID]; dup {
			continue
		}
		w := &workerInfo{id: r.ID, host: r.Host, port: r.Port, url: r.URL, webUIURL: r.WebUIURL,
			cores: r.Cores, memMB: r.MemoryMB, state: protocol.WorkerUnknown, lastHeartbeat: now, since: r.Since,
			executors: map[execKey]*executorInfo{}, drivers: map[string]*driverInfo{}}
		if old, ok := st.workerByAddr[w.hostPort()]; ok {
			// Two records for one address: keep the newer.
			if old.since.After(w.since) {
				m.removeRecordLocked(recovery.KindWorker, w.id)
				continue
			}
			delete(st.workers, old.id)
			m.removeRecordLocked(recovery.KindWorker, old.id)
			targets = dropTarget(targets, old.id)
		}
		st.workers[w.id] = w
		st.workerByAddr[w.hostPort()] = w
		m.logRecoveringLocked(len(stored.Workers), "Trying to recover worker: %s", w.id)
		targets = append(targets, recoveryTarget{workerID: w.id, url: w.url})
	}
	sort.Slice(stored.Apps, func(i, j int) bool { return stored.Apps[i].SubmitTime.Before(stored.Apps[j].SubmitTime) })
	for _, r := range stored.Apps {
		if r.State.Finished() {
			m.removeRecordLocked(recovery.KindApp, r.ID)
			continue
		}
		if _, dup := st.apps[r.ID]; dup {
			continue
		}
		if other, dup := st.appByClient[r.ClientURL]; dup {
			m.log.Warnf("Stored app %s has the same client address as %s; ignoring it", r.ID, other.id)
			continue
		}
		a := &appInfo{id: r.ID, desc: r.Desc, clientURL: r.ClientURL, submitTime: r.SubmitTime,
			state: protocol.AppUnknown, executors: map[int]*executorInfo{}, nextExecID: r.NextExecID,
			lastHeartbeat: now, untracked: !r.ExecutorsTracked} // a fresh grace period in every term
		if r.ExecutorLimit != nil {
			a.limit, a.limitSet = *r.ExecutorLimit, true
		}
		for _, er := range r.Executors {
			w := st.workers[er.WorkerID]
			if w == nil {
				a.lostOnRecovery = append(a.lostOnRecovery, er.ID)
				a.nextExecID = max(a.nextExecID, er.ID+1)
				continue
			}
			e := &executorInfo{app: a, id: er.ID, worker: w, cores: er.Cores, memMB: er.MemoryMB, state: protocol.ExecutorRunning}
			a.addExecutor(e)
			w.addExecutor(e)
		}
		st.apps[a.id] = a
		st.appByClient[a.clientURL] = a
		st.waitingApps = append(st.waitingApps, a)
		m.logRecoveringLocked(len(stored.Apps), "Trying to recover app: %s", a.id)
		targets = append(targets, recoveryTarget{appID: a.id, url: a.clientURL})
	}
	sort.Slice(stored.Drivers, func(i, j int) bool {
		return stored.Drivers[i].SubmitTime.Before(stored.Drivers[j].SubmitTime) ||
			stored.Drivers[i].SubmitTime.Equal(stored.Drivers[j].SubmitTime) && stored.Drivers[i].ID < stored.Drivers[j].ID
	})
	for _, r := range stored.Drivers {
		if r.State.Finished() {
			m.removeRecordLocked(recovery.KindDriver, r.ID)
			continue
		}
		d := &driverInfo{id: r.ID, spec: r.Spec, submitTime: r.SubmitTime, state: r.State, recoveredWorker: r.WorkerID, attempt: r.Attempt}
		if d.state == "" {
			d.state = protocol.DriverSubmitted
		}
		st.drivers[d.id] = d
		if d.recoveredWorker == "" && (d.state == protocol.DriverSubmitted || d.state == protocol.DriverRelaunching) {
			// On no worker (never launched, or waiting to be relaunched): it
			// waits again under its own id, at once.
			st.waitingDrivers = append(st.waitingDrivers, d)
		}
	}
	if len(stored.Workers) > recoveryLogPerPeer || len(stored.Apps) > recoveryLogPerPeer {
		m.log.Infof("Trying to recover %d workers, %d applications and %d drivers", len(stored.Workers), len(stored.Apps), len(stored.Drivers))
	}
	// Workers are contacted before applications: a worker's answer may end
	// executors, and the driver hears of it after its own MasterChanged.
	return targets
}

// recoveryLogPerPeer: up to this many workers (or applications), recovery
// logs Spark's lines per peer ("Trying to recover", "has been
// re-registered") at Info; beyond it, at Debug, with one summary line, so
// that taking office over a large cluster does not hold the state lock for
// thousands of log lines.
const recoveryLogPerPeer = 100

func (m *Master) logRecoveringLocked(n int, format string, args ...any) {
	if n > recoveryLogPerPeer {
		m.log.Debugf(format, args...)
		return
	}
	m.log.Infof(format, args...)
}

func dropTarget(ts []recoveryTarget, workerID string) []recoveryTarget {
	for i, t := range ts {
		if t.workerID == workerID {
			return append(ts[:i], ts[i+1:]...)
		}
	}
	return ts
}

// contactAllLocked queues MasterChanged for every target, first in each
// peer's queue. Peers are contacted concurrently (one sender each). A
// refused connection marks the peer lost at once; a peer that does not
// answer stays UNKNOWN until the recovery timeout.
func (m *Master) contactAllLocked(t *term, targets []recoveryTarget) {
	msg := protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: t.epoch, MasterURL: m.url}, MasterWebUIURL: m.webUIURL}
	for _, tg := range targets {
		if tg.workerID != "" {
			resp := &protocol.WorkerSchedulerState{}
			t.out.enqueue(tg.url, outMsg{path: protocol.PathWorkerMasterChanged, req: msg, resp: resp,
				done: func(err error) { m.workerAnswered(t, tg.workerID, *resp, err) }})
			continue
		}
		resp := &protocol.MasterChangeAcknowledged{}
		t.out.enqueue(tg.url, outMsg{path: protocol.PathAppMasterChanged, req: msg, resp: resp,
			done: func(err error) { m.appAnswered(t, tg.appID, err) }})
	}
}

func (m *Master) workerAnswered(t *term, id string, resp protocol.WorkerSchedulerState, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t {
		return
	}
	w := m.st.workers[id]
	if w == nil || w.state != protocol.WorkerUnknown && !w.needsSync {
		return
	}
	if err != nil {
		if errors.Is(err, protocol.ErrConnRefused) && w.state == protocol.WorkerUnknown {
			m.log.Warnf("Worker %s refused the connection during recovery; removing it", id)
			m.removeWorkerLocked(w, "worker unreachable during recovery")
			m.maybeCompleteRecoveryLocked(t)
		} else {
			m.log.WithError(err).Warnf("Worker %s did not answer MasterChanged", id)
		}
		return
	}
	m.reattachWorkerLocked(w, resp)
	m.maybeCompleteRecoveryLocked(t)
}

// reattachWorkerLocked marks a recovered (or re-registered) worker ALIVE
// and reconciles what the master has on it with its own complete report:
// executors it runs are confirmed (or killed when the master does not have
// them there), executors that ended meanwhile end (their drivers are told,
// even when no master led when they ended), and executors the master has on
// it that it neither runs nor ran recently are marked lost.
func (m *Master) reattachWorkerLocked(w *workerInfo, resp protocol.WorkerSchedulerState) {
	wasUnknown := w.state == protocol.WorkerUnknown
	w.state = protocol.WorkerAlive
	w.needsSync = false
	w.lastHeartbeat = m.now()
	running := map[execKey]bool{}
	for _, ed := range resp.Executors {
		if ed.State.Finished() {
			continue
		}
		a := m.st.apps[ed.AppID]
		k := execKey{ed.AppID, ed.ExecutorID}
		var e *executorInfo
		if a != nil {
			e = a.executors[ed.ExecutorID]
		}
		switch {
		case e != nil && e.worker == w:
			e.state, e.acked, e.missed = ed.State, true, 0
			running[k] = true
		case e == nil && a != nil && a.untracked:
			// A record of an older sparkd lists no executors: adopt it.
			e = &executorInfo{app: a, id: ed.ExecutorID, worker: w, cores: ed.Cores, memMB: ed.MemoryMB, state: ed.State, acked: true}
			a.addExecutor(e)
			w.addExecutor(e)
			running[k] = true
		default:
			if e != nil {
				m.log.Warnf("Worker %s runs executor %s/%d, which the master has on %s; killing this copy", w.id, ed.AppID, ed.ExecutorID, e.worker.id)
			} else {
				m.log.Warnf("Worker %s runs unknown executor %s/%d; killing it", w.id, ed.AppID, ed.ExecutorID)
			}
			m.ha.Reconciled.KilledUnknown++
			m.killExecutorOnWorkerLocked(w, ed.AppID, ed.ExecutorID)
		}
	}
	for _, ed := range resp.FinishedExecutors {
		a := m.st.apps[ed.AppID]
		if a == nil || running[execKey{ed.AppID, ed.ExecutorID}] {
			continue
		}
		if e := a.executors[ed.ExecutorID]; e != nil && e.worker == w {
			m.ha.Reconciled.EndedWhileLeaderless++
			m.log.Infof("Executor %s/%d ended while the master changed: %s", a.id, e.id, ed.State)
			m.executorEndedLocked(e, ed.State, ed.Message, ed.ExitCode, countsAsFailure(e.state, ed.State, ed.ExitCode))
		}
	}
	for _, e := range executorsByID(w.executors) {
		if running[e.key()] || !e.launchedAt.IsZero() && !e.acked {
			continue // confirmed, or a launch of this term still on its way
		}
		m.ha.Reconciled.MarkedLost++
		m.log.Warnf("Worker %s does not run executor %s/%d; marking it lost", w.id, e.app.id, e.id)
		m.executorEndedLocked(e, protocol.ExecutorLost, "not running on its worker after the master changed", nil, false)
	}
	for _, dd := range resp.Drivers {
		if dd.State.Finished() {
			continue
		}
		d := m.st.drivers[dd.DriverID]
		if d == nil || (d.worker != nil && d.worker != w) {
			m.ha.Reconciled.KilledUnknown++
			m.sendAsyncLocked(w.url, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: m.stampLocked(), DriverID: dd.DriverID})
			continue
		}
		d.acked, d.missed = true, 0
		if d.worker == nil {
			d.worker = w
			d.state = protocol.DriverRunning
			w.addDriver(d)
			m.st.waitingDrivers = removeDrv(m.st.waitingDrivers, d)
		}
	}
	for _, dd := range resp.FinishedDrivers {
		d := m.st.drivers[dd.DriverID]
		if d == nil || d.worker != nil && d.worker != w || d.worker == nil && d.recoveredWorker != w.id {
			continue
		}
		m.ha.Reconciled.EndedWhileLeaderless++
		m.log.Infof("Driver %s ended while the master changed: %s", d.id, dd.State)
		m.driverStateLocked(d, dd.State, dd.Exception)
	}
	if wasUnknown {
		m.logRecoveringLocked(len(m.st.workers), "Worker has been re-registered: %s", w.id)
	}
}

func (m *Master) appAnswered(t *term, id string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t {
		return
	}
	a := m.st.apps[id]
	if a == nil || a.state != protocol.AppUnknown {
		return
	}
	if err != nil {
		if errors.Is(err, protocol.ErrConnRefused) {
			m.log.Warnf("Application %s refused the connection during recovery; finishing it", id)
			m.removeAppLocked(a, protocol.AppFinished, "driver unreachable during recovery")
			m.maybeCompleteRecoveryLocked(t)
		} else {
			m.log.WithError(err).Warnf("Application %s did not answer MasterChanged", id)
		}
		return
	}
	m.appReregisteredLocked(a)
	m.maybeCompleteRecoveryLocked(t)
}

func (m *Master) appReregisteredLocked(a *appInfo) {
	m.appAliveLocked(a)
	a.state = protocol.AppWaiting
	m.logRecoveringLocked(len(m.st.apps), "Application has been re-registered: %s", a.id)
}

// canCompleteRecoveryLocked: nothing is UNKNOWN any more, and every worker
// that re-registered has reported what it runs. It remembers the peer that
// held recovery up and looks at it first, so the answers of a recovery of N
// peers cost O(N log N) in all, not O(N) each.
func (m *Master) canCompleteRecoveryLocked() bool {
	st := m.st
	if b := st.recoveryBlocker; b.w != nil && st.workers[b.w.id] == b.w && workerBlocksRecovery(b.w) ||
		b.a != nil && st.apps[b.a.id] == b.a && b.a.state == protocol.AppUnknown {
		return false
	}
	st.recoveryBlocker = recoveryBlocker{}
	for _, w := range st.workers {
		if workerBlocksRecovery(w) {
			st.recoveryBlocker.w = w
			return false
		}
	}
	for _, a := range st.apps {
		if a.state == protocol.AppUnknown {
			st.recoveryBlocker.a = a
			return false
		}
	}
	return true
}

func workerBlocksRecovery(w *workerInfo) bool {
	return w.state == protocol.WorkerUnknown || w.needsSync
}

// recoveryBlocker is a worker or application that recovery last waited for.
type recoveryBlocker struct {
	w *workerInfo
	a *appInfo
}

func (m *Master) maybeCompleteRecoveryLocked(t *term) {
	if m.term == t && t.recovering && m.canCompleteRecoveryLocked() {
		m.completeRecoveryLocked(t)
	}
}

// testHookCompleting, when set by a test, runs inside COMPLETING_RECOVERY.
var testHookCompleting func()

// completeRecoveryLocked removes non-responders and relaunches supervised
// drivers that lost their worker. It is exception-safe: a panic in any step
// is logged and the recovery still ends.
func (m *Master) completeRecoveryLocked(t *term) {
	if m.term != t || !t.recovering {
		return
	}
	t.recovering = false
	defer func() {
		if r := recover(); r != nil {
			m.log.Errorf("Error while completing recovery (resuming operations anyway): %v", r)
		}
		if m.term == t {
			m.ha.LastRecovery = m.now().Sub(t.elected)
			m.log.WithField("epoch", t.epoch).WithField("ms", m.ha.LastRecovery.Milliseconds()).
				Info("Recovery complete - resuming operations!")
			m.scheduleSafeLocked()
		}
	}()
	if testHookCompleting != nil {
		testHookCompleting()
	}
	st := m.st
	for _, w := range workersByID(st.workers) {
		if w.state == protocol.WorkerUnknown {
			m.removeWorkerLocked(w, "Not responding for recovery")
		}
	}
	for _, a := range append([]*appInfo(nil), st.waitingApps...) {
		if len(a.lostOnRecovery) > 0 && a.state != protocol.AppUnknown {
			for _, id := range a.lostOnRecovery {
				m.ha.Reconciled.MarkedLost++
				m.pushToAppLocked(a, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: m.stampLocked(), ExecutorID: id,
					State: protocol.ExecutorLost, Message: "worker lost: it did not come back after the master changed", WorkerLost: true})
			}
			a.lostOnRecovery = nil
			m.persistAppLocked(a)
		}
		switch a.state {
		case protocol.AppUnknown:
			m.removeAppLocked(a, protocol.AppFinished, "Not responding for recovery")
		case protocol.AppWaiting:
			if len(a.executors) > 0 {
				a.state = protocol.AppRunning
			}
		}
	}
	for _, d := range driversBySubmit(st.drivers) {
		if d.worker != nil {
			continue
		}
		if w := st.workers[d.recoveredWorker]; w != nil && w.state == protocol.WorkerAlive && w.needsSync {
			// Its worker re-registered and has yet to say what it runs:
			// that report re-attaches the driver, or ends it.
			continue
		}
		switch {
		case d.recoveredWorker == "" && (d.state == protocol.DriverSubmitted || d.state == protocol.DriverRelaunching):
			// Not on a worker (never launched, or waiting to be relaunched):
			// it waits again under its own id (unless it waits already: a
			// relaunch made during recovery).
			if !slices.Contains(st.waitingDrivers, d) {
				st.waitingDrivers = append(st.waitingDrivers, d)
			}
		case d.spec.Supervise:
			m.log.Infof("Driver %s was not found after master recovery", d.id)
			m.relaunchDriverLocked(d)
		default:
			m.log.Infof("Driver %s was not found after master recovery", d.id)
			m.log.Infof("Did not re-launch %s because it was not supervised", d.id)
			m.removeDriverLocked(d, protocol.DriverError, fmt.Sprintf("driver was not found after master recovery (worker %s lost)", d.recoveredWorker))
		}
	}
}
