package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// ---- fake clock ----

type mclock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *mclock { return &mclock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)} }

func (c *mclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *mclock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---- fake Elector: the test decides when this master is elected ----

type testElector struct {
	mu       sync.Mutex
	cb       recovery.Callbacks
	runCtx   context.Context
	cancel   context.CancelFunc // current term
	ready    chan struct{}
	resigned int
	leader   recovery.LeaderInfo
	ok       bool
	me       recovery.Candidate
	contact  time.Time

	confirmFn func(ctx context.Context) error
	confirms  int
}

func newTestElector() *testElector { return &testElector{ready: make(chan struct{})} }

func (e *testElector) Run(ctx context.Context, me recovery.Candidate, cb recovery.Callbacks) error {
	e.mu.Lock()
	e.cb, e.runCtx, e.me = cb, ctx, me
	e.mu.Unlock()
	close(e.ready)
	<-ctx.Done()
	e.revoke(ctx.Err())
	return nil
}

func (e *testElector) elect(t *testing.T, epoch int64) {
	t.Helper()
	select {
	case <-e.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("elector never ran")
	}
	e.mu.Lock()
	if e.cancel != nil {
		e.mu.Unlock()
		e.revoke(errors.New("new term"))
		e.mu.Lock()
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	e.cancel = cancel
	e.leader, e.ok = recovery.LeaderInfo{Candidate: e.me, Epoch: epoch, Since: time.Now()}, true
	cb, l := e.cb, e.leader
	e.mu.Unlock()
	cb.OnLeaderChanged(l, true)
	cb.OnElected(ctx, epoch)
}

// otherLeader makes another master the known leader (this one standby).
func (e *testElector) otherLeader(t *testing.T, url string, epoch int64) {
	t.Helper()
	<-e.ready
	e.mu.Lock()
	e.leader, e.ok = recovery.LeaderInfo{Candidate: recovery.Candidate{ID: "other", RPCURL: url, WebUIURL: "http://other:8080"}, Epoch: epoch}, true
	cb, l := e.cb, e.leader
	e.mu.Unlock()
	cb.OnLeaderChanged(l, true)
}

func (e *testElector) revoke(reason error) {
	e.mu.Lock()
	cancel := e.cancel
	e.cancel = nil
	cb := e.cb
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		cb.OnRevoked(reason)
	}
}

func (e *testElector) Resign(ctx context.Context) error {
	e.mu.Lock()
	e.resigned++
	e.mu.Unlock()
	e.revoke(errors.New("resigned"))
	return nil
}

func (e *testElector) Leader() (recovery.LeaderInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader, e.ok
}

func (e *testElector) LastContact() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.contact
}

func (e *testElector) setContact(t time.Time) { e.mu.Lock(); e.contact = t; e.mu.Unlock() }

// Confirm counts its calls and answers with confirmFn when set; by default
// it follows the recovery.Elector contract: nil while in a term,
// ErrNotLeader otherwise. (A failure does not end the fake's term: the
// tests check that the master steps down by itself.)
func (e *testElector) Confirm(ctx context.Context) error {
	e.mu.Lock()
	e.confirms++
	fn, inTerm := e.confirmFn, e.cancel != nil
	e.mu.Unlock()
	if fn != nil {
		return fn(ctx)
	}
	if !inTerm {
		return recovery.ErrNotLeader
	}
	return nil
}

func (e *testElector) setConfirm(fn func(ctx context.Context) error) {
	e.mu.Lock()
	e.confirmFn = fn
	e.mu.Unlock()
}

func (e *testElector) confirmCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.confirms
}

// ---- in-memory Store with failure injection ----

type memStore struct {
	mu      sync.Mutex
	apps    map[string]recovery.AppRecord
	drivers map[string]recovery.DriverRecord
	workers map[string]recovery.WorkerRecord
	fail    error         // returned by every write while set
	gate    chan struct{} // writes wait for it while set
	// putDriver, when set, is consulted before a PutDriver is applied; a
	// non-nil error fails that write.
	putDriver func(r recovery.DriverRecord) error
	// ambiguous, when set, is consulted after a PutApp or PutDriver was
	// applied; a non-nil error is returned although the write committed.
	ambiguous func(kind recovery.Kind, id string) error
	reads     int
	writes    int
}

func newMemStore() *memStore {
	return &memStore{apps: map[string]recovery.AppRecord{}, drivers: map[string]recovery.DriverRecord{}, workers: map[string]recovery.WorkerRecord{}}
}

func (s *memStore) write(ctx context.Context, fn func()) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.fail != nil {
		return s.fail
	}
	fn()
	return nil
}

func (s *memStore) setFail(err error) { s.mu.Lock(); s.fail = err; s.mu.Unlock() }

func (s *memStore) PutApp(ctx context.Context, r recovery.AppRecord) error {
	if err := s.write(ctx, func() { s.apps[r.ID] = r }); err != nil {
		return err
	}
	return s.afterPut(recovery.KindApp, r.ID)
}

func (s *memStore) afterPut(kind recovery.Kind, id string) error {
	s.mu.Lock()
	hook := s.ambiguous
	s.mu.Unlock()
	if hook != nil {
		return hook(kind, id)
	}
	return nil
}
func (s *memStore) PutDriver(ctx context.Context, r recovery.DriverRecord) error {
	s.mu.Lock()
	hook := s.putDriver
	s.mu.Unlock()
	if hook != nil {
		if err := hook(r); err != nil {
			return err
		}
	}
	if err := s.write(ctx, func() { s.drivers[r.ID] = r }); err != nil {
		return err
	}
	return s.afterPut(recovery.KindDriver, r.ID)
}
func (s *memStore) PutWorker(ctx context.Context, r recovery.WorkerRecord) error {
	return s.write(ctx, func() { s.workers[r.ID] = r })
}
func (s *memStore) Remove(ctx context.Context, kind recovery.Kind, id string) error {
	return s.write(ctx, func() {
		switch kind {
		case recovery.KindApp:
			delete(s.apps, id)
		case recovery.KindDriver:
			delete(s.drivers, id)
		case recovery.KindWorker:
			delete(s.workers, id)
		}
	})
}
func (s *memStore) Read(ctx context.Context) (recovery.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	var st recovery.State
	for _, r := range s.apps {
		st.Apps = append(st.Apps, r)
	}
	for _, r := range s.drivers {
		st.Drivers = append(st.Drivers, r)
	}
	for _, r := range s.workers {
		st.Workers = append(st.Workers, r)
	}
	return st, nil
}
func (s *memStore) Close() error { return nil }

func (s *memStore) has(kind recovery.Kind, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case recovery.KindApp:
		_, ok := s.apps[id]
		return ok
	case recovery.KindDriver:
		_, ok := s.drivers[id]
		return ok
	}
	_, ok := s.workers[id]
	return ok
}

// ---- peers: a worker's command listener or an application client ----

type received struct {
	path string
	body []byte
}

type peer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []received
	// answer builds the reply to a path (nil = {}).
	answer func(path string, body []byte) (int, any)
}

func newPeer(t *testing.T, answer func(path string, body []byte) (int, any)) *peer {
	p := &peer{answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.msgs = append(p.msgs, received{r.URL.Path, b})
		ans := p.answer
		p.mu.Unlock()
		code, v := 200, any(struct{}{})
		if ans != nil {
			code, v = ans(r.URL.Path, b)
		}
		protocol.WriteJSON(w, code, v)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) url() string { return p.srv.URL }

func (p *peer) got(path string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, m := range p.msgs {
		if m.path == path {
			out = append(out, m.body)
		}
	}
	return out
}

// ---- the master under test ----

type tmaster struct {
	*Master
	el    *testElector
	store *memStore
	clock *mclock
	logs  *test.Hook
	base  string // http://127.0.0.1:port of the RPC listener
	cli   *protocol.Client
}

func testConfig() Config {
	c := DefaultConfig()
	c.Host, c.Port, c.WebUIPort, c.RESTEnabled = "127.0.0.1", 0, 0, false
	c.WorkerTimeout = 60 * time.Second
	c.RPCTimeout = 5 * time.Second
	// The applications of most tests do not heartbeat while the tests move
	// the clock by minutes; the liveness tests set their own bound.
	c.AppTimeout = 24 * time.Hour
	return c
}

func startMaster(t *testing.T, cfg Config, store *memStore) *tmaster {
	t.Helper()
	if store == nil {
		store = newMemStore()
	}
	clock := newClock()
	cfg.Now = clock.Now
	lg, hook := test.NewNullLogger()
	lg.SetLevel(logrus.DebugLevel)
	el := newTestElector()
	m, err := New(cfg, el, store, logrus.NewEntry(lg))
	require.NoError(t, err)
	m.tick = 20 * time.Millisecond        // real-time polling of the fake clock
	m.pause.every = 10 * time.Millisecond // likewise
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	<-el.ready
	return &tmaster{Master: m, el: el, store: store, clock: clock, logs: hook, base: "http://" + m.Addr(), cli: protocol.NewClient(5*time.Second, "")}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tm *tmaster) status() protocol.MasterState { return tm.View().Status }

// waitStatus waits for status s; for ALIVE, also for the end of a
// recovery (the master is ALIVE while it recovers the stored peers).
func (tm *tmaster) waitStatus(t *testing.T, s protocol.MasterState) {
	t.Helper()
	eventually(t, "status "+string(s), func() bool {
		return tm.status() == s && (s != protocol.MasterAlive || !tm.View().HA.Recovering)
	})
}

// waitRecovering waits until a recovery is (want) or is not (!want)
// under way; the master is ALIVE either way.
func (tm *tmaster) waitRecovering(t *testing.T, want bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("recovering %v", want), func() bool {
		v := tm.View()
		return v.Status == protocol.MasterAlive && v.HA.Recovering == want
	})
}

func (tm *tmaster) logged(msg string) bool {
	for _, e := range tm.logs.AllEntries() {
		if strings.Contains(e.Message, msg) {
			return true
		}
	}
	return false
}

func (tm *tmaster) call(method, path string, req, resp any) error {
	return tm.cli.Call(context.Background(), method, tm.base, path, req, resp)
}

func (tm *tmaster) registerWorker(t *testing.T, id string, p *peer, cores, mem int) protocol.RegisteredWorker {
	t.Helper()
	var resp protocol.RegisteredWorker
	port := 1000 + len(id)
	if p != nil {
		fmt.Sscanf(p.url()[strings.LastIndex(p.url(), ":")+1:], "%d", &port)
	}
	url := "http://127.0.0.1:1"
	if p != nil {
		url = p.url()
	}
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: id, Host: "127.0.0.1", Port: port, URL: url, WebUIURL: "http://127.0.0.1:8081", Cores: cores, MemoryMB: mem}, &resp))
	return resp
}

func (tm *tmaster) registerApp(t *testing.T, name string, client *peer, execCores, mem int) string {
	t.Helper()
	var resp protocol.RegisteredApplication
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterApp, protocol.RegisterApplication{
		App:       protocol.AppDescription{Name: name, Command: []string{"/bin/true"}, ExecutorCores: execCores, ExecutorMemMB: mem},
		ClientURL: client.url()}, &resp))
	return resp.AppID
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func (tm *tmaster) term() *term {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.Master.term
}
