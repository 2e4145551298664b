package master

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// A driver whose assignment to a worker could not be persisted (a
// ZooKeeper timeout or connection loss, not a fence) must not stay RUNNING
// with no process behind it: it waits again and is launched once the store
// answers.
func TestDriverAssignmentPersistFailureRetries(t *testing.T) {
	old := driverLaunchRetry
	driverLaunchRetry = 50 * time.Millisecond
	t.Cleanup(func() { driverLaunchRetry = old })

	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	var failures atomic.Int32
	tm.store.mu.Lock()
	tm.store.putDriver = func(r recovery.DriverRecord) error {
		if r.WorkerID != "" && failures.Add(1) <= 2 {
			return errors.New("zkutil: multi: zk: connection closed")
		}
		return nil
	}
	tm.store.mu.Unlock()

	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	require.NoError(t, err, "the submission itself is persisted")
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)

	eventually(t, "driver launched after the store recovered", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	assert.GreaterOrEqual(t, failures.Load(), int32(3))
	launched := decodeAs[protocol.LaunchDriver](t, w.got(protocol.PathLaunchDriver)[0])
	assert.Equal(t, id, launched.DriverID)
	eventually(t, "assignment persisted", func() bool {
		tm.store.mu.Lock()
		defer tm.store.mu.Unlock()
		return tm.store.drivers[id].WorkerID == "worker-a"
	})
	v := tm.View()
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, protocol.DriverRunning, v.ActiveDrivers[0].State)
	require.Len(t, v.Workers, 1)
	assert.Equal(t, 1, v.Workers[0].CoresUsed, "the failed assignments released their cores")
}

// A recovered worker that took the new leader's MasterChanged but whose
// answer was lost (it was paused past the RPC timeout) heartbeats the new
// leader while still UNKNOWN. It must be asked to re-register, and be
// re-attached from its WorkerLatestState, instead of being removed at the
// recovery timeout with everything it runs (executors reported lost,
// supervised drivers relaunched while they still run).
func TestUnknownWorkerHeartbeatReattachesIt(t *testing.T) {
	store := newMemStore()
	const wid, aid = "worker-20261120110000-127.0.0.1-7000", "app-20261120110000-0000"
	hang := make(chan struct{})
	w := newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathWorkerMasterChanged {
			<-hang // paused: the answer never reaches the master in time
		}
		return 200, struct{}{}
	})
	t.Cleanup(func() { close(hang) }) // before the peer's Close (cleanups run last-in first-out)
	a := appPeer(t, aid)
	spec := protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 512, Supervise: true}
	seed(store, w, wid, a, aid, recovery.DriverRecord{Format: 1, ID: "driver-1", Spec: spec, State: protocol.DriverRunning, WorkerID: wid})

	cfg := testConfig()
	cfg.RPCTimeout = 200 * time.Millisecond
	tm := startMaster(t, cfg, store)
	tm.el.elect(t, 4)
	tm.waitRecovering(t, true)
	eventually(t, "MasterChanged given up", func() bool { return tm.logged("did not answer MasterChanged") })

	var hb protocol.HeartbeatResponse
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/"+wid+"/heartbeat", protocol.Heartbeat{WorkerID: wid, Epoch: 4}, &hb))
	assert.True(t, hb.Reregister, "an UNKNOWN worker that heartbeats must be asked to re-register")

	// What the real worker does next: register again, then report its state.
	port := 7000
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: wid, Host: "127.0.0.1", Port: port, URL: w.url(), WebUIURL: "http://127.0.0.1:8081", Cores: 8, MemoryMB: 8192}, nil))
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/"+wid+"/latest-state", protocol.WorkerLatestState{WorkerID: wid,
		Executors: []protocol.ExecutorDescription{{AppID: aid, ExecutorID: 2, Cores: 4, MemoryMB: 1024, State: protocol.ExecutorRunning}},
		Drivers:   []protocol.DriverDescription{{DriverID: "driver-1", Cores: 1, MemoryMB: 512, State: protocol.DriverRunning}}}, nil))

	// No clock advance: recovery completes because nothing is UNKNOWN.
	tm.waitRecovering(t, false)
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerAlive, v.Workers[0].State)
	require.Len(t, v.ActiveApps, 1)
	assert.Equal(t, 1, v.ActiveApps[0].Executors, "the executor is kept, not reported lost")
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, "driver-1", v.ActiveDrivers[0].ID, "the driver is re-attached, not relaunched")
	assert.Empty(t, w.got(protocol.PathKillExecutor))
	assert.Empty(t, w.got(protocol.PathKillDriverOnWorker))
}

// A submission or registration whose write failed ambiguously (it
// committed, but the store answered with a timeout) is retried by the
// persister until the store answers, and then acknowledged: one record,
// under the id the client is given. (Before writes were retried, the
// ambiguous record was undone and the client told to retry under a new id.)
func TestAmbiguousWriteIsRetriedNotDuplicated(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	var once atomic.Bool
	tm.store.mu.Lock()
	tm.store.ambiguous = func(recovery.Kind, string) error {
		if once.CompareAndSwap(false, true) {
			return errors.New("zkutil: multi: zkutil: call deadline exceeded")
		}
		return nil
	}
	tm.store.mu.Unlock()

	spec := protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1}
	id, err := tm.SubmitDriver(t.Context(), spec)
	require.NoError(t, err, "the write is retried until the store answers")
	assert.True(t, once.Load(), "the first attempt failed")
	tm.store.mu.Lock()
	var stored []string
	for k := range tm.store.drivers {
		stored = append(stored, k)
	}
	tm.store.mu.Unlock()
	assert.Equal(t, []string{id}, stored, "one submission, one record")

	once.Store(false)
	client := newPeer(t, nil)
	var ra protocol.RegisteredApplication
	req := protocol.RegisterApplication{App: protocol.AppDescription{Name: "x", Command: []string{"x"}, ExecutorMemMB: 1}, ClientURL: client.url()}
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterApp, req, &ra))
	tm.store.mu.Lock()
	var apps []string
	for k := range tm.store.apps {
		apps = append(apps, k)
	}
	tm.store.mu.Unlock()
	assert.Equal(t, []string{ra.AppID}, apps, "one registration, one record")
}
