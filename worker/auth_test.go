package worker

import (
	"context"
	"errors"
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

const testSecret = "s3cret-cluster"

func callStatus(t *testing.T, c *protocol.Client, ctx context.Context, url, path string, body any) (int, string) {
	t.Helper()
	err := c.Call(ctx, http.MethodPost, url, path, body, nil)
	if err == nil {
		return 200, ""
	}
	var se *protocol.StatusError
	require.True(t, errors.As(err, &se), "unexpected error: %v", err)
	return se.Code, se.Message
}

// An application's credential (what its driver and executors hold) cannot
// command a worker: no LaunchExecutor, no MasterChanged with a huge epoch.
// Nor can an unsigned or legacy-signed request. Nothing changes.
func TestAppCredentialCannotCommandWorker(t *testing.T) {
	m := newFakeMasterAuth(t, 5, testSecret)
	cfg := testConfig(t, m.sparkURL())
	cfg.AuthSecret = testSecret
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL()) // the master's signed answers were verified

	appCreds, err := protocol.AppCredentials(protocol.NewAppCredential(testSecret, "app-evil"))
	require.NoError(t, err)
	clients := map[string]*protocol.Client{
		"application": protocol.NewRoleClient(5*time.Second, appCreds),
		"other worker": protocol.NewRoleClient(5*time.Second, protocol.ClusterCredentials(testSecret,
			protocol.Identity{Role: protocol.RoleWorker, Principal: "worker-x"})),
		"unsigned":      protocol.NewClient(5*time.Second, ""),
		"legacy secret": protocol.NewClient(5*time.Second, testSecret),
	}
	want := map[string]int{"application": 403, "other worker": 403, "unsigned": 401, "legacy secret": 401}
	stamp := protocol.Stamp{Epoch: 5, MasterURL: m.sparkURL()}
	huge := protocol.Stamp{Epoch: 1<<63 - 1, MasterURL: "spark://evil:7077"}
	launch := protocol.LaunchExecutor{Stamp: stamp, AppID: "app-evil", ExecutorID: 0, Cores: 1, MemoryMB: 64,
		App: protocol.AppDescription{Name: "evil", Command: []string{"sh", "-c", "touch pwned"}, ExecutorMemMB: 64}}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			code, msg := callStatus(t, c, context.Background(), r.w.URL(), protocol.PathLaunchExecutor, launch)
			assert.Equal(t, want[name], code, msg)
			code, msg = callStatus(t, c, context.Background(), r.w.URL(), protocol.PathWorkerMasterChanged, protocol.MasterChanged{Stamp: huge})
			assert.Equal(t, want[name], code, msg)
		})
	}
	_, err = os.Stat(filepath.Join(cfg.WorkDir, "app-evil"))
	assert.True(t, os.IsNotExist(err), "nothing was launched")
	assert.EqualValues(t, 5, r.w.Epoch(), "the epoch did not move")
	u, ok := r.w.Master()
	assert.True(t, ok)
	assert.Equal(t, m.sparkURL(), u)
}

// A master-signed MasterChanged from a master the worker was not configured
// with, at a higher epoch, is followed only if a configured master confirms
// it leads at that epoch.
func TestUnknownMasterEpochIsConfirmed(t *testing.T) {
	m := newFakeMasterAuth(t, 5, testSecret)
	cfg := testConfig(t, m.sparkURL())
	cfg.AuthSecret = testSecret
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	master := protocol.NewRoleClient(5*time.Second, protocol.ClusterCredentials(testSecret, protocol.Identity{Role: protocol.RoleMaster}))

	other := "spark://127.0.0.1:1"
	code, msg := callStatus(t, master, context.Background(), r.w.URL(), protocol.PathWorkerMasterChanged,
		protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: 9, MasterURL: other}})
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, msg, "no configured master confirms")
	assert.EqualValues(t, 5, r.w.Epoch())

	m.set(func(m *fakeMaster) { m.leaderURL, m.leaderEpoch = other, 9 })
	code, msg = callStatus(t, master, context.Background(), r.w.URL(), protocol.PathWorkerMasterChanged,
		protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: 9, MasterURL: other}})
	assert.Equal(t, 200, code, msg)
	assert.EqualValues(t, 9, r.w.Epoch())
}

// Executors and drivers never see the cluster secret: not in the
// environment the worker inherited, not in -D options, not in the app's
// env or argv. They get their application's credential instead.
func TestChildrenGetOnlyTheAppCredential(t *testing.T) {
	t.Setenv("SPARK_AUTHENTICATE_SECRET", testSecret)
	t.Setenv("_SPARK_AUTH_SECRET", testSecret)
	t.Setenv("SPARK_DAEMON_JAVA_OPTS", "-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.authenticate.secret="+testSecret+" -Dx=y")
	m := newFakeMasterAuth(t, 5, testSecret)
	cfg := testConfig(t, m.sparkURL())
	cfg.AuthSecret = testSecret
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())
	master := protocol.NewRoleClient(5*time.Second, protocol.ClusterCredentials(testSecret, protocol.Identity{Role: protocol.RoleMaster}))

	launch := protocol.LaunchExecutor{Stamp: protocol.Stamp{Epoch: 5, MasterURL: m.sparkURL()}, AppID: "app-1", ExecutorID: 0, Cores: 1, MemoryMB: 64,
		App: protocol.AppDescription{Name: "a", Principal: "app-p1", ExecutorMemMB: 64,
			Env:     map[string]string{"SPARK_JAVA_OPTS": "-Dspark.authenticate.secret=" + testSecret},
			Command: []string{"sh", "-c", `env > env.out; echo "$@" >> env.out; mv env.out env.txt`, "sh", "-Dspark.authenticate.secret=" + testSecret}}}
	code, msg := callStatus(t, master, context.Background(), r.w.URL(), protocol.PathLaunchExecutor, launch)
	require.Equal(t, 200, code, msg)
	out := filepath.Join(cfg.WorkDir, "app-1", "0", "env.txt")
	var data []byte
	eventually(t, 10*time.Second, func() bool {
		var err error
		data, err = os.ReadFile(out)
		return err == nil
	}, "executor did not write %s", out)
	s := string(data)
	assert.NotContains(t, s, testSecret)
	assert.Contains(t, s, "SPARK_AUTHENTICATE_SECRET="+protocol.NewAppCredential(testSecret, "app-p1")+"\n")
	assert.Contains(t, s, "-Dspark.deploy.recoveryMode=ZOOKEEPER -Dx=y", "other options are kept")
	assert.Equal(t, 1, strings.Count(s, "SPARK_AUTHENTICATE_SECRET="))
}

// With spark.ui.filters=JWSFilter, executors' output is served only with a
// valid bearer JWS; the page and /json stay open.
func TestLogPagesNeedJWS(t *testing.T) {
	const key = "c3BhcmtkLXRlc3Qta2V5LW9mLWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmc"
	v, err := protocol.NewJWSVerifier(key)
	require.NoError(t, err)
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.UIJWS = v
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	dir := filepath.Join(cfg.WorkDir, "app-8", "2")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stdout"), []byte("tenant output"), 0o644))
	h := w.uiHandler()
	get := func(path, auth string) (int, string) {
		rec := newRecorder()
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		return rec.code, rec.body.String()
	}
	tok, err := protocol.SignJWS(key, map[string]string{"sub": "ops"})
	require.NoError(t, err)
	for _, p := range []string{"/log?appId=app-8&executorId=2&logType=stdout", "/logPage?appId=app-8&executorId=2&logType=stdout"} {
		code, body := get(p, "")
		assert.Equal(t, http.StatusUnauthorized, code, p)
		assert.NotContains(t, body, "tenant output")
		code, body = get(p, "Bearer "+tok)
		assert.Equal(t, http.StatusOK, code, p)
		assert.Contains(t, body, "tenant output")
	}
	code, _ := get("/json", "")
	assert.Equal(t, http.StatusOK, code)
}
