package worker

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// Every command from a lower epoch is refused with 409, logged and counted,
// and has no effect.
func TestStaleEpochCommandsAreRefused(t *testing.T) {
	m := newFakeMaster(t, 5)
	cfg := testConfig(t, m.sparkURL())
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	require.EqualValues(t, 5, r.w.Epoch())

	old := protocol.Stamp{Epoch: 4, MasterURL: "spark://zombie:7077"}
	cmds := []struct {
		path string
		body any
	}{
		{protocol.PathLaunchExecutor, protocol.LaunchExecutor{Stamp: old, AppID: "app-z", ExecutorID: 0, Cores: 1, MemoryMB: 64,
			App: protocol.AppDescription{Name: "z", Command: []string{"sh", "-c", "echo launched"}, ExecutorMemMB: 64}}},
		{protocol.PathKillExecutor, protocol.KillExecutor{Stamp: old, AppID: "app-z", ExecutorID: 0}},
		{protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: old, DriverID: "driver-z",
			Desc: protocol.DriverSpec{Command: []string{"true"}, Cores: 1, MemoryMB: 64}}},
		{protocol.PathKillDriverOnWorker, protocol.KillDriver{Stamp: old, DriverID: "driver-z"}},
		{protocol.PathApplicationFinished, protocol.ApplicationFinished{Stamp: old, AppID: "app-z"}},
		{protocol.PathReconnectWorker, protocol.ReconnectWorker{Stamp: old}},
		{protocol.PathWorkerMasterChanged, protocol.MasterChanged{Stamp: old}},
	}
	for i, c := range cmds {
		t.Run(c.path, func(t *testing.T) {
			code, body := post(t, r.w, c.path, c.body)
			assert.Equal(t, http.StatusConflict, code)
			assert.Contains(t, body.Error, "stale epoch 4")
			assert.EqualValues(t, i+1, r.w.StaleEpochRejections())
		})
	}
	_, err := os.Stat(filepath.Join(cfg.WorkDir, "app-z"))
	assert.True(t, os.IsNotExist(err), "a stale launch must not create anything")
	_, err = os.Stat(filepath.Join(cfg.WorkDir, "driver-z"))
	assert.True(t, os.IsNotExist(err))
	u, ok := r.w.Master()
	assert.True(t, ok)
	assert.Equal(t, m.sparkURL(), u)

	_, metrics := httpGet(t, r.w.WebUIURL()+"/metrics/prometheus")
	assert.Contains(t, metrics, `metrics_worker_staleEpochRejections_Count{type="counters"} 7`)

	// The current epoch is obeyed.
	code, _ := post(t, r.w, protocol.PathApplicationFinished, protocol.ApplicationFinished{
		Stamp: protocol.Stamp{Epoch: 5, MasterURL: m.sparkURL()}, AppID: "app-z"})
	assert.Equal(t, 200, code)
}

// Malformed commands get a 400 naming the field.
func TestMalformedCommandsName400Field(t *testing.T) {
	m := newFakeMaster(t, 1)
	w, err := newWorker(testConfig(t, m.sparkURL()), testLogger(t), realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	h := w.rpcHandler()
	stamp := `"epoch":1,"masterUrl":"spark://m:7077"`
	app := `"app":{"name":"a","command":["true"],"executorMemoryMb":64}`
	tests := []struct {
		path, body, field string
	}{
		{protocol.PathLaunchExecutor, `{"appId":"a","executorId":0,"cores":1,"memoryMb":64,` + app + `}`, "epoch"},
		{protocol.PathLaunchExecutor, `{` + stamp + `,"executorId":0,"cores":1,"memoryMb":64,` + app + `}`, "appId"},
		{protocol.PathLaunchExecutor, `{` + stamp + `,"appId":"..","executorId":0,"cores":1,"memoryMb":64,` + app + `}`, "appId"},
		{protocol.PathLaunchExecutor, `{` + stamp + `,"appId":"a","executorId":0,"cores":0,"memoryMb":64,` + app + `}`, "cores"},
		{protocol.PathLaunchExecutor, `{` + stamp + `,"appId":"a","executorId":0,"cores":1,"memoryMb":64}`, "app.command"},
		{protocol.PathLaunchExecutor, `{` + stamp + `,"appId":"a","executorId":"zero"}`, "executorId"},
		{protocol.PathLaunchExecutor, `not json`, "body"},
		{protocol.PathLaunchExecutor, ``, "body"},
		{protocol.PathKillExecutor, `{` + stamp + `}`, "appId"},
		{protocol.PathLaunchDriver, `{` + stamp + `,"desc":{"command":["x"],"cores":1,"memoryMb":1}}`, "driverId"},
		{protocol.PathLaunchDriver, `{` + stamp + `,"driverId":"d","desc":{"cores":1,"memoryMb":1}}`, "desc.command"},
		{protocol.PathLaunchDriver, `{` + stamp + `,"driverId":"d/../x","desc":{"command":["x"],"cores":1,"memoryMb":1}}`, "driverId"},
		{protocol.PathKillDriverOnWorker, `{` + stamp + `}`, "driverId"},
		{protocol.PathApplicationFinished, `{"epoch":1}`, "masterUrl"},
		{protocol.PathWorkerMasterChanged, `{}`, "epoch"},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.field, func(t *testing.T) {
			rec := newRecorder()
			req, _ := http.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			h.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusBadRequest, rec.code, rec.body.String())
			var eb protocol.ErrorBody
			require.NoError(t, json.Unmarshal(rec.body.Bytes(), &eb))
			assert.True(t, strings.HasPrefix(eb.Error, tc.field+" "), "error %q should name %q", eb.Error, tc.field)
		})
	}
	assert.Zero(t, w.StaleEpochRejections())
}

type recorder struct {
	hdr  http.Header
	code int
	body bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{hdr: http.Header{}, code: 200} }
func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }

// /json uses Spark's field names; the page shows Spark's labels.
func TestJSONAndPage(t *testing.T) {
	m := newFakeMaster(t, 2)
	r := startWorker(t, testConfig(t, m.sparkURL()), nil)
	r.waitRegistered(t, m.sparkURL())
	code, _ := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 2, "app-7", 0, `exec sleep 30`))
	require.Equal(t, 200, code)

	_, js := httpGet(t, r.w.WebUIURL()+"/json")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &doc))
	for _, k := range []string{"id", "masterurl", "masterwebuiurl", "cores", "coresused", "memory", "memoryused",
		"resources", "resourcesused", "executors", "finishedexecutors", "epoch", "state"} {
		assert.Contains(t, doc, k)
	}
	assert.Equal(t, r.w.ID(), doc["id"])
	assert.Equal(t, m.sparkURL(), doc["masterurl"])
	assert.EqualValues(t, 2, doc["coresused"])
	assert.EqualValues(t, 1024, doc["memoryused"])
	assert.EqualValues(t, 2, doc["epoch"])
	assert.Equal(t, "ALIVE", doc["state"])
	execs := doc["executors"].([]any)
	require.Len(t, execs, 1)
	e := execs[0].(map[string]any)
	assert.Equal(t, "app-7", e["appid"])
	assert.EqualValues(t, 0, e["id"])
	assert.Contains(t, e["appdesc"], "memoryperexecutor")

	_, page := httpGet(t, r.w.WebUIURL()+"/")
	for _, label := range []string{"ID:", "Master URL:", "Cores:</strong> 4 (2 Used)", "Memory:", "Running Executors (1)",
		"ExecutorID", "Job Details", "Logs", "Running Drivers (0)", "Finished Executors (0)", "Finished Drivers (0)",
		"Back to Master", "logPage?appId=app-7&amp;executorId=0&amp;logType=stdout"} {
		assert.Contains(t, page, label)
	}
	assert.True(t, strings.HasPrefix(r.w.ID(), "worker-"))
	assert.True(t, strings.HasSuffix(r.w.ID(), "-127.0.0.1-"+strings.Split(r.w.URL(), ":")[2]))

	_, metrics := httpGet(t, r.w.WebUIURL()+"/metrics/prometheus")
	for _, line := range []string{
		`metrics_worker_executors_Value{type="gauges"} 1`, `metrics_worker_executors_Number{type="gauges"} 1`,
		`metrics_worker_coresUsed_Value{type="gauges"} 2`, `metrics_worker_memUsed_MB_Value{type="gauges"} 1024`,
		`metrics_worker_coresFree_Number{type="gauges"} 2`, `metrics_worker_memFree_MB_Number{type="gauges"} 3072`,
		`metrics_worker_staleEpochRejections_Count{type="counters"} 0`,
	} {
		assert.Contains(t, metrics, line)
	}
	_, std := httpGet(t, r.w.WebUIURL()+"/metrics")
	for _, line := range []string{"go_goroutines ", "process_open_fds ", "sparkd_worker_executors 1", "sparkd_worker_cores_used 2",
		"sparkd_worker_memory_used_mb 1024", "sparkd_worker_stale_epoch_rejections_total 0", "sparkd_worker_pending_reports "} {
		assert.Contains(t, std, line)
	}
}

// The log page refuses anything that could leave the work dir and bounds
// what it returns.
func TestLogPageBoundsAndTraversal(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	h := w.uiHandler()
	dir := filepath.Join(cfg.WorkDir, "app-8", "2")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	big := bytes.Repeat([]byte("0123456789"), 20*1024) // 200 KiB
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stdout"), big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.WorkDir, "secret"), []byte("s"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(cfg.WorkDir, "secret"), filepath.Join(dir, "stderr")))

	get := func(q string) (int, string, http.Header) {
		rec := newRecorder()
		req, _ := http.NewRequest(http.MethodGet, "/log?"+q, nil)
		h.ServeHTTP(rec, req)
		return rec.code, rec.body.String(), rec.hdr
	}
	code, body, hdr := get("appId=app-8&executorId=2&logType=stdout")
	assert.Equal(t, 200, code)
	assert.Len(t, body, defaultLogBytes, "default is the last 100 KiB")
	assert.Equal(t, "102400-204800/204800", hdr.Get("X-Log-Range"))
	code, body, _ = get("appId=app-8&executorId=2&logType=stdout&offset=3&byteLength=4")
	assert.Equal(t, 200, code)
	assert.Equal(t, "3456", body)
	code, body, _ = get("appId=app-8&executorId=2&logType=stdout&offset=0&byteLength=99999999")
	assert.Equal(t, 200, code)
	assert.Len(t, body, len(big), "capped at the file (and at 1 MiB)")
	code, body, _ = get("appId=app-8&executorId=2&logType=stdout&offset=999999")
	assert.Equal(t, 200, code)
	assert.Empty(t, body)

	for _, q := range []string{
		"appId=..&executorId=2&logType=stdout",
		"appId=app-8&executorId=../../x&logType=stdout",
		"appId=app-8/../..&executorId=2&logType=stdout",
		"driverId=../secret&logType=stdout",
		"appId=app-8&executorId=2&logType=../../secret",
		"appId=app-8&executorId=2&logType=stderr", // a symlink
		"appId=app-8&executorId=2&logType=stdout&byteLength=-1",
		"appId=app-8&executorId=2&logType=stdout&offset=x",
		"logType=stdout",
	} {
		code, body, _ := get(q)
		assert.Equal(t, 400, code, "%s: %s", q, body)
	}
	code, _, _ = get("appId=app-9&executorId=2&logType=stdout")
	assert.Equal(t, 404, code)

	rec := newRecorder()
	req, _ := http.NewRequest(http.MethodGet, "/logPage?appId=app-8&executorId=2&logType=stdout&offset=0&byteLength=10", nil)
	h.ServeHTTP(rec, req)
	assert.Equal(t, 200, rec.code)
	assert.Contains(t, rec.body.String(), "Showing 10 Bytes: 0 - 10 of 204800")
	assert.Contains(t, rec.body.String(), "byteLength=10&amp;executorId=2&amp;logType=stdout&amp;offset=10")
}

// Cleanup removes app dirs that no longer run and hold nothing newer than
// the TTL; it keeps running apps, fresh data and foreign directories.
func TestCleanupWorkDir(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, "m:7077")
	cfg.AppDataTTL = time.Hour
	w, err := newWorker(cfg, testLogger(t), clock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	now := clock.Now()
	mk := func(name string, age time.Duration) string {
		d := filepath.Join(cfg.WorkDir, name, "0")
		require.NoError(t, os.MkdirAll(d, 0o755))
		f := filepath.Join(d, "stdout")
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
		for _, p := range []string{f, d, filepath.Dir(d)} {
			require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
		}
		return filepath.Join(cfg.WorkDir, name)
	}
	old := mk("app-old", 2*time.Hour)
	fresh := mk("app-fresh", 10*time.Minute)
	runningApp := mk("app-running", 2*time.Hour)
	oldDriver := mk("driver-old", 3*time.Hour)
	foreign := mk("keep-me", 5*time.Hour)
	w.executors[execKey("app-running", 0)] = &executor{appID: "app-running"}

	w.cleanupWorkDir()
	for p, want := range map[string]bool{old: false, fresh: true, runningApp: true, oldDriver: false, foreign: true} {
		_, err := os.Stat(p)
		assert.Equal(t, want, err == nil, p)
	}
}

// The worker page and log lines render memory as Spark's
// Utils.megabytesToString and the master page do; before the fix the
// worker showed "0.0 MiB Used" and "1.0 GiB" where the master (and Spark)
// show "0.0 B Used" and "1024.0 MiB".
func TestMemStringMatchesSpark(t *testing.T) {
	for mb, want := range map[int]string{
		0: "0.0 B", 1: "1024.0 KiB", 2: "2.0 MiB", 512: "512.0 MiB", 1024: "1024.0 MiB",
		2048: "2.0 GiB", 15 * 1024: "15.0 GiB", 3 * 1024 * 1024: "3.0 TiB",
	} {
		assert.Equal(t, want, protocol.MegabytesString(mb), "%d MB", mb)
	}
}

// Removing a finished application's directory, however large, never holds
// the worker's state lock: heartbeats and MasterChanged answers go on
// while the disk works (issue 11, item 6).
func TestCleanupRemovesWithoutTheLock(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, "m:7077")
	cfg.AppDataTTL = time.Hour
	w, err := newWorker(cfg, testLogger(t), clock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	d := filepath.Join(cfg.WorkDir, "app-big", "0")
	require.NoError(t, os.MkdirAll(d, 0o755))
	past := clock.Now().Add(-2 * time.Hour)
	for _, p := range []string{d, filepath.Dir(d)} {
		require.NoError(t, os.Chtimes(p, past, past))
	}
	entered, release := make(chan struct{}), make(chan struct{})
	removeAll = func(p string) error { close(entered); <-release; return os.RemoveAll(p) }
	t.Cleanup(func() { removeAll = os.RemoveAll })
	done := make(chan struct{})
	go func() { w.cleanupWorkDir(); close(done) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("cleanup never started removing")
	}
	answered := make(chan protocol.WorkerSchedulerState, 1)
	go func() { answered <- w.schedulerState() }()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker's state is locked while a directory is removed")
	}
	close(release)
	<-done
	_, err = os.Stat(filepath.Join(cfg.WorkDir, "app-big"))
	assert.True(t, os.IsNotExist(err), "removed")
	ents, _ := os.ReadDir(cfg.WorkDir)
	assert.Empty(t, ents, "nothing left behind")
}
