package master

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// An application that asked for no more executors (limit 0, as `sparkd submit
// --exec` does once its executors are granted) must not get new ones from the
// next leader: the stored limit distinguishes "never asked" from "asked for 0".
func TestExecutorLimitZeroSurvivesFailover(t *testing.T) {
	a := &appInfo{id: "app-1", limit: 0, limitSet: true}
	data, err := json.Marshal(a.record())
	require.NoError(t, err)
	var back recovery.AppRecord
	require.NoError(t, json.Unmarshal(data, &back))
	require.NotNil(t, back.ExecutorLimit, "a limit of 0 is stored: %s", data)
	assert.Equal(t, 0, *back.ExecutorLimit)
	data, err = json.Marshal((&appInfo{id: "app-2"}).record())
	require.NoError(t, err)
	assert.NotContains(t, string(data), "executorLimit", "no limit asked, none stored")

	store := newMemStore()
	const wid, aid = "worker-20261120110000-127.0.0.1-7000", "app-20261120110000-0000"
	w := workerPeer(t, wid, nil, nil) // a live worker with 8 free cores
	app := appPeer(t, aid)
	seed(store, w, wid, app, aid)
	rec := store.apps[aid]
	zero := 0
	rec.ExecutorLimit = &zero
	store.apps[aid] = rec

	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 3)
	tm.waitStatus(t, protocol.MasterAlive)
	v := tm.View()
	require.Len(t, v.ActiveApps, 1)
	assert.Equal(t, 0, v.ActiveApps[0].Executors)
	assert.Equal(t, "the application requested no executors", v.ActiveApps[0].WaitingReason)
	assert.Empty(t, w.got(protocol.PathLaunchExecutor), "no executor may be launched for an app that asked for none")
}

// `sparkd submit --exec` asks for 0 more executors once its own are granted;
// the running application must not then show "requested no executors" as a
// reason it is waiting (it is not waiting). Regression test.
func TestExecutorLimitZeroWithExecutorsIsNotWaiting(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 8, 8192)
	id := tm.registerApp(t, "pi", newPeer(t, nil), 2, 1024)
	eventually(t, "4 executors", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 4 })
	require.NoError(t, tm.call("POST", "/v1/apps/"+id+"/executors", protocol.RequestExecutors{Total: 0}, nil))
	tm.mu.Lock()
	tm.scheduleNowLocked()
	tm.mu.Unlock()
	v := tm.View()
	require.Len(t, v.ActiveApps, 1)
	assert.Equal(t, protocol.AppRunning, v.ActiveApps[0].State)
	assert.Empty(t, v.ActiveApps[0].WaitingReason)
}
