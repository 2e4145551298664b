package master

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// fakeActions is an in-memory Actions for the web UI and REST tests. It
// refuses changes with *NotAliveError unless its view's Status is ALIVE.
type fakeActions struct {
	mu        sync.Mutex
	view      View
	killed    []string // "app:<id>" / "driver:<id>" / "all" / "clear"
	submitted []protocol.DriverSpec
	statuses  map[string]protocol.DriverStatus
	nextID    int
	failWith  error // returned by every action when set
}

func newFakeActions(v View) *fakeActions {
	return &fakeActions{view: v, statuses: map[string]protocol.DriverStatus{}}
}

func (f *fakeActions) View() View {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view
}

func (f *fakeActions) Status() protocol.MasterState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view.Status
}

func (f *fakeActions) setStatus(s protocol.MasterState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.view.Status = s
}

func (f *fakeActions) check() error {
	if f.failWith != nil {
		return f.failWith
	}
	if f.view.Status != protocol.MasterAlive {
		return &NotAliveError{State: f.view.Status, Hint: protocol.LeaderHint{
			State: f.view.Status, LeaderURL: f.view.LeaderURL, LeaderWebUI: f.view.LeaderWebUIURL, Epoch: f.view.Epoch,
		}}
	}
	return nil
}

func (f *fakeActions) KillApp(ctx context.Context, appID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	for _, a := range f.view.ActiveApps {
		if a.ID == appID {
			f.killed = append(f.killed, "app:"+appID)
			return nil
		}
	}
	return fmt.Errorf("kill app %s: %w", appID, ErrNotFound)
}

func (f *fakeActions) KillDriver(ctx context.Context, driverID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	for _, d := range f.view.ActiveDrivers {
		if d.ID == driverID {
			f.killed = append(f.killed, "driver:"+driverID)
			return nil
		}
	}
	return fmt.Errorf("kill driver %s: %w", driverID, ErrNotFound)
}

func (f *fakeActions) SubmitDriver(ctx context.Context, spec protocol.DriverSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return "", err
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	id := fmt.Sprintf("driver-20261120225319-%04d", f.nextID)
	f.nextID++
	f.submitted = append(f.submitted, spec)
	f.statuses[id] = protocol.DriverStatus{DriverID: id, Found: true, State: protocol.DriverSubmitted}
	f.view.ActiveDrivers = append(f.view.ActiveDrivers, DriverView{ID: id, SubmitTime: time.Now(), State: protocol.DriverSubmitted, Cores: spec.Cores, MemoryMB: spec.MemoryMB})
	return id, nil
}

func (f *fakeActions) DriverStatus(ctx context.Context, driverID string) (protocol.DriverStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return protocol.DriverStatus{}, err
	}
	st, ok := f.statuses[driverID]
	if !ok {
		return protocol.DriverStatus{DriverID: driverID}, fmt.Errorf("driver %s: %w", driverID, ErrNotFound)
	}
	return st, nil
}

func (f *fakeActions) KillAllDrivers(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.killed = append(f.killed, "all")
	return nil
}

func (f *fakeActions) ClearCompleted(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.killed = append(f.killed, "clear")
	return nil
}

func (f *fakeActions) kills() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.killed...)
}

var testNow = time.Date(2026, 11, 20, 22, 53, 19, 0, time.UTC)

// sampleView is a small ALIVE cluster: two alive workers, one dead, a
// running app, an app stuck WAITING, a completed app, and drivers.
func sampleView() View {
	t0 := testNow.Add(-10 * time.Minute)
	return View{
		ID: "master-1", URL: "spark://m1:7077", WebUIURL: "http://m1:8080", RESTURL: "spark://m1:6066",
		Status: protocol.MasterAlive, Epoch: 7,
		LeaderID: "master-1", LeaderURL: "spark://m1:7077", LeaderWebUIURL: "http://m1:8080", LeaderSince: t0,
		Workers: []WorkerView{
			{ID: "worker-20261120224000-w1-35000", Host: "w1", Port: 35000, WebUIAddress: "http://w1:8081", Cores: 8, CoresUsed: 2, MemoryMB: 16384, MemoryUsedMB: 2048, State: protocol.WorkerAlive, LastHeartbeat: testNow},
			{ID: "worker-20261120224000-w2-35000", Host: "w2", Port: 35000, WebUIAddress: "http://w2:8081", Cores: 8, CoresUsed: 0, MemoryMB: 16384, MemoryUsedMB: 0, State: protocol.WorkerAlive, LastHeartbeat: testNow},
			{ID: "worker-20261120224000-w3-35000", Host: "w3", Port: 35000, WebUIAddress: "http://w3:8081", Cores: 4, CoresUsed: 0, MemoryMB: 4096, State: protocol.WorkerDead, LastHeartbeat: t0},
		},
		ActiveApps: []AppView{
			{ID: "app-20261120224500-0000", Name: "Spark Pi", User: "alice", Cores: 2, ExecutorCores: 2, MemoryPerExecutorMB: 1024, Executors: 1, SubmitTime: t0, State: protocol.AppRunning},
			{ID: "app-20261120224600-0001", Name: "Big <exec>", User: "bob", ExecutorCores: 10, MemoryPerExecutorMB: 1024, SubmitTime: t0.Add(time.Minute), State: protocol.AppWaiting,
				WaitingReason: "each executor needs 10 cores but the largest worker has 8"},
		},
		CompletedApps: []AppView{
			{ID: "app-20261120224000-0000", Name: "done", User: "carol", Cores: 0, MemoryPerExecutorMB: 512, SubmitTime: t0.Add(-time.Hour), EndTime: t0.Add(-59 * time.Minute), State: protocol.AppFinished},
		},
		ActiveDrivers: []DriverView{
			{ID: "driver-20261120224500-0000", SubmitTime: t0, State: protocol.DriverRunning, Cores: 1, MemoryMB: 1024, WorkerID: "worker-20261120224000-w1-35000", WorkerHostPort: "w1:35000", MainClass: "org.example.Main"},
			{ID: "driver-20261120224700-0001", SubmitTime: t0, State: protocol.DriverSubmitted, Cores: 1, MemoryMB: 1024},
		},
		CompletedDrivers: []DriverView{
			{ID: "driver-20261120224000-0000", SubmitTime: t0.Add(-time.Hour), State: protocol.DriverKilled, Cores: 1, MemoryMB: 1024},
		},
		HA: HAStats{LeaderTransitions: 3, FencedWrites: 1, LastFailover: 1500 * time.Millisecond, LastZKContact: testNow.Add(-2 * time.Second), ZKEnabled: true},
	}
}

// standbyView is what a STANDBY master shows: no workers, a known leader.
func standbyView() View {
	return View{
		ID: "master-2", URL: "spark://m2:7077", WebUIURL: "http://m2:8080", RESTURL: "spark://m2:6066",
		Status: protocol.MasterStandby, Epoch: 7,
		LeaderID: "master-1", LeaderURL: "spark://m1:7077", LeaderWebUIURL: "http://m1:8080",
	}
}
