package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

func launchMsg(m *fakeMaster, epoch int64, appID string, execID int, script string) protocol.LaunchExecutor {
	return protocol.LaunchExecutor{
		Stamp: protocol.Stamp{Epoch: epoch, MasterURL: m.sparkURL()},
		AppID: appID, ExecutorID: execID, Cores: 2, MemoryMB: 1024,
		App: protocol.AppDescription{Name: "test-app", Command: []string{"sh", "-c", script}, ExecutorMemMB: 1024,
			Env: map[string]string{"EXTRA": "x-{{EXECUTOR_ID}}"}, DriverURL: "http://driver:1234"},
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func pidGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// An executor gets its placeholders and environment, runs in
// <work-dir>/<app>/<exec>/ with stdout and stderr in files there, is reported
// RUNNING then EXITED, and the log page serves its output.
func TestExecutorRunsAndLogPageServesOutput(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())

	script := `echo "out {{APP_ID}} {{EXECUTOR_ID}} {{CORES}} {{MEMORY_MB}} {{HOSTNAME}} {{DRIVER_URL}}";` +
		`echo "env $SPARK_APP_ID $SPARK_EXECUTOR_ID $SPARK_EXECUTOR_CORES $SPARK_EXECUTOR_MEMORY $SPARK_DRIVER_URL $EXTRA";` +
		`echo "url $SPARK_WORKER_URL"; echo "cwd $(pwd)"; echo oops >&2`
	code, body := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-1", 0, script))
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 0, protocol.ExecutorExited) }, "no EXITED")
	states := m.executorStates()
	require.GreaterOrEqual(t, len(states), 2)
	assert.Equal(t, protocol.ExecutorRunning, states[0].State)
	require.NotNil(t, states[len(states)-1].ExitCode)
	assert.Equal(t, 0, *states[len(states)-1].ExitCode)

	dir := filepath.Join(cfg.WorkDir, "app-1", "0")
	out, err := os.ReadFile(filepath.Join(dir, "stdout"))
	require.NoError(t, err)
	assert.Contains(t, string(out), "out app-1 0 2 1024 127.0.0.1 http://driver:1234")
	assert.Contains(t, string(out), "env app-1 0 2 1024m http://driver:1234 x-0")
	assert.Contains(t, string(out), "url "+r.w.URL())
	realDir, _ := filepath.EvalSymlinks(dir)
	assert.Contains(t, string(out), "cwd "+realDir)
	errOut, err := os.ReadFile(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	assert.Equal(t, "oops\n", string(errOut))

	status, page := httpGet(t, r.w.WebUIURL()+"/logPage?appId=app-1&executorId=0&logType=stdout")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, "out app-1 0 2 1024")
	status, page = httpGet(t, r.w.WebUIURL()+"/logPage?appId=app-1&executorId=0&logType=stderr")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, "oops")
	status, raw := httpGet(t, r.w.WebUIURL()+"/log?appId=app-1&executorId=0&logType=stdout&offset=4&byteLength=5")
	assert.Equal(t, 200, status)
	assert.Equal(t, "app-1", raw)

	// A second launch of the same executor starts nothing.
	code, _ = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-1", 0, "echo again"))
	require.Equal(t, 200, code)
	out2, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	assert.Equal(t, string(out), string(out2))
}

// A non-zero exit is reported FAILED with its exit code.
func TestExecutorNonZeroExitIsFailed(t *testing.T) {
	m := newFakeMaster(t, 1)
	r := startWorker(t, testConfig(t, m.sparkURL()), nil)
	r.waitRegistered(t, m.sparkURL())
	code, _ := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-2", 3, "exit 3"))
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-2", 3, protocol.ExecutorFailed) }, "no FAILED")
	for _, s := range m.executorStates() {
		if s.State == protocol.ExecutorFailed {
			require.NotNil(t, s.ExitCode)
			assert.Equal(t, 3, *s.ExitCode)
			assert.Contains(t, s.Message, "code 3")
		}
	}
	// A command that cannot start is FAILED too.
	bad := launchMsg(m, 1, "app-2", 4, "")
	bad.App.Command = []string{"/nonexistent/executor-binary"}
	code, _ = post(t, r.w, protocol.PathLaunchExecutor, bad)
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-2", 4, protocol.ExecutorFailed) }, "no FAILED")
}

// Kill sends SIGTERM to the group and SIGKILL after the grace period when
// the executor ignores SIGTERM; the executor is reported KILLED.
func TestExecutorKillEscalates(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())

	code, _ := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-3", 0,
		`trap '' TERM; echo ready; while true; do sleep 0.05; done`))
	require.Equal(t, 200, code)
	stdout := filepath.Join(cfg.WorkDir, "app-3", "0", "stdout")
	eventually(t, 10*time.Second, func() bool { b, _ := os.ReadFile(stdout); return strings.Contains(string(b), "ready") }, "not ready")
	pid := r.w.schedulerState().Executors[0].PID
	require.NotZero(t, pid)

	start := time.Now()
	code, _ = post(t, r.w, protocol.PathKillExecutor, protocol.KillExecutor{
		Stamp: protocol.Stamp{Epoch: 1, MasterURL: m.sparkURL()}, AppID: "app-3", ExecutorID: 0})
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-3", 0, protocol.ExecutorKilled) }, "no KILLED")
	assert.GreaterOrEqual(t, time.Since(start), cfg.KillGracePeriod, "SIGKILL came before the grace period")
	assert.True(t, pidGone(pid))

	// A cooperative executor dies on SIGTERM, well before the grace period.
	code, _ = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-3", 1, `exec sleep 30`))
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-3", 1, protocol.ExecutorRunning) }, "not running")
	code, _ = post(t, r.w, protocol.PathKillExecutor, protocol.KillExecutor{
		Stamp: protocol.Stamp{Epoch: 1, MasterURL: m.sparkURL()}, AppID: "app-3", ExecutorID: 1})
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-3", 1, protocol.ExecutorKilled) }, "no KILLED")
}

// A master change neither kills executors nor loses state changes: changes
// the old master did not acknowledge are re-sent, in order, to the new one.
func TestMasterChangeKeepsExecutorsAndResendsStates(t *testing.T) {
	m1 := newFakeMaster(t, 1)
	cfg := testConfig(t, m1.sparkURL())
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m1.sparkURL())
	m1.set(func(m *fakeMaster) { m.failReports = true })

	code, _ := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m1, 1, "app-4", 0, `exec sleep 30`))
	require.Equal(t, 200, code)
	code, _ = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m1, 1, "app-4", 1, `exit 7`))
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return r.w.pendingReports() == 3 }, "reports not queued: %d", r.w.pendingReports())
	pid := r.w.schedulerState().Executors[0].PID

	m2 := newFakeMaster(t, 2)
	c := protocol.NewClient(5*time.Second, "")
	var st protocol.WorkerSchedulerState
	require.NoError(t, c.Call(context.Background(), http.MethodPost, r.w.URL(), protocol.PathWorkerMasterChanged,
		protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: 2, MasterURL: m2.sparkURL()}}, &st))
	assert.Equal(t, r.w.ID(), st.WorkerID)
	require.Len(t, st.Executors, 1)
	assert.Equal(t, "app-4", st.Executors[0].AppID)
	assert.Equal(t, protocol.ExecutorRunning, st.Executors[0].State)
	assert.Equal(t, pid, st.Executors[0].PID)

	eventually(t, 10*time.Second, func() bool { return len(m2.executorStates()) == 3 }, "states not re-sent: %v", m2.executorStates())
	got := m2.executorStates()
	assert.Equal(t, []protocol.ExecutorState{protocol.ExecutorRunning, protocol.ExecutorRunning, protocol.ExecutorFailed},
		[]protocol.ExecutorState{got[0].State, got[1].State, got[2].State})
	assert.False(t, pidGone(pid), "the executor must survive the master change")
	assert.Equal(t, 0, r.w.pendingReports())
}

// Cluster-mode drivers get SPARK_MASTER with the full list, run in
// <work-dir>/<driver-id>/, are reported FINISHED or KILLED.
func TestDriverRunner(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	stamp := protocol.Stamp{Epoch: 1, MasterURL: m.sparkURL()}

	code, body := post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-1",
		Desc: protocol.DriverSpec{Command: []string{"sh", "-c", `echo "master=$SPARK_MASTER id=$SPARK_DRIVER_ID"`},
			Cores: 1, MemoryMB: 512, Masters: "spark://a:7077,b:7077"}})
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool {
		for _, s := range m.driverStates() {
			if s.DriverID == "driver-1" && s.State == protocol.DriverFinished {
				return true
			}
		}
		return false
	}, "no FINISHED: %v", m.driverStates())
	out, err := os.ReadFile(filepath.Join(cfg.WorkDir, "driver-1", "stdout"))
	require.NoError(t, err)
	assert.Equal(t, "master=spark://a:7077,b:7077 id=driver-1\n", string(out))
	status, page := httpGet(t, r.w.WebUIURL()+"/logPage?driverId=driver-1&logType=stdout")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, "master=spark://a:7077,b:7077")

	code, _ = post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-2",
		Desc: protocol.DriverSpec{Command: []string{"sleep", "30"}, Cores: 1, MemoryMB: 512}})
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return len(r.w.schedulerState().Drivers) == 1 }, "driver-2 not running")
	code, _ = post(t, r.w, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: stamp, DriverID: "driver-2"})
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool {
		for _, s := range m.driverStates() {
			if s.DriverID == "driver-2" && s.State == protocol.DriverKilled {
				return true
			}
		}
		return false
	}, "no KILLED: %v", m.driverStates())
	for _, s := range m.driverStates() {
		if s.DriverID == "driver-2" && s.State == protocol.DriverKilled {
			assert.Empty(t, s.Exception, "a killed driver reports no exception (was: killed by signal terminated)")
		}
	}
}

// Stopping the worker kills its executors and drivers, reports them KILLED
// and tells the master it leaves.
func TestShutdownKillsWorkAndUnregisters(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); _ = w.Close() })
	eventually(t, 10*time.Second, func() bool { _, ok := w.Master(); return ok }, "not registered")

	code, _ := post(t, w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-5", 0, `trap '' TERM; while true; do sleep 0.05; done`))
	require.Equal(t, 200, code)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-5", 0, protocol.ExecutorRunning) }, "not running")
	pid := w.schedulerState().Executors[0].PID

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	assert.True(t, pidGone(pid))
	assert.True(t, m.hasExecutorState("app-5", 0, protocol.ExecutorKilled))
	assert.Equal(t, 1, m.count("unregister"))
}

// Decommission refuses new executors, tells the master, and lets running
// executors finish.
func TestDecommission(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.DecommissionEnabled = true
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	code, _ := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-6", 0, `exec sleep 30`))
	require.Equal(t, 200, code)

	require.NoError(t, r.w.Decommission(context.Background()))
	assert.Equal(t, 1, m.count("decommission"))
	code, body := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-6", 1, `exit 0`))
	assert.Equal(t, 503, code)
	assert.Contains(t, body.Error, "decommissioned")
	assert.Len(t, r.w.schedulerState().Executors, 1)
	_, js := httpGet(t, r.w.WebUIURL()+"/json")
	assert.Contains(t, js, `"state": "DECOMMISSIONED"`)

	w2, err := New(testConfig(t, "m:7077"), testLogger(t))
	require.NoError(t, err)
	defer w2.Close()
	assert.ErrorIs(t, w2.Decommission(context.Background()), ErrDecommissionDisabled)
}

// Run leaves no goroutine behind.
func TestRunLeavesNoGoroutines(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.Timeout = 400 * time.Millisecond // heartbeats every 100ms
	cfg.CleanupEnabled, cfg.CleanupInterval = true, 50*time.Millisecond
	before := runtime.NumGoroutine()
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	eventually(t, 10*time.Second, func() bool { return m.count("heartbeat") >= 2 }, "no heartbeats")
	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= before }, "goroutines: %d before, %d after",
		before, runtime.NumGoroutine())
}

// An application whose executors keep failing keeps the directories of its
// last RetainedExecutorDirs finished executors only; the others are
// removed (the work dir does not grow with every failed launch).
func TestFinishedExecutorDirsBounded(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.RetainedExecutorDirs = 3
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	const n = 8
	for i := range n {
		code, body := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-9", i, "echo x; exit 1"))
		require.Equal(t, 200, code, body.Error)
		eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-9", i, protocol.ExecutorFailed) }, "no FAILED for %d", i)
	}
	done := make(chan struct{})
	go func() { r.w.removals.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("directory removals did not finish")
	}
	entries, err := os.ReadDir(filepath.Join(cfg.WorkDir, "app-9"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"5", "6", "7"}, names, "the last 3 executors' directories")
	top, err := os.ReadDir(cfg.WorkDir)
	require.NoError(t, err)
	for _, e := range top {
		assert.False(t, strings.HasPrefix(e.Name(), ".removing-"), "left over: %s", e.Name())
	}
}

// waitDriverStates waits until driver id has been reported in exactly the
// states want, in order.
func waitDriverStates(t *testing.T, m *fakeMaster, id string, want ...protocol.DriverState) {
	t.Helper()
	var got []protocol.DriverState
	eventually(t, 10*time.Second, func() bool {
		got = got[:0]
		for _, s := range m.driverStates() {
			if s.DriverID == id {
				got = append(got, s.State)
			}
		}
		return assert.ObjectsAreEqual(want, got)
	}, "driver %s: want states %v, got %v", id, want, got)
}

// A supervised driver that exits non-zero is restarted by its worker under
// the same id, in the same directory, after 1 s, then 2 s while it keeps
// failing quickly (Spark's DriverRunner); it is reported RELAUNCHING and
// RUNNING, never FAILED. A kill while it waits for its restart ends it
// KILLED without starting it again.
func TestSupervisedDriverRestartedUnderItsID(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	clock := newFakeClock()
	r := startWorker(t, cfg, clock)
	r.waitRegistered(t, m.sparkURL())
	stamp := protocol.Stamp{Epoch: 1, MasterURL: m.sparkURL()}
	R, RL := protocol.DriverRunning, protocol.DriverRelaunching

	// Fails twice, then runs.
	script := `n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs; [ $n -ge 3 ] && exec sleep 30; exit 3`
	code, body := post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-s",
		Desc: protocol.DriverSpec{Command: []string{"sh", "-c", script}, Cores: 1, MemoryMB: 64, Supervise: true}})
	require.Equal(t, 200, code, body.Error)
	waitDriverStates(t, m, "driver-s", R, RL)
	clock.waitPending(t, driverFirstBackoff)
	assert.Len(t, r.w.schedulerState().Drivers, 1, "listed as running while it waits")
	clock.Advance(driverFirstBackoff)
	waitDriverStates(t, m, "driver-s", R, RL, R, RL)
	clock.waitPending(t, 2*driverFirstBackoff)
	clock.Advance(2 * driverFirstBackoff)
	waitDriverStates(t, m, "driver-s", R, RL, R, RL, R)
	runs, err := os.ReadFile(filepath.Join(cfg.WorkDir, "driver-s", "runs"))
	require.NoError(t, err)
	assert.Equal(t, "3\n", string(runs), "restarted in the same directory")
	code, _ = post(t, r.w, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: stamp, DriverID: "driver-s"})
	require.Equal(t, 200, code)
	waitDriverStates(t, m, "driver-s", R, RL, R, RL, R, protocol.DriverKilled)

	// Killed while waiting to be restarted.
	code, _ = post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-k",
		Desc: protocol.DriverSpec{Command: []string{"sh", "-c", "exit 3"}, Cores: 1, MemoryMB: 64, Supervise: true}})
	require.Equal(t, 200, code)
	waitDriverStates(t, m, "driver-k", R, RL)
	code, _ = post(t, r.w, protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: stamp, DriverID: "driver-k"})
	require.Equal(t, 200, code)
	waitDriverStates(t, m, "driver-k", R, RL, protocol.DriverKilled)
	assert.Empty(t, r.w.schedulerState().Drivers)

	// A master's relaunch of a finished driver under its id (a higher
	// attempt) starts it again; a repeat of the same launch does not.
	code, _ = post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-k",
		Desc: protocol.DriverSpec{Command: []string{"sh", "-c", "exit 3"}, Cores: 1, MemoryMB: 64, Supervise: true}})
	require.Equal(t, 200, code)
	waitDriverStates(t, m, "driver-k", R, RL, protocol.DriverKilled, protocol.DriverKilled)
	code, _ = post(t, r.w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: stamp, DriverID: "driver-k", Attempt: 1,
		Desc: protocol.DriverSpec{Command: []string{"sh", "-c", "exit 0"}, Cores: 1, MemoryMB: 64, Supervise: true}})
	require.Equal(t, 200, code)
	waitDriverStates(t, m, "driver-k", R, RL, protocol.DriverKilled, protocol.DriverKilled, R, protocol.DriverFinished)
}
