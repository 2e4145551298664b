// Package e2e holds sparkd's end-to-end tests: a real 3-node ZooKeeper, two
// masters and three workers, each a separate bin/sparkd process started by
// internal/cluster, driven with `sparkd submit` and checked through the
// masters' /json and PathLeader.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

// sessionTimeout is the masters' ZooKeeper session timeout in these tests.
const sessionTimeout = 2 * time.Second

// job is a long-running program on the cluster (cluster.HoldScript).
type job struct{ cluster.Job }

func newJob(t *testing.T, c *cluster.Cluster) job {
	j, err := cluster.NewJob(t.TempDir())
	require.NoError(t, err)
	c.TrackPids(j.PidDir)
	return job{j}
}

func (j job) waitPids(t *testing.T, n int, timeout time.Duration) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool { pids = cluster.ReadPids(j.PidDir); return len(pids) >= n },
		timeout, 50*time.Millisecond, "%d processes started", n)
	sort.Ints(pids)
	return pids
}

func (j job) release(t *testing.T) { require.NoError(t, j.ReleaseAll()) }

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// execApp runs `sparkd submit --exec` with one 1-core executor per worker.
type execApp struct {
	cmd    *exec.Cmd
	out    *cluster.SyncBuffer
	errOut *cluster.SyncBuffer
	done   chan error
}

func startExecApp(t *testing.T, c *cluster.Cluster, name string, executors int, j job) *execApp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	args := append([]string{"submit", "--master", c.MasterURLs(), "--name", name, "--executor-cores", "1",
		"--total-executor-cores", fmt.Sprint(executors), "--executors", fmt.Sprint(executors),
		"--executor-memory", "64m", "--exec", "--"}, j.Argv()...)
	a := &execApp{cmd: c.Command(ctx, args...), out: &cluster.SyncBuffer{}, errOut: &cluster.SyncBuffer{}, done: make(chan error, 1)}
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.errOut
	require.NoError(t, a.cmd.Start())
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(os.Interrupt)
		select {
		case <-a.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("---- sparkd submit stdout ----\n%s\n---- stderr ----\n%s", a.out, a.errOut)
		}
	})
	return a
}

func (a *execApp) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return a.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("sparkd submit did not exit within %s\nstdout:\n%s\nstderr:\n%s", timeout, a.out, a.errOut)
		return -1
	}
}

// appState finds the named application in the leader's /json.
func appState(c *cluster.Cluster, leader int, name string) (cluster.AppState, bool) {
	st, err := c.State(leader)
	if err != nil {
		return cluster.AppState{}, false
	}
	for _, a := range st.ActiveApps {
		if a.Name == name {
			return a, true
		}
	}
	return cluster.AppState{}, false
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts ZooKeeper and sparkd processes")
	}
	cluster.RequireDaemons(t)
	zk := zktest.Start(t, 3)
	opts := func() cluster.Options {
		return cluster.Options{Ensemble: zk, Masters: 2, Workers: 3, SessionTimeout: sessionTimeout,
			WorkerTimeout: 6 * time.Second, WorkerCores: 2, WorkerMemory: "512m"}
	}
	t.Run("leader SIGKILL", func(t *testing.T) { failover(t, cluster.Start(t, opts()), syscall.SIGKILL) })
	t.Run("leader SIGTERM", func(t *testing.T) { failover(t, cluster.Start(t, opts()), syscall.SIGTERM) })
	t.Run("supervised driver relaunch", func(t *testing.T) { supervisedDriver(t, cluster.Start(t, opts())) })
	t.Run("Ctrl-C kills the app", func(t *testing.T) { interrupt(t, cluster.Start(t, opts())) })
	t.Run("executor ends while no master leads", func(t *testing.T) { endsWhileLeaderless(t, cluster.Start(t, opts())) })
}

// interrupt: SIGINT to `sparkd submit --exec` kills the application, its
// executors stop and its cores are free again.
func interrupt(t *testing.T, c *cluster.Cluster) {
	j := newJob(t, c)
	const name = "e2e-interrupt"
	app := startExecApp(t, c, name, 3, j)
	pids := j.waitPids(t, 3, 60*time.Second)
	leader, _, err := c.Leader()
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := appState(c, leader, name); return ok }, 30*time.Second, 50*time.Millisecond)

	require.NoError(t, app.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 130, app.wait(t, 30*time.Second))
	assert.Contains(t, app.errOut.String(), "killed")
	require.Eventually(t, func() bool {
		st, err := c.State(leader)
		if err != nil {
			return false
		}
		used := 0
		for _, w := range st.Workers {
			used += w.CoresUsed
		}
		_, active := appState(c, leader, name)
		return !active && used == 0
	}, 30*time.Second, 50*time.Millisecond, "app gone and its cores free")
	for _, pid := range pids {
		pid := pid
		assert.Eventually(t, func() bool { return !alive(pid) }, 30*time.Second, 50*time.Millisecond, "executor %d stopped", pid)
	}
}

// failover: an --exec app with long-running executors survives the loss of
// the leader; the standby takes office in bounded time, re-attaches every
// worker and the app, the executors keep their pids, no executor is launched
// twice, the app finishes with exit 0, and the old leader comes back as
// STANDBY.
func failover(t *testing.T, c *cluster.Cluster, sig syscall.Signal) {
	j := newJob(t, c)
	const name = "e2e-failover"
	app := startExecApp(t, c, name, 3, j)
	pids := j.waitPids(t, 3, 60*time.Second)
	old, oldInfo, err := c.Leader()
	require.NoError(t, err)
	require.Eventually(t, func() bool { a, ok := appState(c, old, name); return ok && a.State == string(protocol.AppRunning) },
		30*time.Second, 50*time.Millisecond, "app RUNNING before the failover")

	start := time.Now()
	if sig == syscall.SIGKILL {
		c.Masters[old].Kill()
	} else {
		require.NoError(t, c.Masters[old].Signal(syscall.SIGTERM))
	}
	bound := sessionTimeout + 10*time.Second // generous: a loaded 2-core machine
	if sig == syscall.SIGTERM {
		bound = 8 * time.Second
	}
	leader, info, err := c.WaitNewLeader(old, oldInfo.Epoch, bound)
	require.NoError(t, err, "standby ALIVE within %s", bound)
	tookOffice := time.Since(start)
	require.NoError(t, c.WaitWorkers(3, 30*time.Second), "all workers re-attached")
	workersBack := time.Since(start)
	require.Eventually(t, func() bool { a, ok := appState(c, leader, name); return ok && a.State == string(protocol.AppRunning) },
		30*time.Second, 20*time.Millisecond, "app re-attached and RUNNING on the new leader")
	appBack := time.Since(start)
	t.Logf("failover by %s (session timeout %s): new leader %s ALIVE at epoch %d after %s; workers re-attached after %s; app after %s",
		sig, sessionTimeout, c.Masters[leader].Name, info.Epoch, tookOffice.Round(time.Millisecond),
		workersBack.Round(time.Millisecond), appBack.Round(time.Millisecond))
	if sig == syscall.SIGTERM {
		require.NoError(t, c.Masters[old].WaitExit(30*time.Second))
	}

	for _, pid := range pids {
		assert.True(t, alive(pid), "executor pid %d survived the failover", pid)
	}
	assert.Len(t, cluster.ReadPids(j.PidDir), 3, "no executor launched twice")
	assert.Eventually(t, func() bool { return strings.Contains(app.out.String(), "master changed") },
		10*time.Second, 50*time.Millisecond, "submit saw the new master")

	j.release(t)
	assert.Equal(t, 0, app.wait(t, 60*time.Second), "app exit code\nstdout:\n%s\nstderr:\n%s", app.out, app.errOut)
	assert.Contains(t, app.out.String(), "3 exited 0, 0 failed")

	// (d) The old leader, restarted, comes back as STANDBY.
	c.RestartMaster(old)
	require.Eventually(t, func() bool {
		l, err := c.LeaderInfo(old)
		return err == nil && l.State == protocol.MasterStandby && l.Epoch >= info.Epoch
	}, 30*time.Second, 50*time.Millisecond, "restarted master is STANDBY")
	now, _, err := c.Leader()
	require.NoError(t, err)
	assert.Equal(t, leader, now, "leadership did not move back")
}

// supervisedDriver: a supervised cluster-mode driver keeps its submission
// id through everything that restarts it: a crash (its worker restarts it
// in place), the loss of its worker (the master relaunches it on another
// one) and a master failover; `--status` and `--kill` of that id work
// throughout, and /json has one entry for it.
func supervisedDriver(t *testing.T, c *cluster.Cluster) {
	j := newJob(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"submit", "--master", c.MasterURLs(), "--deploy-mode", "cluster", "--supervise",
		"--driver-cores", "1", "--driver-memory", "64m", "--name", "e2e-driver"}, j.Argv()...)
	out, err := c.Command(ctx, args...).Output()
	require.NoError(t, err, "%s", out)
	driverID := strings.TrimSpace(string(out))
	require.NotEmpty(t, driverID)

	// running waits until the leader's /json lists the driver RUNNING, as
	// its only entry, on another worker than notOn, and returns its worker.
	running := func(what, notOn string, timeout time.Duration) string {
		t.Helper()
		var worker string
		require.Eventually(t, func() bool {
			l, _, err := c.Leader()
			if err != nil {
				return false
			}
			st, err := c.State(l)
			if err != nil {
				return false
			}
			found := false
			for _, d := range append(st.Drivers, st.Done...) {
				if d.ID != driverID {
					return false // another driver: a relaunch under a new id
				}
				if d.State == string(protocol.DriverRunning) && d.Worker != notOn {
					worker, found = d.Worker, true
				}
			}
			return found && len(st.Drivers)+len(st.Done) == 1
		}, timeout, 50*time.Millisecond, "driver %s RUNNING (%s), the only driver entry", driverID, what)
		return worker
	}
	status := func() string {
		t.Helper()
		out, err := c.Command(ctx, "submit", "--master", c.MasterURLs(), "--status", driverID).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	workerID := running("submitted", "", 60*time.Second)
	firstPids := j.waitPids(t, 1, 30*time.Second)

	// A crash: its worker restarts it under the same id, in place.
	require.NoError(t, syscall.Kill(firstPids[0], syscall.SIGKILL))
	j.waitPids(t, 2, 30*time.Second)
	assert.Equal(t, workerID, running("restarted by its worker", "", 30*time.Second), "restarted on the same worker")
	assert.Contains(t, status(), "driverState: RUNNING")

	// The driver's host dies: its worker and the driver process.
	leader, _, err := c.Leader()
	require.NoError(t, err)
	st, err := c.State(leader)
	require.NoError(t, err)
	victim := -1
	for _, w := range st.Workers {
		if w.ID == workerID {
			for k, p := range c.Workers {
				if p.Port == w.Port {
					victim = k
				}
			}
		}
	}
	require.GreaterOrEqual(t, victim, 0, "worker %s of driver %s", workerID, driverID)
	c.Workers[victim].Kill()
	for _, pid := range cluster.ReadPids(j.PidDir) {
		if pid != firstPids[0] { // that one is gone: its pid may be reused
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	newWorker := running("relaunched by the master on another worker", workerID, 90*time.Second)
	assert.Contains(t, status(), "driverState: RUNNING")

	// A master failover: the new leader knows it by the same id.
	leader, info, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	c.Masters[leader].Kill()
	_, _, err = c.WaitNewLeader(leader, info.Epoch, 60*time.Second)
	require.NoError(t, err)
	assert.Equal(t, newWorker, running("after the failover", "", 60*time.Second))
	assert.Contains(t, status(), "driverState: RUNNING")

	// --kill of the submitted id ends it for good.
	out, err = c.Command(ctx, "submit", "--master", c.MasterURLs(), "--kill", driverID).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		out, err := c.Command(ctx, "submit", "--master", c.MasterURLs(), "--status", driverID).CombinedOutput()
		return err == nil && strings.Contains(string(out), "driverState: KILLED")
	}, 30*time.Second, 100*time.Millisecond, "driver %s KILLED", driverID)
	t.Logf("driver %s: restarted on %s, relaunched on %s, kept its id through a failover", driverID, workerID, newWorker)
}

// endsWhileLeaderless is the reviewer's reproduction of issue 11, item 0:
// the leader is SIGKILLed one second into an application's two 2.5 s
// executors, so both end (exit 0) while no master leads. The worker's
// reports reach no one; the new leader must still tell the driver, and
// `sparkd submit --exec` must exit 0 instead of waiting forever.
func endsWhileLeaderless(t *testing.T, c *cluster.Cluster) {
	old, oldInfo, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	marks := t.TempDir()
	cmd := c.Command(ctx, "submit", "--master", c.MasterURLs(), "--name", "short", "--executor-cores", "1",
		"--total-executor-cores", "2", "--executors", "2", "--executor-memory", "64m", "--exec", "--",
		"/bin/sh", "-c", "touch "+marks+"/$SPARK_EXECUTOR_ID; sleep 2.5")
	out := &cluster.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- sparkd submit ----\n%s", out)
		}
	})
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir(marks)
		return len(ents) == 2
	}, 30*time.Second, 20*time.Millisecond, "both executors started")
	time.Sleep(time.Second) // the fault's timing: 1 s into the 2.5 s executors
	c.Masters[old].Kill()
	_, _, err = c.WaitNewLeader(old, oldInfo.Epoch, 30*time.Second)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err, "sparkd submit must succeed: both executors exited 0\n%s", out)
	case <-time.After(60 * time.Second):
		t.Fatalf("sparkd submit never finished after the failover\n%s", out)
	}
}
