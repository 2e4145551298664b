package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// ---- fake clock ----

type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created []time.Duration
}

type fakeTimer struct {
	c       chan time.Time
	when    time.Time
	d       time.Duration
	stopped bool
	fired   bool
	clock   *fakeClock
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), when: c.now.Add(d), d: d, clock: c}
	c.timers = append(c.timers, t)
	c.created = append(c.created, d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves time forward and fires every due timer.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.when.After(c.now) {
			t.fired = true
			t.c <- c.now
		}
	}
}

// pending returns the durations of timers neither stopped nor fired.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			out = append(out, t.d)
		}
	}
	return out
}

func (c *fakeClock) createdDurations() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.created...)
}

// waitPending waits until a pending timer of duration d exists.
func (c *fakeClock) waitPending(t *testing.T, d time.Duration) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		for _, p := range c.pending() {
			if p == d {
				return true
			}
		}
		return false
	}, "no pending %v timer; pending: %v", d, c.pending())
}

// eventually polls cond every 10 ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- fake master ----

type recorded struct {
	kind string
	body json.RawMessage
}

// fakeMaster is an httptest server speaking the master's side of the
// worker protocol; it records every message it receives.
type fakeMaster struct {
	srv *httptest.Server

	mu          sync.Mutex
	epoch       int64
	hint        *protocol.LeaderHint // non-nil: answer registrations with 503 + hint
	duplicate   bool
	reregister  bool // answer heartbeats with Reregister
	failReports bool // answer state reports with 503
	msgs        []recorded
	newConns    int    // connections accepted
	leaderURL   string // what GET /v1/leader names ("" = this master)
	leaderEpoch int64  // and at which epoch (0 = epoch)
}

func newFakeMaster(t *testing.T, epoch int64) *fakeMaster { return newFakeMasterAuth(t, epoch, "") }

// newFakeMasterAuth is a fake master that, with secret set, verifies and
// signs like a real one (the master key).
func newFakeMasterAuth(t *testing.T, epoch int64, secret string) *fakeMaster {
	m := &fakeMaster{epoch: epoch}
	r := mux.NewRouter()
	handle := func(kind, path string, reply func(w http.ResponseWriter)) {
		r.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			m.mu.Lock()
			m.msgs = append(m.msgs, recorded{kind: kind, body: body})
			m.mu.Unlock()
			reply(w)
		}).Methods(http.MethodPost)
	}
	handle("register", protocol.PathRegisterWorker, func(w http.ResponseWriter) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.hint != nil {
			protocol.WriteError(w, http.StatusServiceUnavailable, "master is in STANDBY", m.hint)
			return
		}
		protocol.WriteJSON(w, 200, protocol.RegisteredWorker{Stamp: m.stampLocked(), MasterWebUIURL: "http://ui.example:8080",
			Duplicate: m.duplicate})
	})
	handle("heartbeat", protocol.PathWorkerHeartbeat, func(w http.ResponseWriter) {
		m.mu.Lock()
		defer m.mu.Unlock()
		protocol.WriteJSON(w, 200, protocol.HeartbeatResponse{Stamp: m.stampLocked(), Reregister: m.reregister})
	})
	reportReply := func(w http.ResponseWriter) {
		m.mu.Lock()
		fail := m.failReports
		m.mu.Unlock()
		if fail {
			protocol.WriteError(w, http.StatusServiceUnavailable, "not now", nil)
			return
		}
		protocol.WriteJSON(w, 200, struct{}{})
	}
	handle("executor-state", protocol.PathExecutorState, reportReply)
	handle("driver-state", protocol.PathDriverState, reportReply)
	ok := func(w http.ResponseWriter) { protocol.WriteJSON(w, 200, struct{}{}) }
	handle("latest-state", protocol.PathWorkerLatestState, ok)
	handle("decommission", protocol.PathWorkerDecommission, ok)
	handle("unregister", protocol.PathWorkerUnregister, ok)
	r.HandleFunc(protocol.PathLeader, func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		li := protocol.LeaderInfo{URL: m.sparkURL(), State: protocol.MasterAlive, Epoch: m.epoch, LeaderURL: m.sparkURL()}
		if m.leaderURL != "" {
			li.LeaderURL, li.Epoch = m.leaderURL, m.leaderEpoch
		}
		protocol.WriteJSON(w, 200, li)
	}).Methods(http.MethodGet)
	m.srv = httptest.NewUnstartedServer(protocol.AuthenticateRoles(protocol.ClusterCredentials(secret, protocol.Identity{Role: protocol.RoleMaster}), protocol.VerifyOptions{}, nil, r))
	m.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			m.mu.Lock()
			m.newConns++
			m.mu.Unlock()
		}
	}
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	return m
}

func (m *fakeMaster) addr() string { return strings.TrimPrefix(m.srv.URL, "http://") }

func (m *fakeMaster) sparkURL() string { return "spark://" + m.addr() }

func (m *fakeMaster) stampLocked() protocol.Stamp {
	return protocol.Stamp{Epoch: m.epoch, MasterURL: m.sparkURL()}
}

func (m *fakeMaster) set(f func(m *fakeMaster)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *fakeMaster) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.msgs {
		if r.kind == kind {
			n++
		}
	}
	return n
}

// executorStates returns the executor states reported, in order.
func (m *fakeMaster) executorStates() []protocol.ExecutorStateChanged {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []protocol.ExecutorStateChanged
	for _, r := range m.msgs {
		if r.kind == "executor-state" {
			var e protocol.ExecutorStateChanged
			if json.Unmarshal(r.body, &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

func (m *fakeMaster) driverStates() []protocol.DriverStateChanged {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []protocol.DriverStateChanged
	for _, r := range m.msgs {
		if r.kind == "driver-state" {
			var e protocol.DriverStateChanged
			if json.Unmarshal(r.body, &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// hasExecutorState reports whether state was reported for app/exec.
func (m *fakeMaster) hasExecutorState(appID string, execID int, state protocol.ExecutorState) bool {
	for _, e := range m.executorStates() {
		if e.AppID == appID && e.ExecutorID == execID && e.State == state {
			return true
		}
	}
	return false
}

// ---- worker under test ----

func testLogger(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testConfig(t *testing.T, masters ...string) Config {
	return Config{
		Masters:                     masters,
		Host:                        "127.0.0.1",
		Cores:                       4,
		MemoryMB:                    4096,
		WorkDir:                     t.TempDir(),
		Timeout:                     40 * time.Second,
		InitialRegistrationRetries:  3,
		MaxRegistrationRetries:      6,
		RegistrationInitialInterval: time.Second,
		RegistrationMaxInterval:     3 * time.Second,
		KillGracePeriod:             500 * time.Millisecond,
		RequestTimeout:              2 * time.Second,
	}
}

type running struct {
	w    *Worker
	errc chan error
}

// startWorker creates and runs a worker; cleanup cancels it and waits.
func startWorker(t *testing.T, cfg Config, clock Clock) *running {
	t.Helper()
	if clock == nil {
		clock = realClock{}
	}
	w, err := newWorker(cfg, testLogger(t), clock)
	require.NoError(t, err)
	w.jit = func() float64 { return 0.25 }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, errc: make(chan error, 1)}
	go func() { r.errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop within 30s")
		}
	})
	return r
}

func (r *running) waitRegistered(t *testing.T, masterURL string) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		u, ok := r.w.Master()
		return ok && u == masterURL
	}, "worker not registered with %s", masterURL)
}

// post sends a command to the worker's command listener.
func post(t *testing.T, w *Worker, path string, body any) (int, protocol.ErrorBody) {
	t.Helper()
	c := protocol.NewClient(5*time.Second, "")
	err := c.Call(context.Background(), http.MethodPost, w.URL(), path, body, nil)
	if err == nil {
		return 200, protocol.ErrorBody{}
	}
	var se *protocol.StatusError
	require.True(t, errors.As(err, &se), "unexpected error: %v", err)
	return se.Code, protocol.ErrorBody{Error: se.Message, Hint: se.Hint}
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := ln.Addr().String()
	ln.Close()
	return a
}
