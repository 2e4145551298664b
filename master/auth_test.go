package master

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

const testSecret = "s3cret-cluster"

func roleClient(t *testing.T, id protocol.Identity) *protocol.Client {
	t.Helper()
	if id.Role == protocol.RoleApplication {
		c, err := protocol.AppCredentials(protocol.NewAppCredential(testSecret, id.Principal))
		require.NoError(t, err)
		return protocol.NewRoleClient(5*time.Second, c)
	}
	return protocol.NewRoleClient(5*time.Second, protocol.ClusterCredentials(testSecret, id))
}

func codeOf(err error) int {
	var se *protocol.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	if err == nil {
		return 200
	}
	return -1
}

// An application can register itself and act on its own application only;
// it cannot act as a worker, for another application, or submit drivers.
// A worker can act only for its own id. Each refusal changes nothing.
func TestRolesOnTheMaster(t *testing.T) {
	cfg := testConfig()
	cfg.AuthSecret = testSecret
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	ctx := context.Background()
	appA := roleClient(t, protocol.Identity{Role: protocol.RoleApplication, Principal: "app-a"})
	appB := roleClient(t, protocol.Identity{Role: protocol.RoleApplication, Principal: "app-b"})
	w1 := roleClient(t, protocol.Identity{Role: protocol.RoleWorker, Principal: "worker-1"})
	peerA := newPeer(t, nil)

	var reg protocol.RegisteredApplication
	require.NoError(t, appA.Call(ctx, http.MethodPost, tm.base, protocol.PathRegisterApp, protocol.RegisterApplication{
		App:       protocol.AppDescription{Name: "a", Command: []string{"/bin/true"}, ExecutorMemMB: 64, Principal: "forged"},
		ClientURL: peerA.url()}, &reg))
	appID := reg.AppID
	require.NotEmpty(t, appID)
	tm.store.mu.Lock()
	assert.Equal(t, "app-a", tm.store.apps[appID].Desc.Principal, "the principal is the signer's, not the body's")
	tm.store.mu.Unlock()

	workerReg := protocol.RegisterWorker{ID: "worker-1", Host: "127.0.0.1", Port: 1, URL: "http://127.0.0.1:1",
		WebUIURL: "http://127.0.0.1:8081", Cores: 4, MemoryMB: 1024}
	heartbeat := func(id string) string { return "/v1/workers/" + id + "/heartbeat" }
	for _, c := range []struct {
		name   string
		cli    *protocol.Client
		method string
		path   string
		body   any
		want   int
	}{
		{"app kills another app", appB, http.MethodPost, "/v1/apps/" + appID + "/kill", nil, 403},
		{"app unregisters another app", appB, http.MethodPost, "/v1/apps/" + appID + "/unregister", protocol.UnregisterApplication{AppID: appID}, 403},
		{"app asks executors for another app", appB, http.MethodPost, "/v1/apps/" + appID + "/executors", map[string]int{"total": 100}, 403},
		{"app heartbeats another app", appB, http.MethodPost, "/v1/apps/" + appID + "/heartbeat", protocol.AppHeartbeat{AppID: appID}, 403},
		{"app takes over another app's client URL", appB, http.MethodPost, protocol.PathRegisterApp, protocol.RegisterApplication{
			App: protocol.AppDescription{Name: "b", Command: []string{"/bin/true"}, ExecutorMemMB: 64}, ClientURL: peerA.url()}, 403},
		{"app registers a worker", appA, http.MethodPost, protocol.PathRegisterWorker, workerReg, 403},
		{"app heartbeats a worker", appA, http.MethodPost, heartbeat("worker-1"), protocol.Heartbeat{WorkerID: "worker-1"}, 403},
		{"app submits a driver", appA, http.MethodPost, protocol.PathSubmitDriver, protocol.DriverSpec{Command: []string{"true"}, Cores: 1, MemoryMB: 64}, 403},
		{"app kills a driver", appA, http.MethodPost, "/v1/drivers/driver-1/kill", nil, 403},
		{"worker registers another id", w1, http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{ID: "worker-2", Host: "127.0.0.1", Port: 2,
			URL: "http://127.0.0.1:2", WebUIURL: "http://127.0.0.1:8081", Cores: 4, MemoryMB: 1024}, 403},
		{"worker heartbeats for another", w1, http.MethodPost, heartbeat("worker-2"), protocol.Heartbeat{WorkerID: "worker-2"}, 403},
		{"unsigned", protocol.NewClient(5*time.Second, ""), http.MethodPost, "/v1/apps/" + appID + "/kill", nil, 401},
		{"legacy scheme with the secret", protocol.NewClient(5*time.Second, testSecret), http.MethodPost, "/v1/apps/" + appID + "/kill", nil, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cli.Call(ctx, c.method, tm.base, c.path, c.body, nil)
			assert.Equal(t, c.want, codeOf(err), "%v", err)
		})
	}
	v := tm.View()
	require.Len(t, v.ActiveApps, 1, "no refused request changed the applications")
	assert.Empty(t, v.Workers, "no worker registered")
	assert.False(t, tm.store.has(recovery.KindWorker, "worker-2"))

	// The rightful callers succeed.
	require.NoError(t, w1.Call(ctx, http.MethodPost, tm.base, protocol.PathRegisterWorker, workerReg, nil))
	require.NoError(t, appA.Call(ctx, http.MethodPost, tm.base, "/v1/apps/"+appID+"/heartbeat", protocol.AppHeartbeat{AppID: appID}, nil))
	require.NoError(t, appA.Call(ctx, http.MethodGet, tm.base, protocol.PathLeader, nil, nil))
	require.NoError(t, appA.Call(ctx, http.MethodPost, tm.base, "/v1/apps/"+appID+"/kill", nil, nil))
	eventually(t, "app killed", func() bool { return len(tm.View().ActiveApps) == 0 })
}
