package master

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

func TestRPCBadBodiesName400Field(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	h := tm.Handler()
	cases := []struct {
		name, path, body, field string
	}{
		{"empty body", protocol.PathRegisterWorker, ``, "body"},
		{"not JSON", protocol.PathRegisterWorker, `{nope`, "body"},
		{"worker without host", protocol.PathRegisterWorker, `{"id":"w","port":1,"url":"http://x","cores":1,"memoryMb":1}`, "host"},
		{"worker wrong type", protocol.PathRegisterWorker, `{"id":"w","host":"h","port":"seven"}`, "port"},
		{"worker zero cores", protocol.PathRegisterWorker, `{"id":"w","host":"h","port":1,"url":"http://x","cores":0,"memoryMb":1}`, "cores"},
		{"app without client", protocol.PathRegisterApp, `{"app":{"name":"x","command":["a"],"executorMemoryMb":1}}`, "clientUrl"},
		{"app without name", protocol.PathRegisterApp, `{"clientUrl":"http://c","app":{"command":["a"],"executorMemoryMb":1}}`, "app.name"},
		{"driver without command", protocol.PathSubmitDriver, `{"cores":1,"memoryMb":1}`, "command"},
		{"executor state without app", "/v1/workers/w/executor-state", `{"executorId":1,"state":"RUNNING"}`, "appId"},
		{"driver state without state", "/v1/workers/w/driver-state", `{"driverId":"d"}`, "state"},
		{"negative executors", "/v1/apps/a/executors", `{"total":-1}`, "total"},
		// Regressions: these bodies used to be accepted and acted on.
		{"executors without total", "/v1/apps/a/executors", `{"x":1}`, "total"},
		{"executors null body", "/v1/apps/a/executors", `null`, "total"},
		{"decommission not JSON", "/v1/workers/w/decommission", `{`, "body"},
		{"decommission without workerId", "/v1/workers/w/decommission", `{"x":1}`, "workerId"},
		{"decommission of another worker", "/v1/workers/w/decommission", `{"workerId":"other"}`, "workerId"},
		{"unregister not JSON", "/v1/workers/w/unregister", `[`, "body"},
		{"unregister of another worker", "/v1/workers/w/unregister", `{"workerId":"other"}`, "workerId"},
		{"heartbeat without workerId", "/v1/workers/w/heartbeat", `{"epoch":1}`, "workerId"},
		{"heartbeat of another worker", "/v1/workers/w/heartbeat", `{"workerId":"other","epoch":1}`, "workerId"},
		{"app unregister not JSON", "/v1/apps/a/unregister", `{`, "body"},
		{"app unregister of another app", "/v1/apps/a/unregister", `{"appId":"b"}`, "appId"},
		{"app heartbeat without appId", "/v1/apps/a/heartbeat", `{}`, "appId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
			assert.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			var eb protocol.ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
			assert.True(t, strings.HasPrefix(eb.Error, c.field), "error %q names field %q", eb.Error, c.field)
		})
	}
}

// A malformed body must not act: before the fix `{` decommissioned the
// worker and `{"x":1}` set the application's executor target to 0.
func TestRPCMalformedBodiesDoNotAct(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 8, 8192)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "pi", client, 2, 1024)
	eventually(t, "4 executors", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 4 })
	h := tm.Handler()
	for _, c := range []struct{ path, body string }{
		{"/v1/workers/worker-a/decommission", `{`},
		{"/v1/workers/worker-a/decommission", `{"workerId":"worker-b"}`},
		{"/v1/workers/worker-a/unregister", `{"workerId":"worker-b"}`},
		{"/v1/apps/" + id + "/executors", `{"x":1}`},
		{"/v1/apps/" + id + "/unregister", `{"appId":"app-other"}`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
		assert.Equal(t, http.StatusBadRequest, rec.Code, "%s %s: %s", c.path, c.body, rec.Body.String())
	}
	v := tm.View()
	require.Len(t, v.Workers, 1)
	assert.Equal(t, protocol.WorkerAlive, v.Workers[0].State)
	require.Len(t, v.ActiveApps, 1)
	assert.Empty(t, v.ActiveApps[0].WaitingReason)
	assert.False(t, tm.logged("requested to set total executors to 0"))
	// The real senders' bodies (and an empty one, from older senders) still work.
	require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+id+"/executors", protocol.RequestExecutors{Total: 0}, nil))
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/worker-a/decommission", protocol.WorkerDecommissioning{WorkerID: "worker-a"}, nil))
	assert.Equal(t, protocol.WorkerDecommissioned, tm.View().Workers[0].State)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/workers/worker-a/unregister", nil))
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestRPCStandbyAnswers503WithHint(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.otherLeader(t, "spark://leader:7077", 4)
	h := tm.Handler()
	for _, c := range []struct{ path, body string }{
		{protocol.PathRegisterWorker, `{"id":"w","host":"h","port":1,"url":"http://x","cores":1,"memoryMb":1}`},
		{protocol.PathRegisterApp, `{"clientUrl":"http://c","app":{"name":"x","command":["a"],"executorMemoryMb":1}}`},
		{protocol.PathSubmitDriver, `{"command":["a"],"cores":1,"memoryMb":1}`},
		{"/v1/workers/w/heartbeat", `{"workerId":"w","epoch":1}`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, c.path)
		var eb protocol.ErrorBody
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
		require.NotNil(t, eb.Hint, c.path)
		assert.Equal(t, "spark://leader:7077", eb.Hint.LeaderURL)
		assert.EqualValues(t, 4, eb.Hint.Epoch)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, protocol.PathLeader, nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	var li protocol.LeaderInfo
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &li))
	assert.Equal(t, protocol.MasterStandby, li.State)
	assert.Equal(t, "spark://leader:7077", li.LeaderURL)
}

// While it recovers, a new leader is ALIVE: it accepts submissions (they
// wait for a worker that has answered) and re-registrations (SPARK-46346).
func TestRPCRecoveringAcceptsSubmissionsAndReregistration(t *testing.T) {
	store := newMemStore()
	hang := make(chan struct{})
	silent := newPeer(t, func(string, []byte) (int, any) { <-hang; return 200, struct{}{} })
	t.Cleanup(func() { close(hang) })
	const wid = "worker-x"
	seed(store, silent, wid, nil, "")
	cfg := testConfig()
	cfg.RPCTimeout = 30e9
	tm := startMaster(t, cfg, store)
	tm.el.elect(t, 2)
	tm.waitRecovering(t, true)
	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	require.NoError(t, err)
	v := tm.View()
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, id, v.ActiveDrivers[0].ID)
	assert.Equal(t, protocol.DriverSubmitted, v.ActiveDrivers[0].State, "nothing is placed on a worker that has not answered")
	var resp protocol.RegisteredWorker
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{ID: wid, Host: "127.0.0.1",
		Port: 7000, URL: silent.url(), Cores: 8, MemoryMB: 8192}, &resp))
	assert.True(t, resp.Duplicate)
	// Its state report completes recovery without waiting for the timeout.
	require.NoError(t, tm.call(http.MethodPost, "/v1/workers/"+wid+"/latest-state", protocol.WorkerLatestState{WorkerID: wid}, nil))
	tm.waitRecovering(t, false)
	assert.Equal(t, protocol.WorkerAlive, tm.View().Workers[0].State)
}

func TestRPCAppLifecycle(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 8, 8192)
	client := newPeer(t, nil)
	id := tm.registerApp(t, "pi", client, 2, 1024)
	assert.Regexp(t, `^app-\d{14}-1000$`, id, "the first number of epoch 1's block")
	assert.True(t, tm.logged("Registered app pi with ID "+id))
	// Registering again from the same client is idempotent.
	assert.Equal(t, id, tm.registerApp(t, "pi", client, 2, 1024))
	eventually(t, "4 executors of 2 cores", func() bool { return len(w.got(protocol.PathLaunchExecutor)) == 4 })
	eventually(t, "driver told of executors", func() bool { return len(client.got(protocol.PathExecutorAdded)) == 4 })
	require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+id+"/executors", protocol.RequestExecutors{Total: 2}, nil))
	var hb protocol.AppHeartbeatResponse
	require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+id+"/heartbeat", protocol.AppHeartbeat{AppID: id, Epoch: 1}, &hb))
	assert.Equal(t, protocol.AppRunning, hb.State)
	require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+id+"/unregister", protocol.UnregisterApplication{AppID: id}, nil))
	eventually(t, "executors killed", func() bool { return len(w.got(protocol.PathKillExecutor)) == 4 })
	eventually(t, "worker told app finished", func() bool { return len(w.got(protocol.PathApplicationFinished)) == 1 })
	v := tm.View()
	assert.Empty(t, v.ActiveApps)
	require.Len(t, v.CompletedApps, 1)
	assert.Equal(t, protocol.AppFinished, v.CompletedApps[0].State)
	assert.Equal(t, 0, v.Workers[0].CoresUsed)
	err := tm.call(http.MethodPost, "/v1/apps/nope/kill", struct{}{}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Code)
}

func TestRetainedApplicationsTrimmed(t *testing.T) {
	cfg := testConfig()
	cfg.RetainedApplications = 10
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	for range 12 {
		client := newPeer(t, nil)
		id := tm.registerApp(t, "a", client, 1, 1)
		require.NoError(t, tm.KillApp(t.Context(), id))
	}
	n := len(tm.View().CompletedApps)
	assert.LessOrEqual(t, n, 10)
	assert.GreaterOrEqual(t, n, 9)
}

// A worker's direct registration and the one that followed a standby's hint
// meet at the leader; the second is answered "in progress". The leader
// logged "Registering worker" for both. Regression: once.
func TestConcurrentRegistrationLoggedOnce(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	gate := make(chan struct{})
	tm.store.mu.Lock()
	tm.store.gate = gate
	tm.store.mu.Unlock()
	reg := protocol.RegisterWorker{ID: "worker-a", Host: "127.0.0.1", Port: 7000, URL: "http://127.0.0.1:7000", Cores: 1, MemoryMB: 1}
	first := make(chan error, 1)
	go func() { first <- tm.call(http.MethodPost, protocol.PathRegisterWorker, reg, nil) }()
	eventually(t, "first registration pending", func() bool { return tm.logged("Registering worker 127.0.0.1:7000") })
	err := tm.call(http.MethodPost, protocol.PathRegisterWorker, reg, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.Code)
	close(gate)
	require.NoError(t, <-first)
	n := 0
	for _, e := range tm.logs.AllEntries() {
		if strings.Contains(e.Message, "Registering worker 127.0.0.1:7000") {
			n++
		}
	}
	assert.Equal(t, 1, n)
}
