package master

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

func livenessConfig() Config {
	cfg := testConfig()
	cfg.AppTimeout = 30 * time.Second
	cfg.WorkerTimeout = time.Hour // workers do not heartbeat in these tests
	cfg.DefaultCores = 1          // one 1-core executor per application
	return cfg
}

func (tm *tmaster) appHeartbeat(t *testing.T, appID string) protocol.AppHeartbeatResponse {
	t.Helper()
	var resp protocol.AppHeartbeatResponse
	require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+appID+"/heartbeat", protocol.AppHeartbeat{AppID: appID, Epoch: 1}, &resp))
	return resp
}

// tick runs the leader's periodic checks now (on the fake clock's time).
func (tm *tmaster) tickNow(t *testing.T) {
	t.Helper()
	tr := tm.term()
	require.NotNil(t, tr)
	tm.onTick(tr)
}

func appStates(v View) map[string]protocol.AppState {
	out := map[string]protocol.AppState{}
	for _, a := range append(v.ActiveApps, v.CompletedApps...) {
		out[a.ID] = a.State
	}
	return out
}

// An application whose driver died without unregistering (SIGKILL, a
// crash) stops heartbeating; after Config.AppTimeout the master asks it,
// the connection is refused, and it is removed as FINISHED, its executors
// killed on their workers and its cores freed. An application that
// heartbeats is kept, and so is a silent one whose driver answers.
func TestAppWithoutHeartbeatIsRemoved(t *testing.T) {
	tm := startMaster(t, livenessConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	dead, live, quiet := newPeer(t, nil), newPeer(t, nil), newPeer(t, nil)
	deadID := tm.registerApp(t, "dead", dead, 1, 64)
	liveID := tm.registerApp(t, "live", live, 1, 64)
	quietID := tm.registerApp(t, "quiet", quiet, 1, 64)
	eventually(t, "the applications run an executor each", func() bool { return len(w.got(protocol.PathLaunchExecutor)) >= 3 })
	require.Len(t, tm.View().ActiveApps, 3)
	eventually(t, "the dead application was told of its executor", func() bool { return len(dead.got(protocol.PathExecutorAdded)) > 0 })
	dead.srv.Close() // the driver's process is gone

	// 5s steps: "live" heartbeats every step, "dead" never again.
	for range 6 {
		tm.clock.Advance(5 * time.Second)
		tm.appHeartbeat(t, liveID)
		tm.tickNow(t)
	}
	assert.Equal(t, protocol.AppRunning, appStates(tm.View())[deadID], "not removed within the bound (30s)")
	tm.clock.Advance(2 * time.Second)
	tm.appHeartbeat(t, liveID)
	tm.tickNow(t)

	eventually(t, "the dead application removed", func() bool { return appStates(tm.View())[deadID] == protocol.AppFinished })
	eventually(t, "the quiet driver asked", func() bool { return len(quiet.got(protocol.PathAppPing)) == 1 })
	eventually(t, "the quiet application kept", func() bool {
		return tm.logged("Application " + quietID + " sent no heartbeat in 30 seconds, but its driver answers; keeping it")
	})
	v := tm.View()
	st := appStates(v)
	assert.Equal(t, protocol.AppRunning, st[liveID], "the heartbeating application is kept")
	assert.Equal(t, protocol.AppRunning, st[quietID], "the silent application whose driver answers is kept")
	assert.True(t, tm.logged("Removing application "+deadID+" because we got no heartbeat in 30 seconds"))
	eventually(t, "its executor killed on the worker", func() bool {
		for _, b := range w.got(protocol.PathKillExecutor) {
			if decodeAs[protocol.KillExecutor](t, b).AppID == deadID {
				return true
			}
		}
		return false
	})
	eventually(t, "the worker told the application finished", func() bool {
		for _, b := range w.got(protocol.PathApplicationFinished) {
			if decodeAs[protocol.ApplicationFinished](t, b).AppID == deadID {
				return true
			}
		}
		return false
	})
	require.Len(t, v.Workers, 1)
	assert.Equal(t, 2, v.Workers[0].CoresUsed, "the dead application's core was freed")
	eventually(t, "its record removed", func() bool { return !tm.store.has(recovery.KindApp, deadID) })
	for _, b := range w.got(protocol.PathKillExecutor) {
		assert.NotEqual(t, liveID, decodeAs[protocol.KillExecutor](t, b).AppID)
	}
}

// After a failover the new leader gives every recovered application a
// fresh AppTimeout, however long ago its driver was last heard of (by the
// old leader), and only then times it out.
func TestRecoveredAppGetsAFreshGracePeriod(t *testing.T) {
	store := newMemStore()
	const aid = "app-20261120110000-0000"
	a := appPeer(t, aid)
	seed(store, nil, "", a, aid) // submitted an hour before the clock's now
	tm := startMaster(t, livenessConfig(), store)
	tm.el.elect(t, 2)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range tm.logs.AllEntries() {
				t.Log(e.Level, e.Message, e.Data)
			}
		}
	})
	tm.waitRecovering(t, false) // the driver acknowledged MasterChanged
	assert.True(t, tm.logged("Application has been re-registered: "+aid))
	a.srv.Close() // and then died

	tm.clock.Advance(29 * time.Second)
	tm.tickNow(t)
	assert.Equal(t, protocol.AppWaiting, appStates(tm.View())[aid], "kept within the first AppTimeout of the term")
	tm.clock.Advance(2 * time.Second)
	// Ticks until one runs: the clock's jump may look like a pause, and
	// nothing is checked until the term is confirmed again.
	eventually(t, "removed once silent after a full AppTimeout", func() bool {
		tm.tickNow(t)
		return appStates(tm.View())[aid] == protocol.AppFinished
	})
}

// No application is timed out in the first AppTimeout of a term, even one
// registered at the term's start and silent since (its driver may be busy
// finding the new leader).
func TestNoAppTimeoutInTheFirstIntervalOfATerm(t *testing.T) {
	tm := startMaster(t, livenessConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	id := tm.registerApp(t, "quiet", newPeer(t, nil), 1, 64)
	tm.clock.Advance(30 * time.Second) // exactly the bound
	tm.tickNow(t)
	assert.Equal(t, protocol.AppWaiting, appStates(tm.View())[id])
}

// A driver that is gone (its push listener refuses connections) is removed
// as soon as it refused two pushes in a row, without waiting for the
// heartbeat bound, as Spark removes an application whose driver
// disconnected; its executors are killed.
func TestAppRefusingTwoPushesIsRemovedAtOnce(t *testing.T) {
	tm := startMaster(t, livenessConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "killed", client, 1, 64)
	client.srv.Close() // SIGKILL: the port now refuses connections
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096) // LaunchExecutor; ExecutorAdded is refused
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, tm)
		}
	})
	eventually(t, "executor launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 1 })
	le := decodeAs[protocol.LaunchExecutor](t, w.got(protocol.PathLaunchExecutor)[0])
	eventually(t, "first refusal counted", func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		a := tm.st.apps[id]
		return a != nil && a.refused == 1
	})
	assert.Equal(t, protocol.AppRunning, appStates(tm.View())[id], "one refusal is not enough")
	// The executor reports RUNNING: ExecutorUpdated is refused too.
	require.NoError(t, tm.call(http.MethodPost, strings.Replace(protocol.PathExecutorState, "{id}", "worker-a", 1), protocol.ExecutorStateChanged{
		AppID: id, ExecutorID: le.ExecutorID, State: protocol.ExecutorRunning}, nil))
	eventually(t, "application removed", func() bool { return appStates(tm.View())[id] == protocol.AppFinished })
	assert.True(t, tm.logged(client.url()+" got disassociated, removing it."))
	eventually(t, "its executor killed", func() bool { return len(w.got(protocol.PathKillExecutor)) == 1 })
	assert.Equal(t, 0, tm.View().Workers[0].CoresUsed)
}

// A heartbeat between two refused pushes shows the driver is alive: the
// refusals are not "in a row".
func TestAppHeartbeatResetsRefusals(t *testing.T) {
	tm := startMaster(t, livenessConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "flaky", client, 1, 64)
	tm.mu.Lock()
	tm.st.apps[id].refused = 1
	tm.mu.Unlock()
	tm.appHeartbeat(t, id)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	assert.Equal(t, 0, tm.st.apps[id].refused)
}

// dumpLogs prints the master's log (for a failed test).
func dumpLogs(t *testing.T, tm *tmaster) {
	for _, e := range tm.logs.AllEntries() {
		t.Log(e.Level, e.Message)
	}
}
