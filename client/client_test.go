package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

func testApp() protocol.AppDescription {
	return protocol.AppDescription{Name: "t", Command: []string{"/bin/true"}, ExecutorCores: 1, ExecutorMemMB: 64}
}

func quietLogger() *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	return logrus.NewEntry(l)
}

func newTestClient(t *testing.T, masters []string, log *eventLog) *Client {
	t.Helper()
	cfg := Config{
		Masters:           masters,
		App:               testApp(),
		RequestTimeout:    time.Second,
		HeartbeatInterval: 50 * time.Millisecond,
		RegisterTimeout:   5 * time.Second,
		BackoffInitial:    10 * time.Millisecond,
		BackoffMax:        50 * time.Millisecond,
		Logger:            quietLogger(),
	}
	var l Listener
	if log != nil {
		l = log.add
	}
	c, err := New(cfg, l)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no masters", Config{App: testApp()}, "no master URL"},
		{"bad master", Config{Masters: []string{"spark://host-without-port"}, App: testApp()}, "want host:port"},
		{"no name", Config{Masters: []string{"h:7077"}, App: protocol.AppDescription{Command: []string{"x"}, ExecutorMemMB: 1}}, "app.name"},
		{"no command", Config{Masters: []string{"h:7077"}, App: protocol.AppDescription{Name: "x", ExecutorMemMB: 1}}, "app.command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRegisterWithLeaderAmongStandbys(t *testing.T) {
	leader := newFakeMaster(t, protocol.MasterAlive, 3)
	standby := newFakeMaster(t, protocol.MasterStandby, 3)
	standby.set(protocol.MasterStandby, 3, &protocol.LeaderHint{State: protocol.MasterStandby, LeaderURL: leader.url, Epoch: 3})
	var log eventLog
	c := newTestClient(t, []string{standby.url, leader.url}, &log)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	assert.True(t, leader.hasApp(id))
	assert.Equal(t, leader.url, c.Master())
	assert.Equal(t, int64(3), c.Epoch())
	assert.Equal(t, 1, leader.count(protocol.PathRegisterApp), "registered exactly once")
}

func TestRegisterFollowsHintOutsideList(t *testing.T) {
	leader := newFakeMaster(t, protocol.MasterAlive, 2)
	standby := newFakeMaster(t, protocol.MasterStandby, 2)
	standby.set(protocol.MasterStandby, 2, &protocol.LeaderHint{State: protocol.MasterStandby, LeaderURL: leader.url, Epoch: 2})
	c := newTestClient(t, []string{standby.url}, nil)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	assert.True(t, leader.hasApp(id))
	assert.Equal(t, 1, standby.count(protocol.PathRegisterApp), "hint followed in the same attempt, no retry")
}

// hungMaster is a master that never answers (paused, blackholed) until the
// client gives up or the test ends.
func hungMaster(t *testing.T) *httptest.Server {
	t.Helper()
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hang-up only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-released:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(released) }) // runs first: lets Close finish
	return srv
}

// A master that never answers (paused, blackholed) must not delay the
// registration until its request times out.
func TestRegisterDoesNotWaitForAHungMaster(t *testing.T) {
	srv := hungMaster(t)
	leader := newFakeMaster(t, protocol.MasterAlive, 4)
	c := newTestClient(t, []string{srv.URL, leader.url}, nil)
	c.cfg.RequestTimeout = 30 * time.Second
	c.rpc = protocol.NewClient(30*time.Second, "")
	start := time.Now()
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	assert.True(t, leader.hasApp(id))
	// Without waiting it takes milliseconds; waiting costs the register
	// timeout (5 s here).
	assert.Less(t, time.Since(start), 2500*time.Millisecond, "registration waited for the hung master")
}

// When the caller's deadline passes while a master hangs, registerOnce must
// return: the sender for the hung master may drop its result on ctx done
// (it picks between two ready cases at random, so try many times).
func TestRegisterOnceReturnsWhenContextEnds(t *testing.T) {
	srv := hungMaster(t)
	c := newTestClient(t, []string{srv.URL}, nil)
	for i := 0; i < 40; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		done := make(chan error, 1)
		go func() {
			_, err := c.registerOnce(ctx, protocol.RegisterApplication{App: testApp(), ClientURL: c.URL()})
			done <- err
		}()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(10 * time.Second):
			t.Fatalf("registerOnce did not return after its context ended (attempt %d)", i)
		}
		cancel()
	}
}

func TestRegisterRetriesUntilALeaderAppears(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterRecovering, 1)
	c := newTestClient(t, []string{m.url}, nil)
	go func() {
		// Become ALIVE after a few refused attempts.
		deadline := time.Now().Add(5 * time.Second)
		for m.count(protocol.PathRegisterApp) < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		m.set(protocol.MasterAlive, 1, nil)
	}()
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	assert.True(t, m.hasApp(id))
	assert.GreaterOrEqual(t, m.count(protocol.PathRegisterApp), 4)
}

func TestRegisterGivesUp(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterStandby, 1)
	cfg := Config{Masters: []string{m.url, "127.0.0.1:1"}, App: testApp(), RegisterTimeout: 300 * time.Millisecond,
		BackoffInitial: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Logger: quietLogger()}
	c, err := New(cfg, nil)
	require.NoError(t, err)
	defer c.Close(context.Background())
	_, err = c.Register(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnresponsive)
}

func TestRegisterRefusedDescription(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 1)
	cfg := Config{Masters: []string{m.url}, App: testApp(), Logger: quietLogger()}
	c, err := New(cfg, nil)
	require.NoError(t, err)
	defer c.Close(context.Background())
	c.cfg.App.ExecutorMemMB = 0 // bypass local validation to see the master's 400
	_, err = c.Register(ctxT(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "executorMemoryMb")
	assert.Equal(t, 1, m.count(protocol.PathRegisterApp), "a 400 is not retried")
}

func TestPushesAreDeliveredInOrderAndEpochChecked(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 5)
	var log eventLog
	c := newTestClient(t, []string{m.url}, &log)
	_, err := c.Register(ctxT(t))
	require.NoError(t, err)

	st := m.stamp()
	require.NoError(t, m.push(c.URL(), protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: st, ExecutorID: 0, WorkerID: "w1", HostPort: "h:1", Cores: 2, MemoryMB: 64}))
	require.NoError(t, m.push(c.URL(), protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 0, State: protocol.ExecutorRunning}))
	zero := 0
	require.NoError(t, m.push(c.URL(), protocol.PathExecutorRemoved, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 0, State: protocol.ExecutorExited, ExitCode: &zero}))
	require.NoError(t, m.push(c.URL(), protocol.PathWorkerRemoved, protocol.WorkerRemoved{Stamp: st, WorkerID: "w1", Host: "h", Message: "worker lost"}))

	// A stale master is refused with 409.
	err = m.push(c.URL(), protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: protocol.Stamp{Epoch: 4, MasterURL: "spark://old:7077"}, ExecutorID: 0, State: protocol.ExecutorKilled})
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Code)

	// Malformed and incomplete bodies are 400s naming the field.
	err = m.push(c.URL(), protocol.PathExecutorUpdated, map[string]any{"executorId": 1, "state": "RUNNING"})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusBadRequest, se.Code)
	assert.Contains(t, se.Message, "epoch")
	err = m.push(c.URL(), protocol.PathExecutorUpdated, map[string]any{"epoch": 5, "masterUrl": m.url, "executorId": "one"})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusBadRequest, se.Code)

	eventually(t, 5*time.Second, "5 events", func() bool { return len(log.kinds()) >= 5 })
	assert.Equal(t, []EventKind{EventRegistered, EventExecutorAdded, EventExecutorUpdated, EventExecutorRemoved, EventWorkerRemoved}, log.kinds())
	e, _ := log.find(EventExecutorRemoved)
	require.NotNil(t, e.ExitCode)
	assert.Equal(t, 0, *e.ExitCode)
	assert.Equal(t, c.AppID(), e.AppID)

	require.NoError(t, m.push(c.URL(), protocol.PathApplicationRemoved, protocol.ApplicationRemoved{Stamp: st, State: protocol.AppKilled, Message: "killed by user"}))
	eventually(t, 5*time.Second, "app removed", func() bool { _, ok := log.find(EventApplicationRemoved); return ok })
	assert.True(t, c.Ended())
}

func TestMasterChangedSwitchesMaster(t *testing.T) {
	a := newFakeMaster(t, protocol.MasterAlive, 1)
	b := newFakeMaster(t, protocol.MasterStandby, 1)
	var log eventLog
	c := newTestClient(t, []string{a.url, b.url}, &log)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)

	// a dies; b takes office with epoch 2, knows the app (recovered) and pushes MasterChanged.
	a.srv.Close()
	b.mu.Lock()
	b.st, b.ep = protocol.MasterAlive, 2
	b.apps[id] = c.URL()
	b.mu.Unlock()
	var ack protocol.MasterChangeAcknowledged
	ctx := ctxT(t)
	require.NoError(t, b.rpc.Call(ctx, http.MethodPost, c.URL(), protocol.PathAppMasterChanged,
		protocol.MasterChanged{Stamp: b.stamp(), MasterWebUIURL: "http://b:8080"}, &ack))
	assert.Equal(t, id, ack.AppID)
	assert.Equal(t, b.url, c.Master())
	assert.Equal(t, int64(2), c.Epoch())

	// The old epoch is refused from now on.
	err = a.push(c.URL(), protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: protocol.Stamp{Epoch: 1, MasterURL: a.url}})
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Code)

	// Heartbeats now go to b, and the app stays the same.
	eventually(t, 5*time.Second, "heartbeats to the new master", func() bool { return b.count(protocol.PathAppHeartbeat) >= 2 })
	assert.Equal(t, id, c.AppID())
	_, rereg := log.find(EventReregistered)
	assert.False(t, rereg)
	_, changed := log.find(EventMasterChanged)
	assert.True(t, changed)
}

func TestHeartbeatReregistersWhenForgotten(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 1)
	var log eventLog
	c := newTestClient(t, []string{m.url}, &log)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	m.forget(id)
	eventually(t, 5*time.Second, "re-registration", func() bool { _, ok := log.find(EventReregistered); return ok })
	assert.NotEqual(t, id, c.AppID())
	assert.True(t, m.hasApp(c.AppID()))
}

func TestLeaderDeathFindsNewLeaderWithoutMasterChanged(t *testing.T) {
	a := newFakeMaster(t, protocol.MasterAlive, 1)
	b := newFakeMaster(t, protocol.MasterStandby, 1)
	var log eventLog
	c := newTestClient(t, []string{a.url, b.url}, &log)
	_, err := c.Register(ctxT(t))
	require.NoError(t, err)

	a.srv.Close()
	b.set(protocol.MasterAlive, 2, nil)
	// The client notices, finds b by probing, and b (which never stored the
	// app) tells it to register again.
	eventually(t, 5*time.Second, "disconnect event", func() bool { _, ok := log.find(EventDisconnected); return ok })
	eventually(t, 5*time.Second, "re-registration with b", func() bool { return b.hasApp(c.AppID()) })
	assert.Equal(t, b.url, c.Master())
}

func TestRequestKillAndCloseFollowHints(t *testing.T) {
	a := newFakeMaster(t, protocol.MasterAlive, 1)
	b := newFakeMaster(t, protocol.MasterStandby, 1)
	c := newTestClient(t, []string{a.url, b.url}, nil)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)

	require.NoError(t, c.RequestExecutors(ctxT(t), 3))
	assert.Equal(t, 3, a.lastReq[protocol.PathRequestExecutors].(*protocol.RequestExecutors).Total)
	assert.ErrorIs(t, c.RequestExecutors(ctxT(t), -1), ErrConfig)

	// a steps down and hints at b, which has the app.
	b.mu.Lock()
	b.st, b.ep = protocol.MasterAlive, 2
	b.apps[id] = c.URL()
	b.mu.Unlock()
	a.set(protocol.MasterStandby, 2, &protocol.LeaderHint{State: protocol.MasterStandby, LeaderURL: b.url, Epoch: 2})
	require.NoError(t, c.Kill(ctxT(t)))
	assert.Equal(t, 1, b.count(protocol.PathKillApp))
	assert.True(t, c.Ended())

	// Close after Kill does not unregister again, and is idempotent.
	require.NoError(t, c.Close(ctxT(t)))
	require.NoError(t, c.Close(ctxT(t)))
	assert.Equal(t, 0, b.count(protocol.PathUnregisterApp))
}

func TestCloseUnregisters(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 1)
	c := newTestClient(t, []string{m.url}, nil)
	_, err := c.Register(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, c.Close(ctxT(t)))
	assert.Equal(t, 1, m.count(protocol.PathUnregisterApp))
	assert.ErrorIs(t, c.RequestExecutors(context.Background(), 1), context.Canceled)
}

func TestCallsNeedRegistration(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 1)
	c := newTestClient(t, []string{m.url}, nil)
	assert.ErrorIs(t, c.Kill(ctxT(t)), ErrNotRegistered)
	assert.ErrorIs(t, c.RequestExecutors(ctxT(t), 1), ErrNotRegistered)
}

func TestFindLeader(t *testing.T) {
	a := newFakeMaster(t, protocol.MasterStandby, 4)
	b := newFakeMaster(t, protocol.MasterAlive, 4)
	rpc := protocol.NewClient(time.Second, "")
	l, err := FindLeader(ctxT(t), rpc, []string{a.url, "127.0.0.1:1", b.url})
	require.NoError(t, err)
	assert.Equal(t, b.url, l.URL)

	b.set(protocol.MasterStandby, 4, nil)
	_, err = FindLeader(ctxT(t), rpc, []string{a.url, b.url})
	assert.True(t, errors.Is(err, ErrNoLeader))
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		EnvMaster: "spark://h1:7077,h2", EnvAppName: "pi", EnvExecutorCores: "2", EnvTotalCores: "6",
		EnvExecutorMemoryMB: "512", EnvExecutorCommand: "/bin/echo\nhello world",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, []string{"h1:7077", "h2:7077"}, cfg.Masters)
	assert.Equal(t, protocol.AppDescription{Name: "pi", Command: []string{"/bin/echo", "hello world"},
		ExecutorCores: 2, MaxCores: 6, ExecutorMemMB: 512}, cfg.App)

	env[EnvExecutorCores] = "two"
	_, err = ConfigFromEnv(func(k string) string { return env[k] })
	assert.ErrorContains(t, err, "SPARK_EXECUTOR_CORES=\"two\"")
	_, err = ConfigFromEnv(func(string) string { return "" })
	assert.ErrorContains(t, err, "SPARK_MASTER is not set")
}

func TestSplitMasters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"spark://a:1,b:2", []string{"a:1", "b:2"}, ""},
		{"spark://a,spark://b:9", []string{"a:7077", "b:9"}, ""},
		{"[::1]:7077", []string{"[::1]:7077"}, ""},
		{"a,,b", nil, "empty entry"},
		{"http://a/b", nil, "not host[:port]"},
	} {
		got, err := SplitMasters(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

// The push listener must be reachable by the masters: loopback only when
// every master is on loopback, otherwise every interface, advertised by host
// name as Spark's spark.driver.host is.
func TestDefaultListenerReachableByMasters(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	for _, tc := range []struct {
		masters          []string
		listen, adv      string
		listenConfigured string
	}{
		{masters: []string{"spark://127.0.0.1:7077", "localhost:7078", "[::1]:7079"}, listen: "127.0.0.1:0", adv: "127.0.0.1"},
		{masters: []string{"spark://127.0.0.1:7077", "m2.example:7077"}, listen: ":0", adv: host},
		{masters: []string{"spark://10.1.2.3:7077"}, listen: ":0", adv: host},
		{masters: []string{"spark://m1:7077"}, listenConfigured: "192.0.2.7:0", listen: "192.0.2.7:0", adv: "192.0.2.7"},
	} {
		cfg := Config{Masters: tc.masters, ListenAddr: tc.listenConfigured}
		cfg.fill()
		assert.Equal(t, tc.listen, cfg.ListenAddr, "%v", tc.masters)
		assert.Equal(t, tc.adv, defaultAdvertiseHost(cfg.ListenAddr, cfg.Masters), "%v", tc.masters)
	}
}

func TestAppUserDefaultsToSparkUser(t *testing.T) {
	t.Setenv("SPARK_USER", "alice")
	cfg := Config{Masters: []string{"127.0.0.1:7077"}}
	cfg.fill()
	assert.Equal(t, "alice", cfg.App.User)
	cfg = Config{Masters: []string{"127.0.0.1:7077"}, App: protocol.AppDescription{User: "bob"}}
	cfg.fill()
	assert.Equal(t, "bob", cfg.App.User, "an explicit user wins")
}

// A wrong secret (401) is a refusal: Register fails at once with the
// master's message instead of retrying until RegisterTimeout.
func TestRegisterWrongSecretFailsAtOnce(t *testing.T) {
	m := newFakeMaster(t, protocol.MasterAlive, 1)
	srv := httptest.NewServer(protocol.AuthenticateRoles(protocol.ClusterCredentials("right", protocol.Identity{Role: protocol.RoleMaster}), protocol.VerifyOptions{}, nil, m.srv.Config.Handler))
	t.Cleanup(srv.Close)
	cfg := Config{Masters: []string{srv.URL}, App: testApp(), Secret: "wrong", RegisterTimeout: 20 * time.Second,
		BackoffInitial: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Logger: quietLogger()}
	c, err := New(cfg, nil)
	require.NoError(t, err)
	defer c.Close(context.Background())
	start := time.Now()
	_, err = c.Register(ctxT(t))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "a wrong secret is not retried")
	assert.ErrorIs(t, err, ErrRefused)
	assert.Contains(t, err.Error(), "spark.authenticate.secret does not match")
	assert.Contains(t, err.Error(), srv.URL, "names the master")
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusUnauthorized, se.Code)
}

// A 400 from the leader ends the registration although a standby answered
// 503 in the same attempt and another master hangs.
func TestRegisterRefusalAmongOtherAnswers(t *testing.T) {
	srv := hungMaster(t)
	leader := newFakeMaster(t, protocol.MasterAlive, 1)
	standby := newFakeMaster(t, protocol.MasterStandby, 1)
	cfg := Config{Masters: []string{standby.url, srv.URL, leader.url}, App: testApp(), RequestTimeout: 10 * time.Second,
		RegisterTimeout: 20 * time.Second, BackoffInitial: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Logger: quietLogger()}
	c, err := New(cfg, nil)
	require.NoError(t, err)
	defer c.Close(context.Background())
	c.cfg.App.ExecutorMemMB = 0 // bypass local validation to see the master's 400
	start := time.Now()
	_, err = c.Register(ctxT(t))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "a 400 is not retried, nor waits for the hung master")
	assert.ErrorIs(t, err, ErrRefused)
	assert.Contains(t, err.Error(), "executorMemoryMb")
	// Not retried: at most one request per master. (Which master refuses
	// first is a race: the standby validates the body too, and the first
	// refusal cancels the request to the leader, possibly before it lands.)
	assert.LessOrEqual(t, leader.count(protocol.PathRegisterApp), 1, "a 400 is not retried")
	assert.LessOrEqual(t, standby.count(protocol.PathRegisterApp), 1, "a 400 is not retried")
}

func TestIsRefusal(t *testing.T) {
	for code, want := range map[int]bool{400: true, 401: true, 403: true, 413: true, 404: false, 408: false, 409: false,
		429: false, 500: false, 503: false, 200: false} {
		assert.Equal(t, want, IsRefusal(code), "http %d", code)
	}
}
