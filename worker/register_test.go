package worker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

func TestBackoffInterval(t *testing.T) {
	cfg := Config{InitialRegistrationRetries: 6, RegistrationInitialInterval: time.Second, RegistrationMaxInterval: 10 * time.Second}
	tests := []struct {
		attempt int
		fuzz    float64
		want    time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.5, time.Second},
		{6, 0.999, 1499 * time.Millisecond},
		{7, 0, 5 * time.Second},
		{16, 0.5, 10 * time.Second},
	}
	for _, tc := range tests {
		got := backoffInterval(cfg, tc.attempt, tc.fuzz)
		assert.InDelta(t, float64(tc.want), float64(got), float64(time.Millisecond), "attempt %d fuzz %v", tc.attempt, tc.fuzz)
	}
}

// With every master down, the worker retries at the initial interval, then
// at the max interval, jittered, and gives up after MaxRegistrationRetries
// attempts with ErrGaveUp.
func TestRegistrationGivesUpAfterMaxAttempts(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, closedAddr(t), "spark://"+closedAddr(t))
	cfg.InitialRegistrationRetries, cfg.MaxRegistrationRetries = 2, 4
	r := startWorker(t, cfg, clock)

	// jitter factor 0.75 (fuzz 0.25): 0.75s, 0.75s, then 2.25s.
	for _, d := range []time.Duration{750 * time.Millisecond, 750 * time.Millisecond, 2250 * time.Millisecond} {
		clock.waitPending(t, d)
		clock.Advance(d)
	}
	select {
	case err := <-r.errc:
		require.ErrorIs(t, err, ErrGaveUp)
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not give up")
	}
	r.errc <- nil // for the cleanup
	assert.Equal(t, []time.Duration{750 * time.Millisecond, 750 * time.Millisecond, 2250 * time.Millisecond}, clock.createdDurations())
}

// A STANDBY master's leader hint sends the worker straight to the leader,
// even when the leader is not in the configured list, with no backoff wait.
func TestRegistrationFollowsLeaderHint(t *testing.T) {
	clock := newFakeClock()
	leader := newFakeMaster(t, 3)
	standby := newFakeMaster(t, 2)
	standby.set(func(m *fakeMaster) {
		m.hint = &protocol.LeaderHint{State: protocol.MasterStandby, LeaderURL: leader.sparkURL(), Epoch: 3}
	})
	r := startWorker(t, testConfig(t, standby.sparkURL(), closedAddr(t)), clock)
	r.waitRegistered(t, leader.sparkURL())
	assert.Equal(t, 1, standby.count("register"))
	assert.Equal(t, 1, leader.count("register"))
	assert.EqualValues(t, 3, r.w.Epoch())
	eventually(t, 5*time.Second, func() bool { return leader.count("latest-state") == 1 }, "no WorkerLatestState")
	for _, d := range clock.createdDurations() {
		assert.NotEqual(t, 750*time.Millisecond, d, "the hint must not cost a backoff wait")
	}

	// Heartbeats every Timeout/4 to the leader only.
	for i := 1; i <= 3; i++ {
		clock.waitPending(t, 10*time.Second)
		clock.Advance(10 * time.Second)
		eventually(t, 5*time.Second, func() bool { return leader.count("heartbeat") == i }, "heartbeat %d", i)
	}
	assert.Zero(t, standby.count("heartbeat"))
}

// A heartbeat answered with Reregister makes the worker register again; the
// heartbeat timer does not stack: one heartbeat per interval afterwards.
func TestReregisterDoesNotStackHeartbeats(t *testing.T) {
	clock := newFakeClock()
	m := newFakeMaster(t, 1)
	r := startWorker(t, testConfig(t, m.sparkURL()), clock)
	r.waitRegistered(t, m.sparkURL())

	m.set(func(m *fakeMaster) { m.reregister = true })
	clock.waitPending(t, 10*time.Second)
	clock.Advance(10 * time.Second)
	eventually(t, 5*time.Second, func() bool { return m.count("register") == 2 }, "no re-registration")
	m.set(func(m *fakeMaster) { m.reregister = false })

	for i := 2; i <= 4; i++ {
		clock.waitPending(t, 10*time.Second)
		eventually(t, 5*time.Second, func() bool { return len(clock.pending()) == 1 }, "exactly one timer: %v", clock.pending())
		clock.Advance(10 * time.Second)
		eventually(t, 5*time.Second, func() bool { return m.count("heartbeat") == i }, "heartbeat %d", i)
	}
	clock.waitPending(t, 10*time.Second)
	assert.Equal(t, 4, m.count("heartbeat"))
	assert.Len(t, clock.pending(), 1)
}

// A duplicate registration is never fatal.
func TestDuplicateRegistrationIsNotFatal(t *testing.T) {
	m := newFakeMaster(t, 1)
	m.set(func(m *fakeMaster) { m.duplicate = true })
	clock := newFakeClock()
	r := startWorker(t, testConfig(t, m.sparkURL()), clock)
	r.waitRegistered(t, m.sparkURL())
	clock.waitPending(t, 10*time.Second)
	select {
	case err := <-r.errc:
		t.Fatalf("worker stopped: %v", err)
	default:
	}
}

// When the master dies, heartbeats fail and the worker registers again,
// trying every master; a new leader's hint is followed.
func TestMasterLostReregistersWithNewLeader(t *testing.T) {
	clock := newFakeClock()
	m1 := newFakeMaster(t, 1)
	m2 := newFakeMaster(t, 1)
	m2.set(func(m *fakeMaster) { m.hint = &protocol.LeaderHint{State: protocol.MasterStandby, Epoch: 1} })
	r := startWorker(t, testConfig(t, m1.sparkURL(), m2.sparkURL()), clock)
	r.waitRegistered(t, m1.sparkURL())

	m1.srv.Close()
	m2.set(func(m *fakeMaster) { m.hint = nil; m.epoch = 2 })
	clock.waitPending(t, 10*time.Second)
	clock.Advance(10 * time.Second)
	r.waitRegistered(t, m2.sparkURL())
	assert.EqualValues(t, 2, r.w.Epoch())
}

// MasterChanged from a new leader attaches the worker at once and cancels
// the registration retries; a lower epoch afterwards is refused.
func TestMasterChangedStopsRegistration(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, closedAddr(t))
	r := startWorker(t, cfg, clock)
	clock.waitPending(t, 750*time.Millisecond)

	leader := newFakeMaster(t, 5)
	code, _ := post(t, r.w, protocol.PathWorkerMasterChanged, protocol.MasterChanged{
		Stamp: protocol.Stamp{Epoch: 5, MasterURL: leader.sparkURL()}, MasterWebUIURL: "http://ui:8080"})
	require.Equal(t, 200, code)
	r.waitRegistered(t, leader.sparkURL())
	// The next timer is the heartbeat, not another registration attempt.
	clock.waitPending(t, 10*time.Second)
	clock.Advance(10 * time.Second)
	eventually(t, 5*time.Second, func() bool { return leader.count("heartbeat") == 1 }, "no heartbeat to the new leader")

	code, body := post(t, r.w, protocol.PathWorkerMasterChanged, protocol.MasterChanged{
		Stamp: protocol.Stamp{Epoch: 4, MasterURL: "spark://zombie:7077"}})
	assert.Equal(t, 409, code)
	assert.Contains(t, body.Error, "stale epoch 4")
	u, _ := r.w.Master()
	assert.Equal(t, leader.sparkURL(), u)
}

func TestConfigValidation(t *testing.T) {
	base := testConfig(t, "m:7077")
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"no masters", func(c *Config) { c.Masters = nil }, "no master URL"},
		{"bad cores", func(c *Config) { c.Cores = 0 }, "SPARK_WORKER_CORES"},
		{"bad memory", func(c *Config) { c.MemoryMB = -1 }, "SPARK_WORKER_MEMORY"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "SPARK_WORKER_PORT"},
		{"retries", func(c *Config) { c.MaxRegistrationRetries = 2 }, "spark.worker.maxRegistrationRetries"},
		{"url", func(c *Config) { c.Masters = []string{"spark://h:1/x"} }, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			_, err := New(c, testLogger(t))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrConfig))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	w, err := New(testConfig(t, "m:7077"), testLogger(t))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close())

	w2, err := New(testConfig(t, closedAddr(t)), testLogger(t))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w2.Run(context.Background()) }()
	eventually(t, 5*time.Second, func() bool { return w2.started.Load() }, "not started")
	require.NoError(t, w2.Close())
	require.NoError(t, w2.Close())
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// Every registration attempt dials afresh (no pooled connection), so a
// master's DNS name is resolved again on each attempt.
func TestRegistrationDialsEveryAttempt(t *testing.T) {
	clock := newFakeClock()
	m := newFakeMaster(t, 1)
	m.set(func(m *fakeMaster) { m.hint = &protocol.LeaderHint{State: protocol.MasterStandby} })
	startWorker(t, testConfig(t, "localhost:"+strings.Split(m.addr(), ":")[1]), clock)
	for i := 1; i <= 3; i++ {
		eventually(t, 5*time.Second, func() bool { return m.count("register") == i }, "attempt %d", i)
		clock.waitPending(t, 750*time.Millisecond)
		clock.Advance(750 * time.Millisecond)
	}
	eventually(t, 5*time.Second, func() bool { return m.count("register") == 4 }, "attempt 4")
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Equal(t, 4, m.newConns, "one new connection per attempt")
}

// ReconnectWorker from the current master makes the worker register again.
func TestReconnectWorkerReregisters(t *testing.T) {
	clock := newFakeClock()
	m := newFakeMaster(t, 2)
	r := startWorker(t, testConfig(t, m.sparkURL()), clock)
	r.waitRegistered(t, m.sparkURL())
	eventually(t, 5*time.Second, func() bool { return m.count("latest-state") == 1 }, "no WorkerLatestState")
	code, _ := post(t, r.w, protocol.PathReconnectWorker, protocol.ReconnectWorker{Stamp: protocol.Stamp{Epoch: 2, MasterURL: m.sparkURL()}})
	require.Equal(t, 200, code)
	eventually(t, 5*time.Second, func() bool { return m.count("register") == 2 && m.count("latest-state") == 2 }, "no re-registration")
	r.waitRegistered(t, m.sparkURL())
}

// A heartbeat hung on a master that was paused must not hold the worker once
// a new leader has attached it: MasterChanged cancels it and the next
// heartbeat goes to the new leader, long before the request timeout. (The
// new leader would otherwise time the worker out and kill its executors on
// re-registration.)
func TestMasterChangedCancelsAHungHeartbeat(t *testing.T) {
	release := make(chan struct{})
	var oldURL string
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == protocol.PathRegisterWorker:
			protocol.WriteJSON(w, 200, protocol.RegisteredWorker{Stamp: protocol.Stamp{Epoch: 1, MasterURL: oldURL}})
		case strings.HasSuffix(r.URL.Path, "/heartbeat"):
			<-release // paused
		default:
			protocol.WriteJSON(w, 200, struct{}{})
		}
	}))
	t.Cleanup(old.Close)
	t.Cleanup(func() { close(release) }) // before old.Close (cleanups run last-in first-out)
	oldURL = "spark://" + strings.TrimPrefix(old.URL, "http://")
	clock := newFakeClock()
	cfg := testConfig(t, oldURL)
	cfg.RequestTimeout = time.Minute // the hung heartbeat would hold the worker this long
	r := startWorker(t, cfg, clock)
	r.waitRegistered(t, oldURL)
	clock.waitPending(t, 10*time.Second)
	clock.Advance(10 * time.Second) // the heartbeat to the paused master hangs

	leader := newFakeMaster(t, 2)
	code, _ := post(t, r.w, protocol.PathWorkerMasterChanged, protocol.MasterChanged{
		Stamp: protocol.Stamp{Epoch: 2, MasterURL: leader.sparkURL()}})
	require.Equal(t, 200, code)
	clock.waitPending(t, 10*time.Second) // a new heartbeat timer: the hung one was dropped
	clock.Advance(10 * time.Second)
	eventually(t, 5*time.Second, func() bool { return leader.count("heartbeat") == 1 }, "no heartbeat to the new leader")
}
