package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

// Integration tests: real 3-node ZooKeeper, two real `bin/sparkd master`
// processes (configured by spark-env.sh, see internal/cluster). The worker
// and the application are small HTTP stand-ins that answer what the master
// pushes, so these tests exercise the masters only.

// haWorker stands in for a worker's command listener. It fences commands by
// epoch like a real worker, and answers MasterChanged with what it runs.
type haWorker struct {
	t       *testing.T
	srv     *httptest.Server
	id      string
	guard   protocol.EpochGuard
	mu      sync.Mutex
	drivers map[string]bool
	seen    map[string]int
}

func newHAWorker(t *testing.T, id string) *haWorker {
	w := &haWorker{t: t, id: id, drivers: map[string]bool{}, seen: map[string]int{}}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *haWorker) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var stamp protocol.Stamp
	_ = json.Unmarshal(body, &stamp)
	if _, err := w.guard.Admit(stamp); err != nil {
		protocol.WriteError(rw, http.StatusConflict, err.Error(), nil)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[r.URL.Path]++
	switch r.URL.Path {
	case protocol.PathLaunchDriver:
		var m protocol.LaunchDriver
		_ = json.Unmarshal(body, &m)
		w.drivers[m.DriverID] = true
	case protocol.PathWorkerMasterChanged:
		st := protocol.WorkerSchedulerState{WorkerID: w.id}
		for id := range w.drivers {
			st.Drivers = append(st.Drivers, protocol.DriverDescription{DriverID: id, Cores: 1, MemoryMB: 64, State: protocol.DriverRunning})
		}
		protocol.WriteJSON(rw, 200, st)
		return
	}
	protocol.WriteJSON(rw, 200, struct{}{})
}

func (w *haWorker) count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[path]
}

func (w *haWorker) register(ctx context.Context, cli *protocol.Client, masterAddr string) error {
	port, _ := strconv.Atoi(w.srv.URL[strings.LastIndex(w.srv.URL, ":")+1:])
	return cli.Call(ctx, http.MethodPost, masterAddr, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: w.id, Host: "127.0.0.1", Port: port, URL: w.srv.URL, WebUIURL: "http://127.0.0.1:1", Cores: 4, MemoryMB: 4096}, nil)
}

// haApp stands in for an application client (driver).
func newHAApp(t *testing.T, appID *string) *httptest.Server {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		id := *appID
		mu.Unlock()
		if r.URL.Path == protocol.PathAppMasterChanged {
			protocol.WriteJSON(rw, 200, protocol.MasterChangeAcknowledged{AppID: id})
			return
		}
		protocol.WriteJSON(rw, 200, struct{}{})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startHA(t *testing.T) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs ZooKeeper and real processes")
	}
	if _, _, err := zktest.Classpath(); err != nil {
		t.Skipf("ZooKeeper not installed: %v", err)
	}
	return cluster.Start(t, cluster.Options{Masters: 2, Workers: -1, ZooKeeper: 3, SessionTimeout: 2 * time.Second,
		WorkerTimeout: 60 * time.Second})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// populate registers a worker, an application and a supervised driver with
// the leader, and waits until the driver runs on the worker.
func populate(t *testing.T, c *cluster.Cluster, leader int) (w *haWorker, appID, driverID string) {
	t.Helper()
	cli := protocol.NewClient(5*time.Second, "")
	addr := c.Masters[leader].Addr()
	w = newHAWorker(t, "worker-20261120000000-127.0.0.1-"+strconv.Itoa(leader))
	require.NoError(t, w.register(ctxT(t, 10*time.Second), cli, addr))
	app := newHAApp(t, &appID)
	var ra protocol.RegisteredApplication
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, addr, protocol.PathRegisterApp, protocol.RegisterApplication{
		App: protocol.AppDescription{Name: "ha-app", Command: []string{"/bin/true"}, ExecutorMemMB: 8192}, ClientURL: app.URL}, &ra))
	appID = ra.AppID
	var sd protocol.SubmitDriverResponse
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, addr, protocol.PathSubmitDriver,
		protocol.DriverSpec{Command: []string{"/bin/sleep", "1000"}, Cores: 1, MemoryMB: 64, Supervise: true}, &sd))
	driverID = sd.DriverID
	deadline := time.Now().Add(10 * time.Second)
	for w.count(protocol.PathLaunchDriver) == 0 {
		require.True(t, time.Now().Before(deadline), "driver never launched on the worker")
		time.Sleep(10 * time.Millisecond)
	}
	// The assignment is persisted before LaunchDriver is sent, so it is
	// durable now.
	return w, appID, driverID
}

func requireSameState(t *testing.T, c *cluster.Cluster, i int, workerID, appID, driverID string) {
	t.Helper()
	var st cluster.MasterState
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		st, err = c.State(i)
		if err == nil && st.Status == "ALIVE" && len(st.Workers) > 0 && st.Workers[0].State == "ALIVE" &&
			len(st.ActiveApps) > 0 && len(st.Drivers) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new leader state incomplete: %+v (err %v)", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Len(t, st.Workers, 1)
	assert.Equal(t, workerID, st.Workers[0].ID)
	require.Len(t, st.ActiveApps, 1)
	assert.Equal(t, appID, st.ActiveApps[0].ID)
	require.Len(t, st.Drivers, 1)
	assert.Equal(t, driverID, st.Drivers[0].ID, "the driver keeps its id: it was re-attached, not relaunched")
	assert.Equal(t, "RUNNING", st.Drivers[0].State)
}

func TestHALeaderSIGKILL(t *testing.T) {
	c := startHA(t)
	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	w, appID, driverID := populate(t, c, old)

	start := time.Now()
	c.Masters[old].Kill()
	nu, nli, err := c.WaitNewLeader(old, li.Epoch, 30*time.Second)
	require.NoError(t, err)
	t.Logf("SIGKILL failover: %s became ALIVE (epoch %d -> %d) after %s (session timeout %s)",
		c.Masters[nu].Name, li.Epoch, nli.Epoch, time.Since(start).Round(time.Millisecond), c.Opts.SessionTimeout)
	requireSameState(t, c, nu, w.id, appID, driverID)
	assert.True(t, c.Masters[nu].LogContains("Worker has been re-registered: "+w.id))
	assert.True(t, c.Masters[nu].LogContains("Recovery complete - resuming operations!"))
}

func TestHALeaderSIGTERMHandsOffFast(t *testing.T) {
	c := startHA(t)
	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	w, appID, driverID := populate(t, c, old)

	start := time.Now()
	require.NoError(t, c.Masters[old].Signal(syscall.SIGTERM))
	nu, nli, err := c.WaitNewLeader(old, li.Epoch, 30*time.Second)
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("SIGTERM hand-off: %s ALIVE at epoch %d after %s", c.Masters[nu].Name, nli.Epoch, took.Round(time.Millisecond))
	assert.Less(t, took, 5*time.Second, "a graceful stop must not wait for the session timeout")
	require.NoError(t, c.Masters[old].WaitExit(15*time.Second))
	assert.Equal(t, 0, c.Masters[old].ExitCode())
	requireSameState(t, c, nu, w.id, appID, driverID)
}

func TestHAPausedLeaderIsFenced(t *testing.T) {
	c := startHA(t)
	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	w, appID, driverID := populate(t, c, old)

	c.Masters[old].Stop()
	stopped := true
	t.Cleanup(func() {
		if stopped {
			c.Masters[old].Cont()
		}
	})
	nu, nli, err := c.WaitNewLeader(old, li.Epoch, 30*time.Second)
	require.NoError(t, err)
	t.Logf("paused leader replaced by %s at epoch %d", c.Masters[nu].Name, nli.Epoch)
	// Let the new leader reach the worker so its epoch is the worker's highest.
	requireSameState(t, c, nu, w.id, appID, driverID)

	c.Masters[old].Cont()
	stopped = false
	// The resumed master must never report ALIVE for its old epoch, and must
	// not accept registrations (its writes are fenced).
	cli := protocol.NewClient(2*time.Second, "")
	w2 := newHAWorker(t, "worker-20261120000000-127.0.0.1-late")
	regErr := w2.register(ctxT(t, 5*time.Second), cli, c.Masters[old].Addr())
	var se *protocol.StatusError
	if assert.Error(t, regErr, "a deposed master acknowledged a registration") && errors.As(regErr, &se) {
		assert.Equal(t, http.StatusServiceUnavailable, se.Code)
	}
	deadline := time.Now().Add(3 * time.Second)
	sawStandby := false
	for time.Now().Before(deadline) {
		got, err := c.LeaderInfo(old)
		if err == nil {
			require.False(t, got.State == protocol.MasterAlive && got.Epoch <= li.Epoch,
				"resumed master reports ALIVE for old epoch %d", got.Epoch)
			if got.State == protocol.MasterStandby && got.LeaderURL == c.Masters[nu].URL() {
				sawStandby = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, sawStandby, "the resumed master should settle as STANDBY pointing at the new leader")
	// The worker refused nothing from the new leader, and the new leader
	// still has the worker (no fenced write of the old one removed it).
	st, err := c.State(nu)
	require.NoError(t, err)
	require.Len(t, st.Workers, 1)
	assert.Equal(t, w.id, st.Workers[0].ID)
	_, highest := w.guard.Current()
	assert.Equal(t, c.Masters[nu].URL(), highest)
}
