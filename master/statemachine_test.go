package master

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

func TestElectedWithEmptyStoreGoesAlive(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	assert.Equal(t, protocol.MasterStandby, tm.status())
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	assert.True(t, tm.logged("I have been elected leader! New state: ALIVE"))
	assert.True(t, tm.logged("Starting Spark master at spark://"))
	v := tm.View()
	assert.EqualValues(t, 1, v.Epoch)
	assert.EqualValues(t, 1, v.HA.LeaderTransitions)
}

// workerPeer answers MasterChanged with what it runs.
func workerPeer(t *testing.T, id string, execs []protocol.ExecutorDescription, drivers []protocol.DriverDescription) *peer {
	return newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathWorkerMasterChanged {
			return 200, protocol.WorkerSchedulerState{WorkerID: id, Executors: execs, Drivers: drivers}
		}
		return 200, struct{}{}
	})
}

func appPeer(t *testing.T, appID string) *peer {
	return newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathAppMasterChanged {
			return 200, protocol.MasterChangeAcknowledged{AppID: appID}
		}
		return 200, struct{}{}
	})
}

func seed(s *memStore, w *peer, wid string, a *peer, aid string, drivers ...recovery.DriverRecord) {
	now := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)
	if w != nil {
		s.workers[wid] = recovery.WorkerRecord{Format: 1, ID: wid, Host: "127.0.0.1", Port: 7000 + len(s.workers), URL: w.url(), Cores: 8, MemoryMB: 8192, Since: now}
	}
	if a != nil {
		s.apps[aid] = recovery.AppRecord{Format: 1, ID: aid, Desc: protocol.AppDescription{Name: "pi", Command: []string{"x"}, ExecutorMemMB: 1024},
			ClientURL: a.url(), SubmitTime: now, State: protocol.AppRunning, NextExecID: 3}
	}
	for _, d := range drivers {
		s.drivers[d.ID] = d
	}
}

func TestRecoveryCompletesAsSoonAsAllAcked(t *testing.T) {
	store := newMemStore()
	const wid, aid = "worker-20261120110000-127.0.0.1-7000", "app-20261120110000-0000"
	w := workerPeer(t, wid,
		[]protocol.ExecutorDescription{{AppID: aid, ExecutorID: 2, Cores: 4, MemoryMB: 1024, State: protocol.ExecutorRunning}},
		[]protocol.DriverDescription{{DriverID: "driver-1", Cores: 1, MemoryMB: 512, State: protocol.DriverRunning}})
	a := appPeer(t, aid)
	spec := protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 512, Supervise: true}
	seed(store, w, wid, a, aid, recovery.DriverRecord{Format: 1, ID: "driver-1", Spec: spec, State: protocol.DriverRunning, WorkerID: wid})

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 7)
	// No clock advance: completion must not wait for the recovery timeout.
	tm.waitRecovering(t, false)
	for _, line := range []string{"I have been elected leader! New state: ALIVE (recovering 1 workers and 1 applications)", "Trying to recover worker: " + wid,
		"Trying to recover app: " + aid, "Worker has been re-registered: " + wid, "Application has been re-registered: " + aid,
		"Recovery complete - resuming operations!"} {
		assert.True(t, tm.logged(line), "log line %q", line)
	}
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerAlive, v.Workers[0].State)
	assert.Equal(t, 5, v.Workers[0].CoresUsed, "executor (4) + driver (1) resources re-added")
	require.Len(t, v.ActiveApps, 1)
	assert.Equal(t, protocol.AppRunning, v.ActiveApps[0].State)
	assert.Equal(t, 1, v.ActiveApps[0].Executors)
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, "driver-1", v.ActiveDrivers[0].ID)
	assert.Equal(t, protocol.DriverRunning, v.ActiveDrivers[0].State)
	// Every MasterChanged carried the new epoch.
	mc := decodeAs[protocol.MasterChanged](t, w.got(protocol.PathWorkerMasterChanged)[0])
	assert.EqualValues(t, 7, mc.Epoch)
	assert.Equal(t, tm.URL(), mc.MasterURL)
}

func TestRecoveryTimeoutRemovesNonResponders(t *testing.T) {
	store := newMemStore()
	hang := make(chan struct{})
	silent := newPeer(t, func(string, []byte) (int, any) { <-hang; return 200, struct{}{} })
	t.Cleanup(func() { close(hang) })
	const wid = "worker-20261120110000-127.0.0.1-7000"
	sup := protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 512, Supervise: true}
	unsup := protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 512}
	queued := protocol.DriverSpec{Command: []string{"q"}, Cores: 1, MemoryMB: 512}
	seed(store, silent, wid, nil, "",
		recovery.DriverRecord{Format: 1, ID: "driver-20261120110000-0001", Spec: sup, State: protocol.DriverRunning, WorkerID: wid},
		recovery.DriverRecord{Format: 1, ID: "driver-20261120110000-0002", Spec: unsup, State: protocol.DriverRunning, WorkerID: wid},
		recovery.DriverRecord{Format: 1, ID: "driver-20261120110000-0003", Spec: queued, State: protocol.DriverSubmitted})

	cfg := testConfig()
	cfg.RecoveryTimeout = 30 * time.Second
	cfg.RPCTimeout = time.Minute
	tm := startMaster(t, cfg, store)
	tm.el.elect(t, 2)
	tm.waitRecovering(t, true)
	// ALIVE, and still recovering while the worker has not answered and
	// time has not passed; the never-launched driver waits again at once.
	time.Sleep(3 * tm.tick)
	v := tm.View()
	assert.Equal(t, protocol.MasterAlive, v.Status)
	assert.True(t, v.HA.Recovering)
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerUnknown, v.Workers[0].State)
	tm.clock.Advance(31 * time.Second)
	tm.waitRecovering(t, false)

	v = tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerDead, v.Workers[0].State)
	eventually(t, "worker record removed", func() bool { return !store.has(recovery.KindWorker, wid) })
	states := map[string]protocol.DriverState{}
	for _, d := range append(v.ActiveDrivers, v.CompletedDrivers...) {
		states[d.ID] = d.State
	}
	assert.Equal(t, protocol.DriverRelaunching, states["driver-20261120110000-0001"], "supervised driver ends RELAUNCHING")
	assert.Equal(t, protocol.DriverError, states["driver-20261120110000-0002"], "unsupervised driver ends ERROR")
	assert.Equal(t, protocol.DriverSubmitted, states["driver-20261120110000-0003"], "never-launched driver waits again under its id")
	require.Len(t, v.ActiveDrivers, 2, "the supervised driver waits again under its id, next to the queued one")
	for _, d := range v.CompletedDrivers {
		assert.NotEqual(t, "driver-20261120110000-0001", d.ID, "one entry per driver")
	}
	assert.True(t, tm.logged("Re-launching driver-20261120110000-0001"))
	eventually(t, "the relaunch persisted under the same id", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		r, ok := store.drivers["driver-20261120110000-0001"]
		return ok && r.WorkerID == "" && r.Attempt == 1 && r.State == protocol.DriverRelaunching
	})
}

func TestRecoveryRefusedConnectionIsLostAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	store := newMemStore()
	store.workers["w1"] = recovery.WorkerRecord{Format: 1, ID: "w1", Host: "127.0.0.1", Port: 1, URL: dead, Cores: 1, MemoryMB: 1}
	store.apps["a1"] = recovery.AppRecord{Format: 1, ID: "a1", Desc: protocol.AppDescription{Name: "x", Command: []string{"x"}, ExecutorMemMB: 1},
		ClientURL: dead, State: protocol.AppRunning}
	tm := startMaster(t, testConfig(), store) // recovery timeout 60s, clock never advanced
	tm.el.elect(t, 3)
	tm.waitRecovering(t, false)
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerDead, v.Workers[0].State)
	assert.Empty(t, v.ActiveApps)
	require.Len(t, v.CompletedApps, 1)
}

func TestCompletingRecoveryIsExceptionSafe(t *testing.T) {
	testHookCompleting = func() { panic("boom") }
	t.Cleanup(func() { testHookCompleting = nil })
	store := newMemStore()
	const wid = "w1"
	seed(store, workerPeer(t, wid, nil, nil), wid, nil, "")
	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	assert.True(t, tm.logged("Error while completing recovery"))
}

func TestFencedWriteStepsDownAndCampaignsAgain(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)

	tm.store.setFail(fmt.Errorf("multi: %w", recovery.ErrFenced))
	err := tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: "worker-b", Host: "127.0.0.1", Port: 2, URL: w.url(), Cores: 1, MemoryMB: 1}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.Code)
	tm.waitStatus(t, protocol.MasterStandby)
	v := tm.View()
	assert.Empty(t, v.Workers, "leader state cleared")
	assert.EqualValues(t, 1, v.HA.FencedWrites)
	assert.True(t, tm.logged("Leadership has been revoked -- stepping down to STANDBY"))

	// The process is still alive and takes office again on the next term.
	tm.store.setFail(nil)
	tm.el.elect(t, 3)
	tm.waitStatus(t, protocol.MasterAlive)
	assert.EqualValues(t, 3, tm.View().Epoch)
}

func TestRevocationReturnsToStandby(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	tm.registerWorker(t, "worker-a", newPeer(t, nil), 4, 4096)
	tm.el.revoke(errors.New("session expired"))
	tm.waitStatus(t, protocol.MasterStandby)
	assert.Empty(t, tm.View().Workers)

	tm.el.otherLeader(t, "spark://other:7077", 2)
	err := tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: "w", Host: "h", Port: 1, URL: "http://h:1", Cores: 1, MemoryMB: 1}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.Code)
	require.NotNil(t, se.Hint)
	assert.Equal(t, "spark://other:7077", se.Hint.LeaderURL)
	assert.EqualValues(t, 2, se.Hint.Epoch)
	assert.Equal(t, protocol.MasterStandby, se.Hint.State)

	var li protocol.LeaderInfo
	require.NoError(t, tm.call(http.MethodGet, protocol.PathLeader, nil, &li))
	assert.Equal(t, "spark://other:7077", li.LeaderURL)
	assert.Equal(t, protocol.MasterStandby, li.State)
}

func TestWorkerTimeoutLosesExecutorsAndCulls(t *testing.T) {
	cfg := testConfig()
	cfg.DeadWorkerPersistence = 2
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	client := newPeer(t, nil)
	appID := tm.registerApp(t, "pi", client, 0, 1024)
	eventually(t, "executor launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 1 })
	le := decodeAs[protocol.LaunchExecutor](t, w.got(protocol.PathLaunchExecutor)[0])
	assert.EqualValues(t, 1, le.Epoch, "commands carry the epoch")
	assert.Equal(t, tm.URL(), le.MasterURL)
	assert.Equal(t, appID, le.AppID)

	tm.clock.Advance(61 * time.Second)
	eventually(t, "worker DEAD", func() bool { return tm.View().Workers[0].State == protocol.WorkerDead })
	eventually(t, "executor LOST reported", func() bool {
		for _, b := range client.got(protocol.PathExecutorUpdated) {
			if decodeAs[protocol.ExecutorUpdated](t, b).State == protocol.ExecutorLost {
				return true
			}
		}
		return false
	})
	assert.Equal(t, 0, tm.View().ActiveApps[0].Executors)
	// A heartbeat from the dead worker asks it to re-register.
	var hb protocol.HeartbeatResponse
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/heartbeat", protocol.Heartbeat{WorkerID: "worker-a", Epoch: 1}, &hb))
	assert.True(t, hb.Reregister)
	tm.clock.Advance(3 * 60 * time.Second)
	eventually(t, "dead worker culled", func() bool { return len(tm.View().Workers) == 0 })
}

func TestExecutorFailuresFailTheApp(t *testing.T) {
	cfg := testConfig()
	cfg.MaxExecutorRetries = 3
	cfg.WorkerTimeout = time.Hour // the fake worker does not heartbeat
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 2, 4096)
	client := newPeer(t, nil)
	appID := tm.registerApp(t, "flaky", client, 0, 512)
	one := 1
	for i := range 3 {
		eventually(t, "executor launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == i+1 })
		le := decodeAs[protocol.LaunchExecutor](t, w.got(protocol.PathLaunchExecutor)[i])
		assert.Equal(t, i, le.ExecutorID)
		require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/executor-state", protocol.ExecutorStateChanged{
			WorkerID: "worker-a", AppID: appID, ExecutorID: le.ExecutorID, State: protocol.ExecutorFailed, ExitCode: &one}, nil))
		tm.clock.Advance(executorMaxBackoff) // past the relaunch backoff
	}
	v := tm.View()
	require.Len(t, v.CompletedApps, 1)
	assert.Equal(t, protocol.AppFailed, v.CompletedApps[0].State)
	assert.True(t, tm.logged("failed 3 times; removing it"))
	eventually(t, "driver told", func() bool { return len(client.got(protocol.PathApplicationRemoved)) == 1 })
}

func TestDuplicateRegistrationNeverFails(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	first := tm.registerWorker(t, "worker-a", w, 4, 4096)
	assert.False(t, first.Duplicate)
	assert.EqualValues(t, 1, first.Epoch)
	second := tm.registerWorker(t, "worker-a", w, 4, 4096)
	assert.True(t, second.Duplicate)
	assert.Len(t, tm.View().Workers, 1)
	assert.True(t, tm.logged("Registering worker 127.0.0.1:"))
	assert.True(t, tm.logged("with 4 cores, 4.0 GiB RAM"))
}

func TestRegistrationPersistedBeforeAck(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	gate := make(chan struct{})
	tm.store.mu.Lock()
	tm.store.gate = gate
	tm.store.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
		done <- err
	}()
	select {
	case <-done:
		t.Fatal("SubmitDriver returned before the store write completed")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("SubmitDriver never returned")
	}
	tm.store.mu.Lock()
	n := len(tm.store.drivers)
	tm.store.mu.Unlock()
	assert.Equal(t, 1, n)
}

func TestHeartbeatFromUnknownWorkerAsksToReregister(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	var hb protocol.HeartbeatResponse
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/nobody/heartbeat", protocol.Heartbeat{WorkerID: "nobody", Epoch: 1}, &hb))
	assert.True(t, hb.Reregister)
	assert.True(t, tm.logged("Got heartbeat from unregistered worker nobody. Asking it to re-register."))
}

func TestWorkerLatestStateKillsUnknown(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/latest-state", protocol.WorkerLatestState{WorkerID: "worker-a",
		Executors: []protocol.ExecutorDescription{{AppID: "app-gone", ExecutorID: 1, State: protocol.ExecutorRunning}},
		Drivers:   []protocol.DriverDescription{{DriverID: "driver-gone", State: protocol.DriverRunning}}}, nil))
	eventually(t, "kills sent", func() bool {
		return len(w.got(protocol.PathKillExecutor)) == 1 && len(w.got(protocol.PathKillDriverOnWorker)) == 1
	})
}

func TestSupervisedDriverRelaunchedWhenWorkerDies(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	eventually(t, "assignment persisted", func() bool {
		tm.store.mu.Lock()
		defer tm.store.mu.Unlock()
		return tm.store.drivers[id].WorkerID == "worker-a"
	})
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/unregister", struct{}{}, nil))
	v := tm.View()
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, id, v.ActiveDrivers[0].ID, "relaunched under its id")
	assert.Equal(t, protocol.DriverRelaunching, v.ActiveDrivers[0].State)
	assert.Empty(t, v.CompletedDrivers, "one entry per driver")
	st, err := tm.DriverStatus(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, protocol.DriverRelaunching, st.State)

	// On the next worker it runs as attempt 1 of the same id.
	w2 := newPeer(t, nil)
	tm.registerWorker(t, "worker-b", w2, 4, 4096)
	eventually(t, "driver relaunched", func() bool { return len(w2.got(protocol.PathLaunchDriver)) == 1 })
	ld := decodeAs[protocol.LaunchDriver](t, w2.got(protocol.PathLaunchDriver)[0])
	assert.Equal(t, id, ld.DriverID)
	assert.Equal(t, 1, ld.Attempt)
	st, err = tm.DriverStatus(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, protocol.DriverRunning, st.State)
	// A report from the lost worker's copy is refused: it cannot end the
	// relaunched driver (what SPARK-19900's new id guards against).
	err = tm.call(http.MethodPost, "/v1/workers/worker-a/driver-state",
		protocol.DriverStateChanged{WorkerID: "worker-a", DriverID: id, State: protocol.DriverKilled}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusForbidden, se.Code)
	require.NoError(t, tm.KillDriver(t.Context(), id), "--kill of the submitted id")
	eventually(t, "kill sent to the worker that runs it", func() bool { return len(w2.got(protocol.PathKillDriverOnWorker)) == 1 })
}

// A supervised driver that its worker restarts (reported RELAUNCHING, then
// RUNNING) keeps one entry under its id in the master.
func TestSupervisedDriverRestartedByWorkerKeepsItsID(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	for _, state := range []protocol.DriverState{protocol.DriverRelaunching, protocol.DriverRunning} {
		require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/driver-state",
			protocol.DriverStateChanged{WorkerID: "worker-a", DriverID: id, State: state, Exception: "exit 3"}, nil))
		st, err := tm.DriverStatus(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, state, st.State)
		v := tm.View()
		require.Len(t, v.ActiveDrivers, 1)
		assert.Equal(t, id, v.ActiveDrivers[0].ID)
		assert.Empty(t, v.CompletedDrivers)
	}
	assert.Len(t, w.got(protocol.PathLaunchDriver), 1, "the worker restarts it, not the master")
}

func TestRunLeavesNoGoroutines(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	// Close makes Run return; the cleanup checks that it did.
	require.NoError(t, tm.Close())
	require.NoError(t, tm.Close(), "Close is idempotent")
}

func TestStaleContactNeverReportsAlive(t *testing.T) {
	cfg := testConfig()
	cfg.SelfFenceAfter = 500 * time.Millisecond
	tm := startMaster(t, cfg, nil)
	tm.el.setContact(time.Now())
	tm.el.elect(t, 5)
	tm.waitStatus(t, protocol.MasterAlive)
	// As after SIGSTOP/SIGCONT: the term is not yet revoked, but ZooKeeper
	// has been silent for longer than the self-fence bound.
	tm.el.setContact(time.Now().Add(-time.Second))
	assert.Equal(t, protocol.MasterStandby, tm.status())
	var li protocol.LeaderInfo
	require.NoError(t, tm.call(http.MethodGet, protocol.PathLeader, nil, &li))
	assert.Equal(t, protocol.MasterStandby, li.State)
	_, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	var na *NotAliveError
	require.ErrorAs(t, err, &na)
	tm.el.setContact(time.Now())
	assert.Equal(t, protocol.MasterAlive, tm.status())
}

// --supervise: a driver reported FAILED (by a worker that does not restart
// it itself) is relaunched by the master under its id, after a backoff
// that doubles while it keeps failing quickly.
func TestSupervisedDriverRelaunchedWhenItFails(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })

	fail := func(driverID string) {
		t.Helper()
		require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/driver-state",
			protocol.DriverStateChanged{WorkerID: "worker-a", DriverID: driverID, State: protocol.DriverFailed, Exception: "exit 1"}, nil))
	}
	active := func() DriverView {
		t.Helper()
		v := tm.View()
		require.Len(t, v.ActiveDrivers, 1)
		return v.ActiveDrivers[0]
	}
	fail(id)
	st, err := tm.DriverStatus(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, protocol.DriverRelaunching, st.State)
	second := active()
	assert.Equal(t, id, second.ID)
	assert.Equal(t, protocol.DriverRelaunching, second.State)
	assert.True(t, tm.logged("supervised, re-launching after 1s"))

	// Held back for 1 s (fake clock), then launched.
	assert.Never(t, func() bool { return len(w.got(protocol.PathLaunchDriver)) > 1 }, 200*time.Millisecond, 20*time.Millisecond)
	tm.clock.Advance(time.Second)
	eventually(t, "relaunch after 1s", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 2 })

	// A quick second failure doubles the backoff.
	fail(second.ID)
	third := active()
	assert.True(t, tm.logged("supervised, re-launching after 2s"))
	tm.clock.Advance(time.Second)
	assert.Never(t, func() bool { return len(w.got(protocol.PathLaunchDriver)) > 2 }, 200*time.Millisecond, 20*time.Millisecond)
	tm.clock.Advance(time.Second)
	eventually(t, "relaunch after 2s", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 3 })

	// A kill is not a failure: no relaunch.
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/driver-state",
		protocol.DriverStateChanged{WorkerID: "worker-a", DriverID: third.ID, State: protocol.DriverKilled}, nil))
	assert.Empty(t, tm.View().ActiveDrivers)

	// Without --supervise a failure is final.
	plain, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	require.NoError(t, err)
	eventually(t, "plain driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 4 })
	fail(plain)
	assert.Empty(t, tm.View().ActiveDrivers)
	st, err = tm.DriverStatus(t.Context(), plain)
	require.NoError(t, err)
	assert.Equal(t, protocol.DriverFailed, st.State)
}

// A supervised driver waiting to be relaunched (its worker was taken for
// lost) that the worker turns out to still run when it registers again is
// re-attached there under its id: neither killed nor started a second time.
func TestWaitingSupervisedDriverReattachedToItsWorker(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 1, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/unregister", struct{}{}, nil))
	st, err := tm.DriverStatus(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, protocol.DriverRelaunching, st.State)

	// It comes back (with its cores taken by a driver it says it runs).
	tm.registerWorker(t, "worker-a", w, 1, 4096)
	require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerLatestState, "worker-a"), protocol.WorkerLatestState{
		WorkerID: "worker-a", Drivers: []protocol.DriverDescription{{DriverID: id, Cores: 1, MemoryMB: 1, State: protocol.DriverRunning}}}, nil))
	eventually(t, "driver RUNNING on worker-a", func() bool {
		v := tm.View()
		return len(v.ActiveDrivers) == 1 && v.ActiveDrivers[0].ID == id && v.ActiveDrivers[0].State == protocol.DriverRunning
	})
	assert.Empty(t, w.got(protocol.PathKillDriverOnWorker), "the driver it runs is not killed")
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, 1, v.Workers[0].CoresUsed, "the driver's core counted once")
}

// The re-attach itself, deterministically: a report (heartbeat or
// WorkerLatestState) that names a driver waiting to be relaunched attaches
// it to the reporting worker instead of killing it there.
func TestKillUnknownAdoptsWaitingDriver(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 1, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/unregister", struct{}{}, nil))

	tm.mu.Lock()
	wb := &workerInfo{id: "worker-b", host: "127.0.0.1", port: 1, url: w.url(), cores: 1, memMB: 4096, lastHeartbeat: tm.now(),
		state: protocol.WorkerAlive, executors: map[execKey]*executorInfo{}, drivers: map[string]*driverInfo{}}
	tm.st.workers[wb.id] = wb
	tm.killUnknownLocked(wb, protocol.WorkerSchedulerState{WorkerID: wb.id,
		Drivers: []protocol.DriverDescription{{DriverID: id, State: protocol.DriverRunning}}})
	d := tm.st.drivers[id]
	require.NotNil(t, d)
	assert.Same(t, wb, d.worker)
	assert.Equal(t, protocol.DriverRunning, d.state)
	assert.Equal(t, 1, wb.coresUsed)
	assert.Empty(t, tm.st.waitingDrivers)
	tm.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			tm.store.mu.Lock()
			t.Logf("stored: %+v", tm.store.drivers[id])
			tm.store.mu.Unlock()
			tm.mu.Lock()
			if d := tm.st.drivers[id]; d != nil {
				t.Logf("in memory: state %s worker %v", d.state, d.worker != nil)
			}
			tm.mu.Unlock()
			dumpLogs(t, tm)
		}
	})
	eventually(t, "the assignment persisted", func() bool {
		tm.store.mu.Lock()
		defer tm.store.mu.Unlock()
		return tm.store.drivers[id].WorkerID == "worker-b"
	})
	assert.Empty(t, w.got(protocol.PathKillDriverOnWorker))
}
