package master

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// Regression tests of the term lifecycle (issue 11): effects that leave the
// state machine report their outcome back to it, nothing is lost at a term's
// end, and reconciliation with the workers runs both ways.

func workerPath(p, id string) string { return strings.Replace(p, "{id}", id, 1) }

// trackedApp seeds an application record of this version (its executors
// listed) with the given executors on wid.
func trackedApp(s *memStore, aid string, a *peer, next int, execs ...recovery.ExecutorRecord) {
	s.apps[aid] = recovery.AppRecord{Format: 1, ID: aid, Desc: protocol.AppDescription{Name: "pi", Command: []string{"x"}, ExecutorMemMB: 64},
		ClientURL: a.url(), SubmitTime: time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC), State: protocol.AppRunning,
		NextExecID: next, ExecutorsTracked: true, Executors: execs}
}

func storedWorker(s *memStore, wid string, w *peer, port int) {
	s.workers[wid] = recovery.WorkerRecord{Format: 1, ID: wid, Host: "127.0.0.1", Port: port, URL: w.url(), Cores: 8, MemoryMB: 8192,
		Since: time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)}
}

func executorUpdates(t *testing.T, p *peer) map[int]protocol.ExecutorUpdated {
	out := map[int]protocol.ExecutorUpdated{}
	for _, b := range p.got(protocol.PathExecutorUpdated) {
		u := decodeAs[protocol.ExecutorUpdated](t, b)
		out[u.ExecutorID] = u
	}
	return out
}

// Item 0: an executor that ended while no master led (its worker's report
// was never acted on) reaches its driver after the failover, with its real
// final state; and one its worker neither runs nor ran is reported lost.
func TestExecutorEndedWhileLeaderlessReachesTheDriver(t *testing.T) {
	store := newMemStore()
	const wid, aid = "worker-20261120110000-127.0.0.1-7000", "app-20261120110000-1000"
	zero := 0
	w := newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathWorkerMasterChanged {
			return 200, protocol.WorkerSchedulerState{WorkerID: wid,
				Executors:         []protocol.ExecutorDescription{{AppID: aid, ExecutorID: 1, Cores: 1, MemoryMB: 64, State: protocol.ExecutorRunning}},
				FinishedExecutors: []protocol.ExecutorDescription{{AppID: aid, ExecutorID: 0, Cores: 1, MemoryMB: 64, State: protocol.ExecutorExited, ExitCode: &zero}}}
		}
		return 200, struct{}{}
	})
	a := appPeer(t, aid)
	storedWorker(store, wid, w, 7000)
	trackedApp(store, aid, a, 3,
		recovery.ExecutorRecord{ID: 0, WorkerID: wid, Cores: 1, MemoryMB: 64},
		recovery.ExecutorRecord{ID: 1, WorkerID: wid, Cores: 1, MemoryMB: 64},
		recovery.ExecutorRecord{ID: 2, WorkerID: wid, Cores: 1, MemoryMB: 64})

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 2)
	tm.waitStatus(t, protocol.MasterAlive)
	eventually(t, "the driver told of executors 0 and 2", func() bool { return len(executorUpdates(t, a)) == 2 })
	ups := executorUpdates(t, a)
	assert.Equal(t, protocol.ExecutorExited, ups[0].State, "executor 0 ended EXITED while no master led")
	require.NotNil(t, ups[0].ExitCode)
	assert.Equal(t, 0, *ups[0].ExitCode)
	assert.Equal(t, protocol.ExecutorLost, ups[2].State, "executor 2 is neither running nor finished on its worker")
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, 1, v.Workers[0].CoresUsed, "only executor 1 still holds cores")
	require.Len(t, v.ActiveApps, 1)
	assert.Equal(t, 1, v.ActiveApps[0].Executors)
	eventually(t, "the record lists executor 1 only", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		r := store.apps[aid]
		return len(r.Executors) == 1 && r.Executors[0].ID == 1
	})
	assert.EqualValues(t, 1, tm.View().HA.Reconciled.EndedWhileLeaderless)
}

// Item 0, the variant: a worker that does not come back after a failover
// gets every executor its applications' records place on it reported lost,
// and so does an executor whose worker record is gone altogether.
func TestWorkerLostDuringRecoveryReportsEveryRecordedExecutor(t *testing.T) {
	store := newMemStore()
	const wid, aid = "worker-20261120110000-127.0.0.1-7000", "app-20261120110000-1000"
	dead := newPeer(t, nil)
	deadURL := dead.url()
	dead.srv.Close() // connection refused: removed at once during recovery
	a := appPeer(t, aid)
	store.workers[wid] = recovery.WorkerRecord{Format: 1, ID: wid, Host: "127.0.0.1", Port: 7000, URL: deadURL, Cores: 8, MemoryMB: 8192}
	trackedApp(store, aid, a, 4,
		recovery.ExecutorRecord{ID: 0, WorkerID: wid, Cores: 1, MemoryMB: 64},
		recovery.ExecutorRecord{ID: 3, WorkerID: wid, Cores: 1, MemoryMB: 64},
		recovery.ExecutorRecord{ID: 2, WorkerID: "worker-gone", Cores: 1, MemoryMB: 64})

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 2)
	tm.waitStatus(t, protocol.MasterAlive)
	eventually(t, "the driver told of three lost executors", func() bool { return len(executorUpdates(t, a)) == 3 })
	for id, u := range executorUpdates(t, a) {
		assert.Equal(t, protocol.ExecutorLost, u.State, "executor %d", id)
		assert.True(t, u.WorkerLost, "executor %d was lost with its worker", id)
	}
}

// Item 2: executor ids are never reused after a failover, and a report from
// a worker that does not run the executor is refused and changes nothing.
func TestExecutorIDsSurviveFailoverAndReportsAreCheckedAgainstTheWorker(t *testing.T) {
	store := newMemStore()
	const aid = "app-20261120110000-1000"
	a := appPeer(t, aid)
	trackedApp(store, aid, a, 5, recovery.ExecutorRecord{ID: 4, WorkerID: "worker-gone", Cores: 1, MemoryMB: 64})

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 2)
	tm.waitStatus(t, protocol.MasterAlive)
	wa, wb := newPeer(t, nil), newPeer(t, nil)
	tm.registerWorker(t, "worker-a", wa, 1, 4096)
	eventually(t, "an executor launched on worker-a", func() bool { return len(wa.got(protocol.PathLaunchExecutor)) == 1 })
	le := decodeAs[protocol.LaunchExecutor](t, wa.got(protocol.PathLaunchExecutor)[0])
	assert.Equal(t, 5, le.ExecutorID, "ids 0..4 were handed out by earlier terms")
	store.mu.Lock()
	rec := store.apps[aid]
	store.mu.Unlock()
	assert.Equal(t, 6, rec.NextExecID, "the counter is persisted before the launch")
	require.Len(t, rec.Executors, 1)
	assert.Equal(t, "worker-a", rec.Executors[0].WorkerID)

	tm.registerWorker(t, "worker-b", wb, 4, 4096)
	err := tm.call(http.MethodPost, workerPath(protocol.PathExecutorState, "worker-b"), protocol.ExecutorStateChanged{
		WorkerID: "worker-b", AppID: aid, ExecutorID: 5, State: protocol.ExecutorKilled}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusForbidden, se.Code)
	tm.mu.Lock()
	e5 := tm.st.apps[aid].executors[5]
	tm.mu.Unlock()
	require.NotNil(t, e5, "the executor on worker-a is still there")
	assert.Equal(t, "worker-a", e5.worker.id)
	assert.EqualValues(t, 1, tm.View().HA.Reconciled.ReportsRefused)

	require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathExecutorState, "worker-a"), protocol.ExecutorStateChanged{
		WorkerID: "worker-a", AppID: aid, ExecutorID: 5, State: protocol.ExecutorRunning}, nil))
}

// Item 3: a launch a decommissioning worker refuses (503) frees its
// resources at once and is rescheduled on another worker in the next pass.
func TestRefusedLaunchIsRescheduledOnAnotherWorker(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	refusing := newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathLaunchExecutor {
			return http.StatusServiceUnavailable, protocol.ErrorBody{Error: "worker is decommissioned; refusing new executors"}
		}
		return 200, struct{}{}
	})
	tm.registerWorker(t, "worker-a", refusing, 4, 4096)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "x", client, 4, 64)
	eventually(t, "the launch refused", func() bool { return len(refusing.got(protocol.PathLaunchExecutor)) == 1 })
	eventually(t, "its resources freed", func() bool {
		v := tm.View()
		return len(v.Workers) == 1 && v.Workers[0].CoresUsed == 0 && v.Workers[0].State == protocol.WorkerDecommissioned
	})
	good := newPeer(t, nil)
	tm.registerWorker(t, "worker-b", good, 4, 4096)
	eventually(t, "relaunched on worker-b", func() bool { return len(good.got(protocol.PathLaunchExecutor)) == 1 })
	le := decodeAs[protocol.LaunchExecutor](t, good.got(protocol.PathLaunchExecutor)[0])
	assert.Equal(t, id, le.AppID)
	assert.Equal(t, 1, le.ExecutorID, "a new id, never the refused one's")
	assert.Len(t, refusing.got(protocol.PathLaunchExecutor), 1, "nothing more goes to the refusing worker")
	ups := executorUpdates(t, client)
	assert.Equal(t, protocol.ExecutorLost, ups[0].State, "the driver hears the refused executor is gone")
	assert.EqualValues(t, 1, tm.View().HA.Reconciled.LaunchRefused)
}

// Item 3, the ambiguous case: a launch whose answer was lost is settled by
// the worker's heartbeats; missing from two in a row, it is marked lost and
// its cores are freed. What the worker runs and the master does not know is
// killed.
func TestHeartbeatsReconcileBothWays(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "x", client, 2, 64)
	eventually(t, "two executors launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 2 })
	eventually(t, "launches answered", func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		a := tm.st.apps[id]
		return a != nil && a.executors[0] != nil && a.executors[0].acked && a.executors[1] != nil && a.executors[1].acked
	})
	hb := func(running ...protocol.ExecutorRef) {
		require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerHeartbeat, "worker-a"), protocol.Heartbeat{
			WorkerID: "worker-a", Epoch: 1, Running: &protocol.Running{Executors: running, Drivers: []string{"driver-nobody-knows"}}}, nil))
	}
	stray := protocol.ExecutorRef{AppID: "app-old", ExecutorID: 9}
	hb(protocol.ExecutorRef{AppID: id, ExecutorID: 0}, stray)
	_, lost := executorUpdates(t, client)[1]
	assert.False(t, lost, "one missed heartbeat proves nothing")
	hb(protocol.ExecutorRef{AppID: id, ExecutorID: 0})
	eventually(t, "executor 1 marked lost", func() bool { return executorUpdates(t, client)[1].State == protocol.ExecutorLost })
	eventually(t, "its cores given to a new executor", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 3 })
	assert.Equal(t, 2, decodeAs[protocol.LaunchExecutor](t, w.got(protocol.PathLaunchExecutor)[2]).ExecutorID)
	eventually(t, "the stray executor and driver killed", func() bool {
		return len(w.got(protocol.PathKillExecutor)) >= 1 && len(w.got(protocol.PathKillDriverOnWorker)) >= 1
	})
	ke := decodeAs[protocol.KillExecutor](t, w.got(protocol.PathKillExecutor)[0])
	assert.Equal(t, "app-old", ke.AppID)
	assert.GreaterOrEqual(t, tm.View().HA.Reconciled.MarkedLost, uint64(1))
}

// Item 3, drivers: an acknowledged driver that its worker does not run is
// relaunched (supervised) instead of staying RUNNING with no process.
func TestAcknowledgedDriverNotRunningIsRelaunched(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 64, Supervise: true})
	require.NoError(t, err)
	eventually(t, "driver launched", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	eventually(t, "launch answered", func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		d := tm.st.drivers[id]
		return d != nil && d.acked
	})
	for range reconcileMisses {
		require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerHeartbeat, "worker-a"), protocol.Heartbeat{
			WorkerID: "worker-a", Epoch: 1, Running: &protocol.Running{Executors: []protocol.ExecutorRef{}, Drivers: []string{}}}, nil))
	}
	eventually(t, "relaunched under its id", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 2 })
	ld := decodeAs[protocol.LaunchDriver](t, w.got(protocol.PathLaunchDriver)[1])
	assert.Equal(t, id, ld.DriverID)
	assert.Equal(t, 1, ld.Attempt, "a higher attempt: the worker starts it again")
}

// Item 4: a write queued after its term ended is answered (not left in a
// queue nobody drains), and every waiter returns when the term ends.
func TestPersisterAnswersEveryOpAcrossTheTermsEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tm := &term{ctx: ctx, cancel: cancel}
	l := logrus.New()
	l.SetLevel(logrus.PanicLevel)
	p := newPersister(ctx, logrus.NewEntry(l), tm.spawn)
	block := make(chan struct{})
	answered := make(chan error, 100)
	for i := range 50 {
		p.enqueue("k", &persistOp{fn: func(ctx context.Context) error {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return ctx.Err()
		}, done: []func(error){func(err error) { answered <- err }}})
		if i == 25 {
			cancel()
		}
	}
	tm.wait()
	for i := range 5 { // after the stripes closed
		p.enqueue("k"+string(rune('a'+i)), &persistOp{fn: func(context.Context) error { return nil },
			done: []func(error){func(err error) { answered <- err }}})
	}
	tm.wait()
	for range 55 {
		select {
		case err := <-answered:
			require.Error(t, err)
			assert.ErrorIs(t, err, recovery.ErrNotLeader)
		case <-time.After(5 * time.Second):
			t.Fatal("an op was never answered")
		}
	}
	assert.Zero(t, p.Depth())
	close(block)
}

// Item 5: a background write that fails with a transient error (a ZooKeeper
// server restarting) is retried until it lands; an executor limit of 0 is
// not left out of the store.
func TestFailedBackgroundWriteIsRetried(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "x", client, 1, 64)
	var fails atomic.Int32
	tm.store.mu.Lock()
	tm.store.fail = errors.New("zkutil: multi: zk: connection closed")
	tm.store.mu.Unlock()
	go func() {
		for fails.Add(1) < 3 {
			time.Sleep(60 * time.Millisecond)
		}
		tm.store.setFail(nil)
	}()
	require.NoError(t, tm.call(http.MethodPost, strings.Replace(protocol.PathRequestExecutors, "{id}", id, 1), map[string]int{"total": 0}, nil))
	eventually(t, "the limit of 0 persisted", func() bool {
		tm.store.mu.Lock()
		defer tm.store.mu.Unlock()
		r := tm.store.apps[id]
		return r.ExecutorLimit != nil && *r.ExecutorLimit == 0
	})
	assert.True(t, tm.logged("Could not persist app_"+id), "the failure is logged")
}

// Revoking a term waits for everything it started: no sender, stripe or
// loop of the old term runs when OnRevoked returns.
func TestRevokeWaitsForTheTermsGoroutines(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	hang := make(chan struct{})
	defer close(hang)
	slow := newPeer(t, func(string, []byte) (int, any) { <-hang; return 200, struct{}{} })
	tm.registerWorker(t, "worker-a", slow, 4, 4096)
	client := newPeer(t, nil)
	tm.registerApp(t, "x", client, 1, 64)
	eventually(t, "a launch in flight", func() bool { return len(slow.got(protocol.PathLaunchExecutor)) == 1 })
	t1 := tm.term()
	tm.el.revoke(errors.New("test"))
	done := make(chan struct{})
	go func() { t1.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the term's goroutines still run after OnRevoked returned")
	}
	assert.Zero(t, t1.persist.Depth())
}

// Run leaves no goroutine behind (its doc says so): not the term's senders,
// stripes and loop, nor the HTTP client's idle connections, nor the
// listeners'. goleak checks it after a term that launched an executor.
func TestRunLeavesNoGoroutine(t *testing.T) {
	w := newPeer(t, nil)
	client := newPeer(t, nil)
	before := goleak.IgnoreCurrent()
	store := newMemStore()
	cfg := testConfig()
	cfg.Now = newClock().Now
	lg, _ := test.NewNullLogger()
	el := newTestElector()
	m, err := New(cfg, el, store, logrus.NewEntry(lg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-el.ready
	tm := &tmaster{Master: m, el: el, store: store, base: "http://" + m.Addr(), cli: protocol.NewClient(5*time.Second, "")}
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	tm.registerWorker(t, "worker-a", w, 2, 1024)
	tm.registerApp(t, "x", client, 1, 64)
	eventually(t, "launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) >= 1 })
	tm.cli.HTTP.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	goleak.VerifyNone(t, before)
}

// /metrics serves the standard process metrics and the HA signals.
func TestStandardMetrics(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 3)
	tm.waitStatus(t, protocol.MasterAlive)
	resp, err := http.Get("http://" + tm.WebUIAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)
	for _, want := range []string{"go_goroutines ", "process_open_fds ", "process_resident_memory_bytes ",
		"sparkd_master_leader 1", "sparkd_master_epoch 3", `sparkd_master_state{state="ALIVE"} 1`,
		"sparkd_master_failover_seconds_count 1", "sparkd_master_outbox_depth ", "sparkd_master_persist_depth ",
		`sparkd_master_reconciled_total{action="marked_lost"} 0`} {
		assert.Contains(t, text, want)
	}
}

// A failover that loses a worker, which returns later: every other
// executor keeps running, the lost worker's executor is reported lost and
// its copy killed when the worker comes back, and every worker's used
// cores equal what it really runs.
func TestLostWorkerReturningLeavesOthersRunning(t *testing.T) {
	store := newMemStore()
	const w1, w2, aid = "worker-20261120110000-127.0.0.1-7001", "worker-20261120110000-127.0.0.1-7002", "app-20261120110000-1000"
	p1 := newPeer(t, func(path string, _ []byte) (int, any) {
		if path == protocol.PathWorkerMasterChanged {
			return 200, protocol.WorkerSchedulerState{WorkerID: w1,
				Executors: []protocol.ExecutorDescription{{AppID: aid, ExecutorID: 0, Cores: 2, MemoryMB: 64, State: protocol.ExecutorRunning}}}
		}
		return 200, struct{}{}
	})
	gone := newPeer(t, nil)
	storedWorker(store, w1, p1, 7001)
	storedWorker(store, w2, gone, 7002)
	gone.srv.Close() // lost: refuses the new leader
	a := appPeer(t, aid)
	trackedApp(store, aid, a, 2,
		recovery.ExecutorRecord{ID: 0, WorkerID: w1, Cores: 2, MemoryMB: 64},
		recovery.ExecutorRecord{ID: 1, WorkerID: w2, Cores: 2, MemoryMB: 64})
	store.apps[aid] = func(r recovery.AppRecord) recovery.AppRecord { r.Desc.MaxCores = 4; r.Desc.ExecutorCores = 2; return r }(store.apps[aid])

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 2)
	tm.waitStatus(t, protocol.MasterAlive)
	eventually(t, "executor 1 reported lost", func() bool { return executorUpdates(t, a)[1].State == protocol.ExecutorLost })
	eventually(t, "a replacement launched on worker 1", func() bool { return len(p1.got(protocol.PathLaunchExecutor)) == 1 })
	assert.Equal(t, 2, decodeAs[protocol.LaunchExecutor](t, p1.got(protocol.PathLaunchExecutor)[0]).ExecutorID)

	// The lost worker comes back (a new listener, the same id) and still
	// runs executor 1.
	back := newPeer(t, nil)
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: w2, Host: "127.0.0.1", Port: 7002, URL: back.url(), WebUIURL: "http://127.0.0.1:8081", Cores: 8, MemoryMB: 8192}, nil))
	require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerLatestState, w2), protocol.WorkerLatestState{WorkerID: w2,
		Executors: []protocol.ExecutorDescription{{AppID: aid, ExecutorID: 1, Cores: 2, MemoryMB: 64, State: protocol.ExecutorRunning}}}, nil))
	eventually(t, "its stale copy killed", func() bool { return len(back.got(protocol.PathKillExecutor)) == 1 })
	assert.Empty(t, p1.got(protocol.PathKillExecutor), "nothing on worker 1 is killed")
	used := map[string]int{}
	for _, w := range tm.View().Workers {
		used[w.ID] = w.CoresUsed
	}
	assert.Equal(t, 4, used[w1], "worker 1 runs executors 0 and 2")
	assert.Equal(t, 0, used[w2], "worker 2 runs nothing the master knows")
	tm.mu.Lock()
	ids := []int{}
	for id := range tm.st.apps[aid].executors {
		ids = append(ids, id)
	}
	tm.mu.Unlock()
	assert.ElementsMatch(t, []int{0, 2}, ids)
}

// An end whose report is still queued on the worker rides on the heartbeat
// and is applied as reported: a slow report never turns EXITED into LOST.
func TestHeartbeatCarriesEndsNotYetReported(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 1, 4096)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "x", client, 1, 64)
	eventually(t, "launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 1 })
	zero := 0
	for range reconcileMisses {
		require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerHeartbeat, "worker-a"), protocol.Heartbeat{
			WorkerID: "worker-a", Epoch: 1, Running: &protocol.Running{Executors: []protocol.ExecutorRef{}, Drivers: []string{},
				Ended: []protocol.ExecutorDescription{{AppID: id, ExecutorID: 0, State: protocol.ExecutorExited, ExitCode: &zero}}}}, nil))
	}
	eventually(t, "the driver told", func() bool { _, ok := executorUpdates(t, client)[0]; return ok })
	u := executorUpdates(t, client)[0]
	assert.Equal(t, protocol.ExecutorExited, u.State)
	require.NotNil(t, u.ExitCode)
	assert.Zero(t, *u.ExitCode)
	assert.Zero(t, tm.View().HA.Reconciled.MarkedLost)
}

// A launch to a worker whose process is gone (connection refused) is not
// retried there in a storm: the worker gets nothing until it heartbeats
// again, and the executor goes elsewhere.
func TestLaunchToADeadWorkerGoesElsewhereOnce(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	dead := newPeer(t, nil)
	tm.registerWorker(t, "worker-dead", dead, 8, 4096)
	dead.srv.Close()
	client := newPeer(t, nil)
	tm.registerApp(t, "x", client, 1, 64)
	eventually(t, "the launch refused", func() bool { return tm.View().HA.Reconciled.LaunchRefused >= 1 })
	good := newPeer(t, nil)
	tm.registerWorker(t, "worker-good", good, 1, 4096)
	eventually(t, "launched on the live worker", func() bool { return len(good.got(protocol.PathLaunchExecutor)) == 1 })
	// One scheduling pass's worth at most: the dead worker has 8 cores, and
	// each executor takes 1. (Before the fix they kept coming, dozens a second.)
	assert.Never(t, func() bool { return tm.View().HA.Reconciled.LaunchRefused > 8 }, 300*time.Millisecond, 10*time.Millisecond,
		"launches keep going to the dead worker")
}

// A worker marked unreachable that heartbeats again may take work again.
func TestHeartbeatClearsUnreachable(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	tm.registerWorker(t, "worker-a", newPeer(t, nil), 8, 4096)
	tm.mu.Lock()
	tm.st.workers["worker-a"].unreachable = true
	tm.mu.Unlock()
	require.NoError(t, tm.call(http.MethodPost, workerPath(protocol.PathWorkerHeartbeat, "worker-a"),
		protocol.Heartbeat{WorkerID: "worker-a", Epoch: 1}, nil))
	tm.mu.Lock()
	defer tm.mu.Unlock()
	assert.False(t, tm.st.workers["worker-a"].unreachable)
}

// A leader that fences itself for a moment in the middle of its re-attach
// round (a starved process: contact with ZooKeeper looks stale just after
// the sender checked) must not count the MasterChanged it did not send as
// unanswered: it waits and sends it. Before, those peers stayed UNKNOWN
// until the recovery timeout (the fleet simulator saw a 3,000-worker
// failover take 65 s).
func TestSelfFenceBetweenWaitAndSendLosesNoMasterChanged(t *testing.T) {
	store := newMemStore()
	const wid = "worker-20261120110000-127.0.0.1-7000"
	storedWorker(store, wid, workerPeer(t, wid, nil, nil), 7000)
	tm := startMaster(t, pauseConfig(), store)
	tm.el.setContact(time.Now())
	var once atomic.Bool
	testHookBeforeSend = func(path string) {
		if path == protocol.PathWorkerMasterChanged && once.CompareAndSwap(false, true) {
			tm.el.setContact(time.Now().Add(-time.Hour)) // self-fenced right now
			go func() {
				time.Sleep(50 * time.Millisecond) // the fault's length
				tm.el.setContact(time.Now())
			}()
		}
	}
	t.Cleanup(func() { testHookBeforeSend = nil })
	tm.el.elect(t, 2)
	eventually(t, "the worker re-attached and the master ALIVE", func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return tm.Master.status == protocol.MasterAlive
	})
	assert.True(t, once.Load())
	assert.False(t, tm.logged("did not answer MasterChanged"), "the unsent MasterChanged was counted as unanswered")
}
