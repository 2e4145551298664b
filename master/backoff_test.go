package master

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// instantExitWorker is a fake worker whose executors start and end at once
// with exitCode: every LaunchExecutor is answered, then reported RUNNING
// and FAILED (non-zero) or EXITED (0).
func instantExitWorker(t *testing.T, tm *tmaster, id string, exitCode int) *peer {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // the reports end before the master stops
	return newPeer(t, func(path string, body []byte) (int, any) {
		if path != protocol.PathLaunchExecutor {
			return 200, struct{}{}
		}
		var le protocol.LaunchExecutor
		if err := json.Unmarshal(body, &le); err != nil {
			return 400, struct{}{}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			final := protocol.ExecutorFailed
			if exitCode == 0 {
				final = protocol.ExecutorExited
			}
			code := exitCode
			for _, s := range []protocol.ExecutorStateChanged{
				{WorkerID: id, AppID: le.AppID, ExecutorID: le.ExecutorID, State: protocol.ExecutorRunning},
				{WorkerID: id, AppID: le.AppID, ExecutorID: le.ExecutorID, State: final, ExitCode: &code},
			} {
				if err := tm.call(http.MethodPost, "/v1/workers/"+id+"/executor-state", s, nil); err != nil {
					return
				}
			}
		}()
		return 200, struct{}{}
	})
}

// launches returns how many executors the master has granted to app (its
// executor counter), and how many of them it still tracks.
func (tm *tmaster) launches(appID string) (granted, active int, found bool) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if a := tm.st.apps[appID]; a != nil {
		return a.nextExecID, len(a.executors), true
	}
	for _, a := range tm.st.completedApps {
		if a.id == appID {
			return a.nextExecID, 0, false
		}
	}
	return 0, 0, false
}

// pass moves the fake clock by d and runs the leader's tick and a
// scheduling pass synchronously. It returns the executors granted so far.
func (tm *tmaster) pass(appID string, d time.Duration) int {
	tm.clock.Advance(d)
	tm.onTick(tm.term())
	tm.mu.Lock()
	tm.scheduleNowLocked()
	tm.mu.Unlock()
	granted, _, _ := tm.launches(appID)
	return granted
}

// step moves the fake clock by d, runs the leader's tick and a scheduling
// pass synchronously, and waits until every executor granted so far has
// been reported ended. It returns the executors granted so far and whether
// the application is still active.
func (tm *tmaster) step(t *testing.T, appID string, d time.Duration) (int, bool) {
	t.Helper()
	tm.pass(appID, d)
	var granted int
	var found bool
	eventually(t, "executors of "+appID+" reported ended", func() bool {
		var active int
		granted, active, found = tm.launches(appID)
		return active == 0
	})
	return granted, found
}

// An application whose executors start and end at once is relaunched with
// a backoff on its worker (1 s, doubling, at most a minute), not in a
// storm; with non-zero exits it fails after spark.deploy.maxExecutorRetries
// failures in a row; exits with 0 back off the same way but never fail it.
func TestExecutorRelaunchBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exitCode int
	}{{"non-zero exit", 1}, {"exit 0", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()           // maxExecutorRetries: 10
			cfg.WorkerTimeout = time.Hour // the fake worker does not heartbeat
			tm := startMaster(t, cfg, nil)
			tm.el.elect(t, 1)
			tm.waitStatus(t, protocol.MasterAlive)
			w := instantExitWorker(t, tm, "worker-a", tc.exitCode)
			tm.registerWorker(t, "worker-a", w, 4, 4096)
			appID := tm.registerApp(t, "false", newPeer(t, nil), 0, 512)

			// Launches at 0, 1, 3, 7, 15 and 31 s: six in the first minute.
			granted, active := 0, true
			for range 60 {
				granted, active = tm.step(t, appID, time.Second)
			}
			require.True(t, active)
			assert.Equal(t, 6, granted, "launches in the first minute")
			assert.Len(t, w.got(protocol.PathLaunchExecutor), granted)
			v := tm.View()
			require.Len(t, v.ActiveApps, 1)
			assert.Contains(t, v.ActiveApps[0].WaitingReason, "relaunch backoff")

			// Then at most one a minute: 63, 123, 183 and 243 s make ten.
			for range 4 * 60 {
				if granted, active = tm.step(t, appID, time.Second); !active {
					break
				}
			}
			if tc.exitCode != 0 {
				require.False(t, active, "the application fails after 10 failures")
				assert.Equal(t, 10, granted)
				v := tm.View()
				require.Len(t, v.CompletedApps, 1)
				assert.Equal(t, protocol.AppFailed, v.CompletedApps[0].State)
				assert.True(t, tm.logged("failed 10 times; removing it"))
				return
			}
			require.True(t, active, "exits with 0 are not failures")
			assert.Equal(t, 10, granted, "but they back off as much")
		})
	}
}

// An executor that ran for executorSuccessfulRun resets the backoff of its
// worker and the failure count: the next one is launched at once.
func TestExecutorLongRunResetsBackoff(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)
	appID := tm.registerApp(t, "flaky", newPeer(t, nil), 0, 512)
	one := 1
	report := func(id int, st protocol.ExecutorState) {
		t.Helper()
		s := protocol.ExecutorStateChanged{WorkerID: "worker-a", AppID: appID, ExecutorID: id, State: st}
		if st.Finished() {
			s.ExitCode = &one
		}
		require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/executor-state", s, nil))
	}
	eventually(t, "executor 0 launched", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 1 })
	report(0, protocol.ExecutorRunning)
	report(0, protocol.ExecutorFailed)
	assert.Equal(t, 1, tm.pass(appID, 0), "held back after a quick failure")
	require.Equal(t, 2, tm.pass(appID, time.Second), "launched again after 1 s")

	report(1, protocol.ExecutorRunning)
	tm.clock.Advance(executorSuccessfulRun)
	tm.onTick(tm.term())
	tm.mu.Lock()
	retries, backoffs := tm.st.apps[appID].retries, len(tm.st.apps[appID].backoff)
	tm.mu.Unlock()
	assert.Equal(t, 0, retries, "a long enough run resets the failure count")
	assert.Equal(t, 0, backoffs, "and the backoff")
	report(1, protocol.ExecutorFailed)
	assert.Equal(t, 3, tm.pass(appID, 0), "relaunched at once after a long run")
}
