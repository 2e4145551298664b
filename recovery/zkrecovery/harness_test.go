package zkrecovery

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// testSession is the session timeout of test masters: short, to keep the
// suite fast.
const testSession = 2 * time.Second

func testLog(t testing.TB, id string) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	if _, bench := t.(*testing.B); bench {
		l.SetLevel(logrus.ErrorLevel)
	} else if testing.Verbose() {
		l.SetLevel(logrus.InfoLevel)
	}
	return logrus.NewEntry(l).WithFields(logrus.Fields{"test": t.Name(), "master": id})
}

func connect(t testing.TB, addr string, id string) *zkutil.Conn {
	t.Helper()
	return connectSession(t, addr, id, testSession)
}

func connectSession(t testing.TB, addr string, id string, session time.Duration) *zkutil.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := zkutil.Connect(ctx, zkutil.Config{
		Connect: addr, SessionTimeout: session, CallTimeout: 2 * time.Second,
		Logger: testLog(t, id).WithField("component", "zkutil"),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// event is one callback, as the test saw it.
type event struct {
	kind  string // elected, revoked
	epoch int64
	err   error
	at    time.Time
}

// master is one candidate running in the test process.
type master struct {
	t    testing.TB
	id   string
	conn *zkutil.Conn
	el   *Elector
	st   *Store

	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	events  []event
	leading bool
	epoch   int64
	termCtx context.Context
	leaders []recovery.LeaderInfo
	stopped bool
}

func startMaster(t testing.TB, addr, dir, id string, opts ...Option) *master {
	t.Helper()
	conn := connect(t, addr, id)
	return startMasterOn(t, conn, dir, id, opts...)
}

func startMasterOn(t testing.TB, conn *zkutil.Conn, dir, id string, opts ...Option) *master {
	t.Helper()
	el, st, err := New(conn, dir, testLog(t, id), opts...)
	require.NoError(t, err)
	m := &master{t: t, id: id, conn: conn, el: el, st: st, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	me := recovery.Candidate{
		ID: id, RPCURL: "spark://" + id + ":7077", WebUIURL: "http://" + id + ":8080", RESTURL: "spark://" + id + ":6066",
	}
	go func() {
		m.done <- el.Run(ctx, me, recovery.Callbacks{
			OnElected: func(c context.Context, epoch int64) {
				m.mu.Lock()
				defer m.mu.Unlock()
				if m.leading {
					t.Errorf("%s: OnElected twice without OnRevoked", id)
				}
				m.leading, m.epoch, m.termCtx = true, epoch, c
				m.events = append(m.events, event{kind: "elected", epoch: epoch, at: time.Now()})
			},
			OnRevoked: func(reason error) {
				m.mu.Lock()
				defer m.mu.Unlock()
				if !m.leading {
					t.Errorf("%s: OnRevoked without OnElected", id)
				}
				m.leading = false
				m.events = append(m.events, event{kind: "revoked", epoch: m.epoch, err: reason, at: time.Now()})
			},
			OnLeaderChanged: func(l recovery.LeaderInfo, ok bool) {
				m.mu.Lock()
				defer m.mu.Unlock()
				if ok {
					m.leaders = append(m.leaders, l)
				}
			},
		})
	}()
	t.Cleanup(m.stop)
	return m
}

// stop cancels Run and waits for it (idempotent).
func (m *master) stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	m.mu.Unlock()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			m.t.Errorf("%s: Run returned %v", m.id, err)
		}
	case <-time.After(15 * time.Second):
		m.t.Errorf("%s: Run did not return within 15s of cancel", m.id)
	}
}

func (m *master) isLeading() (bool, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leading, m.epoch
}

func (m *master) eventList() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event(nil), m.events...)
}

// lastEvent returns the last event of kind, if any.
func (m *master) lastEvent(kind string) (event, bool) {
	evs := m.eventList()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].kind == kind {
			return evs[i], true
		}
	}
	return event{}, false
}

// waitLeader polls until exactly one of ms leads and returns it.
func waitLeader(t testing.TB, timeout time.Duration, ms ...*master) *master {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []*master
		for _, m := range ms {
			if ok, _ := m.isLeading(); ok {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d masters lead at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var dirSeq struct {
	sync.Mutex
	n int
}

// testDir is a fresh spark.deploy.zookeeper.dir per test.
func testDir() string {
	dirSeq.Lock()
	defer dirSeq.Unlock()
	dirSeq.n++
	return fmt.Sprintf("/spark%d", dirSeq.n)
}

func app(id string) recovery.AppRecord {
	return recovery.AppRecord{ID: id, ClientURL: "http://driver-" + id + ":4040", SubmitTime: time.Unix(1700000000, 0).UTC()}
}
