package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// RPC handlers of the spark:// listener. Each decodes and validates its body
// (a 400 names the bad field), takes the state lock for in-memory work only,
// and waits for store writes with the lock released.

// contactStale reports whether this master has not heard from the
// coordination service for longer than Config.SelfFenceAfter: it must not
// act or report as leader, whatever its term says.
func (m *Master) contactStale() bool {
	if m.cfg.SelfFenceAfter <= 0 {
		return false
	}
	lc := m.elector.LastContact()
	return !lc.IsZero() && time.Since(lc) > m.cfg.SelfFenceAfter
}

// statusLocked is the state this master reports: STANDBY while it is
// self-fenced (contact with the coordination service stale, or a pause not
// yet confirmed). Every report of ALIVE (/json, /readyz, PathLeader, View,
// metrics) and every "may I serve this" check goes through it.
func (m *Master) statusLocked() protocol.MasterState {
	if m.status != protocol.MasterStandby && m.selfFenced() != "" {
		return protocol.MasterStandby
	}
	return m.status
}

// hintLocked is the leader hint a non-ALIVE master gives.
func (m *Master) hintLocked() protocol.LeaderHint {
	h := protocol.LeaderHint{State: m.statusLocked()}
	if m.leaderKnown {
		h.LeaderURL, h.LeaderWebUI, h.LeaderREST, h.Epoch = m.leader.RPCURL, m.leader.WebUIURL, m.leader.RESTURL, m.leader.Epoch
	}
	if m.term != nil {
		h.Epoch = m.term.epoch
	}
	return h
}

// notAliveLocked is the error for a request this master cannot serve in its
// state. allowRecovering admits RECOVERING (re-registrations, SPARK-46346).
func (m *Master) notAliveLocked(allowRecovering bool) *NotAliveError {
	st := m.statusLocked()
	if m.term != nil && (st == protocol.MasterAlive || allowRecovering && st == protocol.MasterRecovering) {
		return nil
	}
	return &NotAliveError{State: st, Hint: m.hintLocked()}
}

// rpcErr maps master errors to RPC statuses: not ALIVE → 503 plus the
// leader hint; not found → 404; persistence failures → 503.
func rpcErr(err error) error {
	var na *NotAliveError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &na):
		h := na.Hint
		msg := fmt.Sprintf("master is %s, not ALIVE", na.State)
		if h.LeaderURL != "" {
			msg += "; the leader is " + h.LeaderURL
		}
		return &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: msg, Hint: &h}
	case errors.Is(err, ErrNotFound):
		return &protocol.StatusError{Code: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, errPersist):
		return &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: err.Error()}
	}
	return err
}

// errPersist wraps a store write that failed, so the caller retries.
var errPersist = errors.New("master: could not persist")

func decode[T interface{ Validate() error }](r *http.Request) (T, error) {
	var v T
	if err := protocol.DecodeMessage(r, &v); err != nil {
		return v, err
	}
	if err := protocol.CheckRecordSize(v); err != nil {
		return v, err
	}
	return v, v.Validate()
}

// decodeOptional decodes a body that older senders may leave out: an empty
// body is accepted as the zero value; anything else must be valid JSON of
// v's shape (400 naming the field otherwise).
func decodeOptional(r *http.Request, v any) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxBodyBytes+1)) // DecodeBody reports an oversized body
	if err != nil {
		return &protocol.FieldError{Field: "body", Reason: "could not be read: " + err.Error()}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return protocol.DecodeMessage(r, v)
}

// matchPathID checks that an id named in the body (field) is the one in the
// URL path; required says whether the body must name it at all. A message
// about one worker or application must never act on another.
func matchPathID(field, inBody, inPath string, required bool) error {
	switch {
	case inBody == "" && required:
		return &protocol.FieldError{Field: field, Reason: "is required"}
	case inBody != "" && inBody != inPath:
		return &protocol.FieldError{Field: field, Reason: fmt.Sprintf("%q does not match %q in the path", inBody, inPath)}
	}
	return nil
}

func (m *Master) handleLeader(r *http.Request) (any, error) {
	m.mu.Lock()
	li := protocol.LeaderInfo{ID: m.id, URL: m.url, State: m.statusLocked()}
	if m.leaderKnown {
		li.LeaderID, li.LeaderURL, li.LeaderWebUI, li.LeaderREST = m.leader.ID, m.leader.RPCURL, m.leader.WebUIURL, m.leader.RESTURL
		li.Epoch = m.leader.Epoch
		if !m.leader.Since.IsZero() {
			li.LeaderSince = m.leader.Since.UTC().Format(time.RFC3339)
		}
	}
	if m.term != nil && li.State != protocol.MasterStandby {
		li.Epoch = m.term.epoch
		li.LeaderID, li.LeaderURL, li.LeaderWebUI, li.LeaderREST = m.id, m.url, m.webUIURL, m.restURL
		li.LeaderSince = m.term.elected.UTC().Format(time.RFC3339)
	}
	m.mu.Unlock()
	return li, nil
}

func (m *Master) handleRegisterWorker(r *http.Request) (any, error) {
	req, err := decode[protocol.RegisterWorker](r)
	if err != nil {
		return nil, err
	}
	if err := m.checkWorkerCaller(r, req.ID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	na := m.notAliveLocked(true) // a standby answers with its hint, not after a DNS lookup
	m.mu.Unlock()
	if na != nil {
		return nil, rpcErr(na)
	}
	if err := m.checkWorkerAddress(r.Context(), r, req); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if na := m.notAliveLocked(true); na != nil {
		m.mu.Unlock()
		return nil, rpcErr(na)
	}
	st, t, now := m.st, m.term, m.now()
	hostPort := fmt.Sprintf("%s:%d", req.Host, req.Port)
	if !st.pendingWorkers[req.ID] { // a concurrent attempt is logged once
		m.log.Infof("Registering worker %s with %d cores, %s RAM", hostPort, req.Cores, megabytesToString(req.MemoryMB))
	}
	if w := st.workers[req.ID]; w != nil && w.state != protocol.WorkerDead {
		// Duplicate: never makes the worker exit (SPARK-23191).
		if w.state == protocol.WorkerUnknown {
			w.state = protocol.WorkerAlive
			w.needsSync = true
			m.logRecoveringLocked(len(st.workers), "Worker has been re-registered: %s", w.id)
			m.maybeCompleteRecoveryLocked(t)
		} else {
			m.log.Warnf("Worker %s registered again (duplicate); keeping it", w.id)
		}
		w.lastHeartbeat = now
		resp := protocol.RegisteredWorker{Stamp: m.stampLocked(), MasterWebUIURL: m.webUIURL, Duplicate: true}
		m.mu.Unlock()
		return resp, nil
	}
	if st.pendingWorkers[req.ID] {
		m.mu.Unlock()
		return nil, &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: "registration of " + req.ID + " is in progress; retry"}
	}
	if n := len(st.workers) + len(st.pendingWorkers); n >= m.cfg.MaxWorkers {
		m.mu.Unlock()
		return nil, errLimit("workers", "spark.deploy.maxWorkers", n, m.cfg.MaxWorkers)
	}
	if old := st.workerByAddr[hostPort]; old != nil && old.id != req.ID {
		m.log.Infof("Worker %s replaces %s at the same address %s", req.ID, old.id, hostPort)
		m.removeWorkerLocked(old, "replaced by "+req.ID+" at the same address")
	}
	w := &workerInfo{id: req.ID, host: req.Host, port: req.Port, url: req.URL, webUIURL: req.WebUIURL,
		cores: req.Cores, memMB: req.MemoryMB, state: protocol.WorkerAlive, lastHeartbeat: now, since: now,
		executors: map[execKey]*executorInfo{}, drivers: map[string]*driverInfo{}}
	st.pendingWorkers[req.ID] = true
	rec := w.record()
	g := m.persistLocked(recovery.KindWorker, w.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutWorker(ctx, rec) },
		func(err error) {
			delete(st.pendingWorkers, req.ID)
			if err != nil {
				return
			}
			// Registered once the record is durable, whether or not the
			// request that asked is still waiting: its retry is a duplicate.
			w.lastHeartbeat = m.now()
			st.workers[w.id] = w
			st.workerByAddr[hostPort] = w
			m.scheduleSafeLocked()
		})
	m.mu.Unlock()
	perr := waitGate(r.Context(), t, g, "worker "+w.id)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t {
		return nil, rpcErr(&NotAliveError{State: m.statusLocked(), Hint: m.hintLocked()})
	}
	if perr != nil {
		return nil, rpcErr(perr)
	}
	return protocol.RegisteredWorker{Stamp: m.stampLocked(), MasterWebUIURL: m.webUIURL}, nil
}

func (m *Master) handleHeartbeat(r *http.Request) (any, error) {
	var req protocol.Heartbeat
	if err := protocol.DecodeMessage(r, &req); err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := matchPathID("workerId", req.WorkerID, id, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	if req.Epoch > m.term.epoch {
		// The worker has seen a newer leader. Not authoritative on its own
		// (the Elector and fenced writes are); refuse it and let the worker
		// follow the newer leader.
		m.log.Warnf("Worker %s has seen epoch %d, newer than this master's %d", id, req.Epoch, m.term.epoch)
		h := m.hintLocked()
		return nil, &protocol.StatusError{Code: http.StatusServiceUnavailable,
			Message: fmt.Sprintf("worker has seen epoch %d, newer than %d", req.Epoch, m.term.epoch), Hint: &h}
	}
	w := m.st.workers[id]
	if w == nil || w.state == protocol.WorkerDead {
		m.log.Warnf("Got heartbeat from unregistered worker %s. Asking it to re-register.", id)
		return protocol.HeartbeatResponse{Stamp: m.stampLocked(), Reregister: true}, nil
	}
	if w.state == protocol.WorkerUnknown {
		// It heartbeats this master, so it took our MasterChanged, but its
		// answer (what it runs) never arrived, e.g. it was paused past the
		// RPC timeout; MasterChanged is not re-sent. Left UNKNOWN it would
		// be removed at the recovery timeout, its executors reported lost
		// and its supervised drivers relaunched while they still run.
		// Re-registering re-attaches it from its WorkerLatestState.
		m.log.Infof("Worker %s heartbeats but has not reported what it runs; asking it to re-register", id)
		return protocol.HeartbeatResponse{Stamp: m.stampLocked(), Reregister: true}, nil
	}
	w.lastHeartbeat = m.now()
	m.log.Debugf("heartbeat from %s", id)
	if w.unreachable {
		w.unreachable = false
		m.scheduleSafeLocked()
	}
	if req.Running != nil && !w.needsSync {
		m.reconcileWorkerLocked(w, *req.Running)
	}
	return protocol.HeartbeatResponse{Stamp: m.stampLocked()}, nil
}

func (m *Master) handleExecutorState(r *http.Request) (any, error) {
	req, err := decode[protocol.ExecutorStateChanged](r)
	if err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := matchPathID("workerId", req.WorkerID, id, false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	a := m.st.apps[req.AppID]
	var e *executorInfo
	if a != nil {
		e = a.executors[req.ExecutorID]
	}
	if e == nil {
		if a != nil && req.ExecutorID < a.nextExecID {
			m.log.Debugf("Got status update for executor %s/%d, which has already ended", req.AppID, req.ExecutorID)
		} else {
			m.log.Warnf("Got status update for unknown executor %s/%d", req.AppID, req.ExecutorID)
		}
		return struct{}{}, nil
	}
	if e.worker.id != id {
		// Only the worker that runs an executor may report on it: a copy
		// elsewhere (a worker back from a partition) must not end it.
		m.ha.Reconciled.ReportsRefused++
		m.log.Warnf("Worker %s reported executor %s/%d, which runs on %s; refusing the report", id, a.id, e.id, e.worker.id)
		return nil, &protocol.StatusError{Code: http.StatusForbidden,
			Message: fmt.Sprintf("executor %s/%d runs on worker %s, not %s", a.id, e.id, e.worker.id, id)}
	}
	e.acked, e.missed = true, 0
	if !req.State.Finished() {
		if req.State == protocol.ExecutorRunning && e.runningSince.IsZero() {
			// Not a reset of the failure count yet: that takes a run of
			// executorSuccessfulRun (settleExecutorsLocked).
			e.runningSince = m.now()
		}
		e.state = req.State
		m.pushToAppLocked(a, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: m.stampLocked(),
			ExecutorID: e.id, State: req.State, Message: req.Message, ExitCode: req.ExitCode})
		return struct{}{}, nil
	}
	m.executorEndedLocked(e, req.State, req.Message, req.ExitCode, countsAsFailure(e.state, req.State, req.ExitCode))
	return struct{}{}, nil
}

// countsAsFailure reports whether an executor's end counts against its
// application (spark.deploy.maxExecutorRetries): a non-zero exit that is
// not a decommission. An exit with 0 is not a failure (as in Spark), but it
// still counts for the relaunch backoff (executorExitedLocked).
func countsAsFailure(old, final protocol.ExecutorState, exitCode *int) bool {
	normalExit := exitCode != nil && *exitCode == 0
	return !normalExit && old != protocol.ExecutorDecommissioned && final != protocol.ExecutorDecommissioned &&
		final != protocol.ExecutorLost && final != protocol.ExecutorKilled
}

func (m *Master) handleDriverState(r *http.Request) (any, error) {
	req, err := decode[protocol.DriverStateChanged](r)
	if err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := matchPathID("workerId", req.WorkerID, id, false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	d := m.st.drivers[req.DriverID]
	if d == nil {
		m.log.Warnf("Asked to change the state of unknown driver %s", req.DriverID)
		return struct{}{}, nil
	}
	if d.worker != nil && d.worker.id != id || d.worker == nil && d.recoveredWorker != id {
		m.ha.Reconciled.ReportsRefused++
		m.log.Warnf("Worker %s reported driver %s, which it does not run; refusing the report", id, d.id)
		return nil, &protocol.StatusError{Code: http.StatusForbidden, Message: fmt.Sprintf("driver %s does not run on worker %s", d.id, id)}
	}
	m.driverStateLocked(d, req.State, req.Exception)
	return struct{}{}, nil
}

// driverStateLocked applies a driver's state change reported by its worker.
func (m *Master) driverStateLocked(d *driverInfo, state protocol.DriverState, exception string) {
	d.acked, d.missed = true, 0
	switch state {
	case protocol.DriverFailed:
		if d.spec.Supervise {
			// --supervise: the worker restarts a driver that exited non-zero
			// (reporting RELAUNCHING, then RUNNING). A worker that reports
			// FAILED instead (an older sparkd) gets it relaunched here, under
			// its id and with a backoff.
			m.relaunchFailedDriverLocked(d, exception)
			return
		}
		m.removeDriverLocked(d, state, exception)
	case protocol.DriverError, protocol.DriverFinished, protocol.DriverKilled:
		m.removeDriverLocked(d, state, exception)
	case protocol.DriverRelaunching:
		// Its worker restarts it after a backoff; it stays there.
		if d.state != state {
			m.log.Infof("Driver %s exited (%s); its worker re-launches it (supervised)", d.id, exception)
		}
		d.state, d.exception = state, exception
	case protocol.DriverRunning:
		d.state, d.exception = state, "" // (re)started
	default:
		d.state = state
	}
}

// handleWorkerLatestState kills what the worker runs that the master does
// not know (SPARK-13604). A worker that re-registered while UNKNOWN during
// recovery is instead re-attached from this report.
func (m *Master) handleWorkerLatestState(r *http.Request) (any, error) {
	var req protocol.WorkerLatestState
	if err := protocol.DecodeMessage(r, &req); err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	w := m.st.workers[id]
	if w == nil || w.state == protocol.WorkerDead {
		return struct{}{}, nil
	}
	if w.needsSync {
		m.reattachWorkerLocked(w, req)
		m.maybeCompleteRecoveryLocked(m.term)
		return struct{}{}, nil
	}
	m.killUnknownLocked(w, req)
	return struct{}{}, nil
}

func (m *Master) handleWorkerDecommission(r *http.Request) (any, error) {
	id := mux.Vars(r)["id"]
	var req protocol.WorkerDecommissioning
	if err := decodeOptional(r, &req); err != nil {
		return nil, err
	}
	if err := matchPathID("workerId", req.WorkerID, id, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	w := m.st.workers[id]
	if w == nil || w.state == protocol.WorkerDead {
		return nil, rpcErr(fmt.Errorf("%w: worker %s", ErrNotFound, id))
	}
	if w.state == protocol.WorkerDecommissioned {
		return struct{}{}, nil
	}
	m.log.Infof("Decommissioning worker %s on %s", w.id, w.hostPort())
	w.state = protocol.WorkerDecommissioned
	stamp := m.stampLocked()
	for _, e := range executorsByID(w.executors) {
		m.pushToAppLocked(e.app, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: stamp,
			ExecutorID: e.id, State: protocol.ExecutorDecommissioned, Message: "worker decommissioned"})
	}
	m.removeRecordLocked(recovery.KindWorker, w.id)
	return struct{}{}, nil
}

func (m *Master) handleWorkerUnregister(r *http.Request) (any, error) {
	id := mux.Vars(r)["id"]
	var req protocol.WorkerDecommissioning
	if err := decodeOptional(r, &req); err != nil {
		return nil, err
	}
	if err := matchPathID("workerId", req.WorkerID, id, false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	if w := m.st.workers[id]; w != nil {
		m.removeWorkerLocked(w, "worker shut down")
	}
	return struct{}{}, nil
}

func (m *Master) handleRegisterApp(r *http.Request) (any, error) {
	req, err := decode[protocol.RegisterApplication](r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if na := m.notAliveLocked(true); na != nil {
		m.mu.Unlock()
		return nil, rpcErr(na)
	}
	st, t, now := m.st, m.term, m.now()
	if a := st.appByClient[req.ClientURL]; a != nil {
		if p := m.appPrincipal(r, req.App.Principal, a.id); m.creds != nil && p != a.desc.Principal {
			m.mu.Unlock()
			id, _ := protocol.IdentityFrom(r)
			return nil, protocol.Forbidden(id, "re-register application "+a.id+", which another application registered")
		}
		m.appAliveLocked(a)
		if a.state == protocol.AppUnknown {
			m.appReregisteredLocked(a)
			m.maybeCompleteRecoveryLocked(t)
		}
		resp := protocol.RegisteredApplication{Stamp: m.stampLocked(), AppID: a.id}
		m.mu.Unlock()
		return resp, nil
	}
	if st.pendingClients[req.ClientURL] {
		m.mu.Unlock()
		return nil, &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: "registration from " + req.ClientURL + " is in progress; retry"}
	}
	if n := len(st.apps) + len(st.pendingClients); n >= m.cfg.MaxApps {
		m.mu.Unlock()
		return nil, errLimit("applications", "spark.deploy.maxApplications", n, m.cfg.MaxApps)
	}
	m.log.Infof("Registering app %s", req.App.Name)
	a := &appInfo{id: st.newAppID(now), desc: req.App, clientURL: req.ClientURL, submitTime: now,
		state: protocol.AppWaiting, executors: map[int]*executorInfo{}}
	a.desc.Principal = m.appPrincipal(r, req.App.Principal, a.id)
	st.pendingClients[req.ClientURL] = true
	rec := a.record()
	g := m.persistLocked(recovery.KindApp, a.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutApp(ctx, rec) },
		func(err error) {
			delete(st.pendingClients, req.ClientURL)
			if err != nil {
				return
			}
			// Registered once durable, even if the request gave up waiting:
			// the driver's retry finds it by its address.
			a.lastHeartbeat = m.now()
			st.apps[a.id] = a
			st.appByClient[a.clientURL] = a
			st.waitingApps = append(st.waitingApps, a)
			m.log.Infof("Registered app %s with ID %s", a.desc.Name, a.id)
			m.scheduleSafeLocked()
		})
	m.mu.Unlock()
	perr := waitGate(r.Context(), t, g, "application "+a.id)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t {
		return nil, rpcErr(&NotAliveError{State: m.statusLocked(), Hint: m.hintLocked()})
	}
	if perr != nil {
		return nil, rpcErr(perr)
	}
	return protocol.RegisteredApplication{Stamp: m.stampLocked(), AppID: a.id}, nil
}

// appLocked finds an active application for an app RPC.
func (m *Master) appLocked(id string) (*appInfo, error) {
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	a := m.st.apps[id]
	if a == nil {
		return nil, rpcErr(fmt.Errorf("%w: application %s", ErrNotFound, id))
	}
	return a, nil
}

func (m *Master) handleUnregisterApp(r *http.Request) (any, error) {
	id := mux.Vars(r)["id"]
	var req protocol.UnregisterApplication
	if err := decodeOptional(r, &req); err != nil {
		return nil, err
	}
	if err := matchPathID("appId", req.AppID, id, false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.appLocked(id)
	if err != nil {
		return nil, err
	}
	m.log.Infof("Received unregister request from application %s", id)
	m.removeAppLocked(a, protocol.AppFinished, "application finished")
	return struct{}{}, nil
}

func (m *Master) handleKillApp(r *http.Request) (any, error) {
	return struct{}{}, rpcErr(m.KillApp(r.Context(), mux.Vars(r)["id"]))
}

func (m *Master) handleRequestExecutors(r *http.Request) (any, error) {
	// total is required: a body without it must not read as "no executors"
	// (the zero value), which would stop the application's scheduling.
	var body struct {
		Total *int `json:"total"`
	}
	if err := protocol.DecodeMessage(r, &body); err != nil {
		return nil, err
	}
	if body.Total == nil {
		return nil, &protocol.FieldError{Field: "total", Reason: "is required"}
	}
	req := protocol.RequestExecutors{Total: *body.Total}
	if req.Total < 0 {
		return nil, &protocol.FieldError{Field: "total", Reason: fmt.Sprintf("must not be negative, got %d", req.Total)}
	}
	id := mux.Vars(r)["id"]
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.appLocked(id)
	if err != nil {
		return nil, err
	}
	m.appAliveLocked(a)
	m.log.Infof("Application %s requested to set total executors to %d.", id, req.Total)
	a.limit, a.limitSet = req.Total, true
	m.persistAppLocked(a)
	m.scheduleSafeLocked()
	return struct{}{}, nil
}

func (m *Master) handleAppHeartbeat(r *http.Request) (any, error) {
	var req protocol.AppHeartbeat
	if err := protocol.DecodeMessage(r, &req); err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := matchPathID("appId", req.AppID, id, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if na := m.notAliveLocked(true); na != nil {
		return nil, rpcErr(na)
	}
	if a := m.st.apps[id]; a != nil {
		m.appAliveLocked(a)
		return protocol.AppHeartbeatResponse{Stamp: m.stampLocked(), State: a.state, WaitingReason: a.waiting}, nil
	}
	for _, a := range m.st.completedApps {
		if a.id == id {
			return protocol.AppHeartbeatResponse{Stamp: m.stampLocked(), State: a.state}, nil
		}
	}
	return protocol.AppHeartbeatResponse{Stamp: m.stampLocked(), State: protocol.AppUnknown, Reregister: true}, nil
}

func (m *Master) handleSubmitDriver(r *http.Request) (any, error) {
	spec, err := decode[protocol.DriverSpec](r)
	if err != nil {
		return nil, err
	}
	id, err := m.SubmitDriver(r.Context(), spec)
	if err != nil {
		return nil, rpcErr(err)
	}
	m.mu.Lock()
	stamp := m.stampLocked()
	m.mu.Unlock()
	return protocol.SubmitDriverResponse{Stamp: stamp, DriverID: id}, nil
}

func (m *Master) handleDriverStatus(r *http.Request) (any, error) {
	s, err := m.DriverStatus(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, rpcErr(err)
	}
	return s, nil
}

func (m *Master) handleKillDriver(r *http.Request) (any, error) {
	return struct{}{}, rpcErr(m.KillDriver(r.Context(), mux.Vars(r)["id"]))
}
