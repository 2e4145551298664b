package master

import (
	"context"
	"fmt"
	"sort"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// *Master implements Actions for the web UI and the REST server.
var _ Actions = (*Master)(nil)

// Status is the state this master reports (see statusLocked).
func (m *Master) Status() protocol.MasterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked()
}

// View returns a consistent snapshot of the master's state.
func (m *Master) View() View {
	lastContact := m.elector.LastContact()
	m.mu.Lock()
	defer m.mu.Unlock()
	v := View{ID: m.id, URL: m.url, WebUIURL: m.webUIURL, RESTURL: m.restURL, Status: m.statusLocked(), HA: m.ha}
	v.HA.LastZKContact = lastContact
	v.HA.Recovering = m.term != nil && m.term.recovering
	if m.leaderKnown {
		v.Epoch = m.leader.Epoch
		v.LeaderID, v.LeaderURL, v.LeaderWebUIURL, v.LeaderSince = m.leader.ID, m.leader.RPCURL, m.leader.WebUIURL, m.leader.Since
		v.LeaderRESTURL = m.leader.RESTURL
	}
	if t := m.term; t != nil && v.Status != protocol.MasterStandby {
		v.Epoch = t.epoch
		v.LeaderID, v.LeaderURL, v.LeaderWebUIURL, v.LeaderSince = m.id, m.url, m.webUIURL, t.elected
		v.LeaderRESTURL = m.restURL
	}
	st := m.st
	for _, w := range workersByID(st.workers) {
		v.Workers = append(v.Workers, WorkerView{ID: w.id, Host: w.host, Port: w.port, WebUIAddress: w.webUIURL,
			Cores: w.cores, CoresUsed: w.coresUsed, MemoryMB: w.memMB, MemoryUsedMB: w.memUsed,
			State: w.state, LastHeartbeat: w.lastHeartbeat})
	}
	for _, a := range st.waitingApps {
		v.ActiveApps = append(v.ActiveApps, appView(a))
	}
	for i := len(st.completedApps) - 1; i >= 0; i-- {
		v.CompletedApps = append(v.CompletedApps, appView(st.completedApps[i]))
	}
	for _, d := range driversBySubmit(st.drivers) {
		v.ActiveDrivers = append(v.ActiveDrivers, driverView(d))
	}
	for i := len(st.completedDrvs) - 1; i >= 0; i-- {
		v.CompletedDrivers = append(v.CompletedDrivers, driverView(st.completedDrvs[i]))
	}
	return v
}

func appView(a *appInfo) AppView {
	v := AppView{ID: a.id, Name: a.desc.Name, User: a.desc.User, Cores: a.granted, MaxCores: a.desc.MaxCores,
		ExecutorCores: a.desc.ExecutorCores, MemoryPerExecutorMB: a.desc.ExecutorMemMB, Executors: len(a.executors),
		SubmitTime: a.submitTime, EndTime: a.endTime, State: a.state, WaitingReason: a.waiting,
		Command: append([]string(nil), a.desc.Command...), AppUIURL: a.desc.AppUIURL, ExecutorLimit: -1}
	if a.limitSet {
		v.ExecutorLimit = a.limit
	}
	if a.state.Finished() {
		v.Cores = a.coresAtEnd // Spark shows what it held, not 0
	}
	for _, e := range a.executors {
		v.ExecutorList = append(v.ExecutorList, ExecutorView{ID: e.id, WorkerID: e.worker.id, WorkerHostPort: e.worker.hostPort(),
			WorkerWebUIURL: e.worker.webUIURL, Cores: e.cores, MemoryMB: e.memMB, State: e.state})
	}
	sort.Slice(v.ExecutorList, func(i, j int) bool { return v.ExecutorList[i].ID < v.ExecutorList[j].ID })
	return v
}

func driverView(d *driverInfo) DriverView {
	v := DriverView{ID: d.id, SubmitTime: d.submitTime, State: d.state, Cores: d.spec.Cores, MemoryMB: d.spec.MemoryMB,
		MainClass: d.spec.MainClass, Supervise: d.spec.Supervise, Exception: d.exception}
	if v.MainClass == "" && len(d.spec.Command) > 0 {
		v.MainClass = d.spec.Command[0]
	}
	v.WorkerID, v.WorkerHostPort = d.workerShown()
	return v
}

// workerShown is the worker d runs on: its own, or, while a new leader
// recovers and that worker has not answered yet, the one its record names.
func (d *driverInfo) workerShown() (id, hostPort string) {
	switch {
	case d.worker != nil:
		return d.worker.id, d.worker.hostPort()
	case d.recoveredWorker != "" && d.state == protocol.DriverRunning:
		return d.recoveredWorker, ""
	}
	return "", ""
}

// KillApp kills an active application (ALIVE only).
func (m *Master) KillApp(_ context.Context, appID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(false); na != nil {
		return na
	}
	a := m.st.apps[appID]
	if a == nil {
		return fmt.Errorf("%w: application %s", ErrNotFound, appID)
	}
	m.log.Infof("Received kill request for application %s", appID)
	m.removeAppLocked(a, protocol.AppKilled, "Killed by the master (kill request)")
	return nil
}

// KillDriver kills a driver: a waiting one ends KILLED at once; a running
// one is killed by its worker, which then reports KILLED.
func (m *Master) KillDriver(_ context.Context, driverID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(false); na != nil {
		return na
	}
	d := m.st.drivers[driverID]
	if d == nil {
		return fmt.Errorf("%w: driver %s has already finished or does not exist", ErrNotFound, driverID)
	}
	m.killDriverLocked(d)
	return nil
}

func (m *Master) killDriverLocked(d *driverInfo) {
	m.log.Infof("Asked to kill driver %s", d.id)
	if d.worker == nil {
		m.removeDriverLocked(d, protocol.DriverKilled, "")
	} else {
		m.sendAsyncLocked(d.worker.url, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: m.stampLocked(), DriverID: d.id})
	}
	m.log.Infof("Kill request for %s submitted", d.id)
}

// SubmitDriver queues a cluster-mode driver. It returns only after the
// driver is persisted; the write is retried while the term lasts, so a
// store that answers late costs time, not a second submission.
func (m *Master) SubmitDriver(ctx context.Context, spec protocol.DriverSpec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	if err := protocol.CheckBounds(spec); err != nil {
		return "", err
	}
	if err := protocol.CheckRecordSize(spec); err != nil {
		return "", err
	}
	m.mu.Lock()
	if na := m.notAliveLocked(false); na != nil {
		m.mu.Unlock()
		return "", na
	}
	st, t, now := m.st, m.term, m.now()
	if n := len(st.drivers); n >= m.cfg.MaxDrivers {
		m.mu.Unlock()
		return "", errLimit("drivers", "spark.deploy.maxDrivers", n, m.cfg.MaxDrivers)
	}
	d := &driverInfo{id: st.newDriverID(now), spec: spec, submitTime: now, state: protocol.DriverSubmitted}
	rec := d.record()
	g := m.persistLocked(recovery.KindDriver, d.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutDriver(ctx, rec) },
		func(err error) {
			if err != nil {
				return
			}
			name := spec.MainClass
			if name == "" {
				name = spec.Command[0]
			}
			m.log.Infof("Driver submitted %s", name)
			st.drivers[d.id] = d
			st.waitingDrivers = append(st.waitingDrivers, d)
			m.scheduleSafeLocked()
		})
	m.mu.Unlock()
	perr := waitGate(ctx, t, g, "driver "+d.id)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t {
		return "", &NotAliveError{State: m.statusLocked(), Hint: m.hintLocked()}
	}
	if perr != nil {
		return "", perr
	}
	return d.id, nil
}

// DriverStatus reports a driver (ALIVE only). An unknown id is Found=false.
func (m *Master) DriverStatus(_ context.Context, driverID string) (protocol.DriverStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(false); na != nil {
		return protocol.DriverStatus{}, na
	}
	d := m.st.drivers[driverID]
	if d == nil {
		for _, c := range m.st.completedDrvs {
			if c.id == driverID {
				d = c
			}
		}
	}
	if d == nil {
		return protocol.DriverStatus{DriverID: driverID}, nil
	}
	s := protocol.DriverStatus{DriverID: d.id, Found: true, State: d.state, Exception: d.exception}
	s.WorkerID, s.WorkerHostPort = d.workerShown()
	return s, nil
}

// KillAllDrivers kills every active driver.
func (m *Master) KillAllDrivers(_ context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(false); na != nil {
		return na
	}
	for _, d := range driversBySubmit(m.st.drivers) {
		m.killDriverLocked(d)
	}
	return nil
}

// ClearCompleted forgets completed applications and drivers.
func (m *Master) ClearCompleted(_ context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(false); na != nil {
		return na
	}
	m.st.completedApps = nil
	m.st.completedDrvs = nil
	return nil
}
