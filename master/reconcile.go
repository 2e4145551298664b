package master

import (
	"context"
	"time"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// Two-way reconciliation between the master's view of a worker and what
// the worker runs.
//
//   - What a worker runs that the master does not know (an executor of an
//     application that ended, a copy the master moved elsewhere, e.g. a
//     driver relaunched on another worker) is killed: on registration
//     (WorkerLatestState), on re-attach after a failover, and on every
//     heartbeat.
//   - What the master has on a worker that the worker does not run is
//     marked lost and its resources freed: at once on re-attach after a
//     failover (the worker's answer is a complete list, taken after it
//     adopted the new epoch), and otherwise after reconcileMisses
//     consecutive heartbeats that do not list it, counted only once the
//     worker has answered the launch (a heartbeat built before the launch
//     arrived proves nothing). An end whose report is still queued on the
//     worker is listed in the heartbeat (Running.Ended) and applied as
//     reported, so a delayed report never turns an EXITED into a LOST.
//   - A launch the worker definitely refused (it answered with an error, or
//     the connection was refused) frees its resources at once and the
//     scheduler tries again (executorLaunchedLocked, driverLaunchedLocked).

// reconcileMisses is how many heartbeats in a row must miss an executor or
// driver before the master marks it lost.
const reconcileMisses = 2

func execSet(refs []protocol.ExecutorRef) map[execKey]bool {
	out := make(map[execKey]bool, len(refs))
	for _, r := range refs {
		out[execKey{r.AppID, r.ExecutorID}] = true
	}
	return out
}

// reconcileWorkerLocked compares w with what its heartbeat says it runs.
func (m *Master) reconcileWorkerLocked(w *workerInfo, running protocol.Running) {
	runs := execSet(running.Executors)
	for _, ed := range running.Ended {
		// Its report is still on its way: apply it now rather than take the
		// executor for lost.
		if a := m.st.apps[ed.AppID]; a != nil {
			if e := a.executors[ed.ExecutorID]; e != nil && e.worker == w && !runs[e.key()] {
				m.executorEndedLocked(e, ed.State, ed.Message, ed.ExitCode, countsAsFailure(e.state, ed.State, ed.ExitCode))
			}
		}
	}
	for _, e := range executorsByID(w.executors) {
		if runs[e.key()] {
			e.acked, e.missed = true, 0
			continue
		}
		if !e.acked {
			continue
		}
		e.missed++
		if e.missed >= reconcileMisses {
			m.ha.Reconciled.MarkedLost++
			m.log.Warnf("Worker %s does not run executor %s/%d (missing from %d heartbeats); marking it lost", w.id, e.app.id, e.id, e.missed)
			m.executorEndedLocked(e, protocol.ExecutorLost, "the worker does not run it", nil, false)
		}
	}
	drvRuns := map[string]bool{}
	for _, id := range running.Drivers {
		drvRuns[id] = true
	}
	for _, d := range driversBySubmit(w.drivers) {
		if drvRuns[d.id] {
			d.acked, d.missed = true, 0
			continue
		}
		if !d.acked {
			continue
		}
		d.missed++
		if d.missed >= reconcileMisses {
			m.ha.Reconciled.MarkedLost++
			m.log.Warnf("Worker %s does not run driver %s (missing from %d heartbeats); treating it as lost", w.id, d.id, d.missed)
			m.driverLostLocked(d, "the worker does not run it")
		}
	}
	st := protocol.WorkerSchedulerState{WorkerID: w.id}
	for _, r := range running.Executors {
		st.Executors = append(st.Executors, protocol.ExecutorDescription{AppID: r.AppID, ExecutorID: r.ExecutorID, State: protocol.ExecutorRunning})
	}
	for _, id := range running.Drivers {
		st.Drivers = append(st.Drivers, protocol.DriverDescription{DriverID: id, State: protocol.DriverRunning})
	}
	m.killUnknownLocked(w, st)
}

// killUnknownLocked kills what w reports running that the master does not
// have on w (SPARK-13604).
func (m *Master) killUnknownLocked(w *workerInfo, st protocol.WorkerSchedulerState) {
	for _, ed := range st.Executors {
		if ed.State.Finished() {
			continue
		}
		a := m.st.apps[ed.AppID]
		if a != nil && a.untracked && a.executors[ed.ExecutorID] == nil {
			continue // an older leader's record: adopted on re-attach, not here
		}
		if a == nil || a.executors[ed.ExecutorID] == nil || a.executors[ed.ExecutorID].worker != w {
			m.ha.Reconciled.KilledUnknown++
			m.log.Warnf("Worker %s runs unknown executor %s/%d; killing it", w.id, ed.AppID, ed.ExecutorID)
			m.killExecutorOnWorkerLocked(w, ed.AppID, ed.ExecutorID)
		}
	}
	for _, dd := range st.Drivers {
		if dd.State.Finished() {
			continue
		}
		if d := m.st.drivers[dd.DriverID]; d != nil && d.worker == nil && w.state == protocol.WorkerAlive {
			// A supervised driver waiting to be relaunched under its id (its
			// worker was lost) that this worker still runs: the same driver,
			// so it is re-attached here rather than killed and started again.
			m.log.Infof("Worker %s still runs driver %s, which waits to be relaunched; re-attaching it", w.id, d.id)
			m.adoptDriverLocked(w, d, dd.State)
			continue
		}
		if d := m.st.drivers[dd.DriverID]; d == nil || d.worker != w {
			m.ha.Reconciled.KilledUnknown++
			m.log.Warnf("Worker %s runs unknown driver %s; killing it", w.id, dd.DriverID)
			m.sendAsyncLocked(w.url, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: m.stampLocked(), DriverID: dd.DriverID})
		}
	}
}

// adoptDriverLocked attaches a driver that waits (unassigned) to w, which
// reports it running, and persists the assignment.
func (m *Master) adoptDriverLocked(w *workerInfo, d *driverInfo, state protocol.DriverState) {
	d.worker = w
	d.state = protocol.DriverRunning
	if state == protocol.DriverRelaunching {
		d.state = state
	}
	d.acked, d.missed = true, 0
	d.notBefore = time.Time{}
	w.addDriver(d)
	m.st.waitingDrivers = removeDrv(m.st.waitingDrivers, d)
	rec := d.record()
	m.persistLocked(recovery.KindDriver, d.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutDriver(ctx, rec) }, nil)
}

// driverLostLocked ends a driver whose worker does not run it: a supervised
// one is relaunched, the others end in ERROR.
func (m *Master) driverLostLocked(d *driverInfo, why string) {
	if d.worker != nil {
		d.worker.removeDriver(d)
		d.worker = nil
	}
	if d.spec.Supervise {
		m.relaunchDriverLocked(d)
		return
	}
	m.log.Infof("Not re-launching %s because it was not supervised", d.id)
	m.removeDriverLocked(d, protocol.DriverError, why)
}
