package worker

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/sparkd/sparkd/protocol"
)

// rpcHandler routes the master's pushes to the worker.
func (w *Worker) rpcHandler() http.Handler {
	r := mux.NewRouter()
	post := func(path string, h protocol.HandlerFunc) { r.Handle(path, protocol.Handle(h)).Methods(http.MethodPost) }
	post(protocol.PathWorkerMasterChanged, w.handleMasterChanged)
	post(protocol.PathLaunchExecutor, w.handleLaunchExecutor)
	post(protocol.PathKillExecutor, w.handleKillExecutor)
	post(protocol.PathLaunchDriver, w.handleLaunchDriver)
	post(protocol.PathKillDriverOnWorker, w.handleKillDriver)
	post(protocol.PathApplicationFinished, w.handleApplicationFinished)
	post(protocol.PathReconnectWorker, w.handleReconnect)
	return r
}

// admit fences a command: a stamp from a lower epoch than the highest seen is
// refused (409) and logged. A higher epoch from another master means a new
// leader; the worker follows it.
func (w *Worker) admit(ctx context.Context, what string, s protocol.Stamp) error {
	if err := w.confirmEpoch(ctx, what, s); err != nil {
		return err
	}
	advanced, err := w.guard.Admit(s)
	if err != nil {
		var se *protocol.StaleEpochError
		if errors.As(err, &se) {
			w.log.Warnf("Refusing %s from master %s: epoch %d is older than %d", what, s.MasterURL, se.Got, se.Highest)
		}
		return err
	}
	if advanced {
		w.mu.Lock()
		other := w.masterURL != s.MasterURL
		w.mu.Unlock()
		if other {
			w.changeMaster(s, "")
		}
	}
	if testHookAdmitted != nil {
		testHookAdmitted(what)
	}
	return nil
}

// testHookAdmitted, when set by a test, runs after a command was admitted
// by the epoch guard and before it acts (to widen the race with a newer
// epoch's MasterChanged).
var testHookAdmitted func(what string)

// stillCurrentLocked re-checks an admitted command's stamp under w.mu, just
// before it acts. A newer epoch may have been admitted since, and its
// MasterChanged answered from w's state (also under w.mu): acting now would
// change that state behind the new leader's back (a launch it never learns
// of), so the command is refused as stale after all (409).
func (w *Worker) stillCurrentLocked(what string, s protocol.Stamp) error {
	if _, err := w.guard.Admit(s); err != nil {
		w.log.Warnf("Refusing %s from master %s: a newer epoch arrived while it was admitted (%v)", what, s.MasterURL, err)
		return err
	}
	return nil
}

// decodeCommand reads a master's command into m and checks it: the stamp
// first, then check (a 400 naming the field), then the epoch guard (a 409
// when the stamp is stale). stamp points at m's Stamp, filled by the decode.
func (w *Worker) decodeCommand(r *http.Request, what string, m any, stamp *protocol.Stamp, check func() error) error {
	if err := protocol.DecodeMessage(r, m); err != nil {
		return err
	}
	if err := stamp.Validate(); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	return w.admit(r.Context(), what, *stamp)
}

// required is a 400 naming field when s is empty.
func required(field, s string) error {
	if s == "" {
		return &protocol.FieldError{Field: field, Reason: "is required"}
	}
	return nil
}

// checkName is a 400 naming field unless s can name a work directory.
func checkName(field, s string) error {
	if err := required(field, s); err != nil {
		return err
	}
	if !safeName(s) {
		return &protocol.FieldError{Field: field, Reason: "must not contain '/', '\\' or be '.' or '..'"}
	}
	return nil
}

func (w *Worker) handleMasterChanged(r *http.Request) (any, error) {
	var m protocol.MasterChanged
	if err := w.decodeCommand(r, "MasterChanged", &m, &m.Stamp, nil); err != nil {
		return nil, err
	}
	w.changeMaster(m.Stamp, m.MasterWebUIURL)
	return w.schedulerState(), nil
}

// schedulerState lists what the worker runs, for MasterChanged and
// WorkerLatestState.
func (w *Worker) schedulerState() protocol.WorkerSchedulerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := protocol.WorkerSchedulerState{WorkerID: w.id, Executors: []protocol.ExecutorDescription{}, Drivers: []protocol.DriverDescription{}}
	for _, e := range w.executors {
		st.Executors = append(st.Executors, e.description())
	}
	for _, d := range w.drivers {
		st.Drivers = append(st.Drivers, d.description())
	}
	sort.Slice(st.Executors, func(i, j int) bool {
		a, b := st.Executors[i], st.Executors[j]
		return a.AppID < b.AppID || a.AppID == b.AppID && a.ExecutorID < b.ExecutorID
	})
	sort.Slice(st.Drivers, func(i, j int) bool { return st.Drivers[i].DriverID < st.Drivers[j].DriverID })
	cutoff := w.clock.Now().Add(-recentlyFinished)
	for _, e := range w.finishedExecs {
		if e.finished.After(cutoff) {
			d := e.description()
			d.ExitCode, d.Message = e.exitCode, e.message
			st.FinishedExecutors = append(st.FinishedExecutors, d)
		}
	}
	for _, d := range w.finishedDrivers {
		if d.finished.After(cutoff) {
			dd := d.description()
			dd.Exception = d.message
			st.FinishedDrivers = append(st.FinishedDrivers, dd)
		}
	}
	st.FinishedExecutors = lastN(st.FinishedExecutors, maxRecentlyFinished)
	st.FinishedDrivers = lastN(st.FinishedDrivers, maxRecentlyFinished)
	return st
}

// What a worker tells a new leader about executors and drivers that ended
// recently: they may have ended while no master led, or their report may
// have reached a master that died before acting on it.
const (
	recentlyFinished    = 10 * time.Minute
	maxRecentlyFinished = 256
)

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// running lists what the worker runs, for heartbeats (reconciliation).
func (w *Worker) running() *protocol.Running {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &protocol.Running{Executors: make([]protocol.ExecutorRef, 0, len(w.executors)), Drivers: make([]string, 0, len(w.drivers))}
	for _, e := range w.executors {
		r.Executors = append(r.Executors, protocol.ExecutorRef{AppID: e.appID, ExecutorID: e.execID})
	}
	for id := range w.drivers {
		r.Drivers = append(r.Drivers, id)
	}
	for _, rep := range w.reports {
		if sc, ok := rep.body.(protocol.ExecutorStateChanged); ok && sc.State.Finished() {
			r.Ended = append(r.Ended, protocol.ExecutorDescription{AppID: sc.AppID, ExecutorID: sc.ExecutorID, State: sc.State,
				ExitCode: sc.ExitCode, Message: sc.Message})
		}
	}
	return r
}

func validateLaunchExecutor(m protocol.LaunchExecutor) error {
	if err := checkName("appId", m.AppID); err != nil {
		return err
	}
	switch {
	case m.ExecutorID < 0:
		return &protocol.FieldError{Field: "executorId", Reason: "must not be negative"}
	case m.Cores <= 0:
		return &protocol.FieldError{Field: "cores", Reason: "must be positive"}
	case m.MemoryMB <= 0:
		return &protocol.FieldError{Field: "memoryMb", Reason: "must be positive"}
	case len(m.App.Command) == 0 || m.App.Command[0] == "":
		return &protocol.FieldError{Field: "app.command", Reason: "is required"}
	}
	return nil
}

func (w *Worker) handleLaunchExecutor(r *http.Request) (any, error) {
	var m protocol.LaunchExecutor
	if err := w.decodeCommand(r, "LaunchExecutor", &m, &m.Stamp, func() error { return validateLaunchExecutor(m) }); err != nil {
		return nil, err
	}
	return nil, w.launchExecutor(m)
}

func (w *Worker) handleKillExecutor(r *http.Request) (any, error) {
	var m protocol.KillExecutor
	if err := w.decodeCommand(r, "KillExecutor", &m, &m.Stamp, func() error { return required("appId", m.AppID) }); err != nil {
		return nil, err
	}
	return nil, w.killExecutor(m.Stamp, m.AppID, m.ExecutorID)
}

func validateLaunchDriver(m protocol.LaunchDriver) error {
	if err := checkName("driverId", m.DriverID); err != nil {
		return err
	}
	if err := m.Desc.Validate(); err != nil {
		var fe *protocol.FieldError
		if errors.As(err, &fe) {
			return &protocol.FieldError{Field: "desc." + fe.Field, Reason: fe.Reason}
		}
		return err
	}
	return nil
}

func (w *Worker) handleLaunchDriver(r *http.Request) (any, error) {
	var m protocol.LaunchDriver
	if err := w.decodeCommand(r, "LaunchDriver", &m, &m.Stamp, func() error { return validateLaunchDriver(m) }); err != nil {
		return nil, err
	}
	return nil, w.launchDriver(m)
}

func (w *Worker) handleKillDriver(r *http.Request) (any, error) {
	var m protocol.KillDriver
	if err := w.decodeCommand(r, "KillDriver", &m, &m.Stamp, func() error { return required("driverId", m.DriverID) }); err != nil {
		return nil, err
	}
	return nil, w.killDriver(m.Stamp, m.DriverID)
}

func (w *Worker) handleApplicationFinished(r *http.Request) (any, error) {
	var m protocol.ApplicationFinished
	if err := w.decodeCommand(r, "ApplicationFinished", &m, &m.Stamp, func() error { return required("appId", m.AppID) }); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.finishedApps[m.AppID] = w.clock.Now()
	w.mu.Unlock()
	w.log.Infof("Application %s finished", m.AppID)
	return nil, nil
}

func (w *Worker) handleReconnect(r *http.Request) (any, error) {
	var m protocol.ReconnectWorker
	if err := w.decodeCommand(r, "ReconnectWorker", &m, &m.Stamp, nil); err != nil {
		return nil, err
	}
	w.log.Infof("Master %s asked this worker to reconnect", m.MasterURL)
	w.mu.Lock()
	w.registered = false
	w.mu.Unlock()
	signal(w.reconnectCh)
	return nil, nil
}
