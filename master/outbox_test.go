package master

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// recPeer records the messages it has finished handling, in that order:
// the order in which a worker or client acts on them.
type recPeer struct {
	srv *httptest.Server
	mu  sync.Mutex
	// arrived and handled record paths and bodies in arrival and completion
	// order.
	arrived, handled []received
	// hold, when set, is called before a message is answered (a slow peer).
	hold func(path string)
}

func newRecPeer(t *testing.T, hold func(path string)) *recPeer {
	p := &recPeer{hold: hold}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.arrived = append(p.arrived, received{r.URL.Path, b})
		p.mu.Unlock()
		if p.hold != nil {
			p.hold(r.URL.Path)
		}
		p.mu.Lock()
		p.handled = append(p.handled, received{r.URL.Path, b})
		p.mu.Unlock()
		protocol.WriteJSON(w, http.StatusOK, struct{}{})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *recPeer) url() string { return p.srv.URL }

func (p *recPeer) snapshot() (arrived, handled []received) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.arrived...), append([]received(nil), p.handled...)
}

func paths(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.path)
	}
	return out
}

// Messages to one peer, queued by many goroutines (each under the state
// lock, as every state change does), reach it in the order they were
// queued, even when the peer takes a variable time to handle each.
func TestOutboxOrderedPerPeerUnderConcurrency(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	p := newRecPeer(t, func(string) {
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) // the peer's processing time
	})
	const goroutines, each = 16, 25
	next := 0
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				tm.mu.Lock()
				tm.sendAsyncLocked(p.url(), protocol.PathExecutorUpdated, protocol.ExecutorUpdated{
					Stamp: tm.stampLocked(), ExecutorID: next, State: protocol.ExecutorRunning})
				next++
				tm.mu.Unlock()
			}
		})
	}
	wg.Wait()
	eventually(t, "every message handled", func() bool {
		_, h := p.snapshot()
		return len(h) == goroutines*each
	})
	_, handled := p.snapshot()
	var got []int
	for _, r := range handled {
		got = append(got, decodeAs[protocol.ExecutorUpdated](t, r.body).ExecutorID)
	}
	for i := range got {
		if got[i] != i {
			t.Fatalf("message %d handled at position %d: order %v", got[i], i, got)
		}
	}
}

// A KillExecutor (and the ApplicationFinished after it) must not overtake
// the LaunchExecutor a slow worker is still handling: the worker would
// ignore the kill of an executor it does not know yet and then start it, an
// orphan. Likewise the application must see its executor added before the
// application is removed.
func TestOutboxKillNeverOvertakesLaunch(t *testing.T) {
	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	slow := func(path string) {
		if path == protocol.PathLaunchExecutor || path == protocol.PathExecutorAdded {
			time.Sleep(300 * time.Millisecond) // a loaded worker / driver
		}
	}
	w := newRecPeer(t, slow)
	a := newRecPeer(t, slow)
	var reg protocol.RegisteredWorker
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: "worker-a", Host: "127.0.0.1", Port: 7001, URL: w.url(), WebUIURL: "http://127.0.0.1:8081", Cores: 4, MemoryMB: 4096}, &reg))
	var ra protocol.RegisteredApplication
	require.NoError(t, tm.call(http.MethodPost, protocol.PathRegisterApp, protocol.RegisterApplication{
		App:       protocol.AppDescription{Name: "pi", Command: []string{"/bin/true"}, ExecutorCores: 1, ExecutorMemMB: 64, MaxCores: 1},
		ClientURL: a.url()}, &ra))
	eventually(t, "LaunchExecutor reached the worker", func() bool {
		arrived, _ := w.snapshot()
		return len(arrived) > 0
	})
	require.NoError(t, tm.KillApp(t.Context(), ra.AppID))

	eventually(t, "the worker handled launch, kill and finish", func() bool {
		_, h := w.snapshot()
		return len(h) == 3
	})
	_, wh := w.snapshot()
	assert.Equal(t, []string{protocol.PathLaunchExecutor, protocol.PathKillExecutor, protocol.PathApplicationFinished}, paths(wh))
	eventually(t, "the application handled added and removed", func() bool {
		_, h := a.snapshot()
		return len(h) == 2
	})
	_, ah := a.snapshot()
	assert.Equal(t, []string{protocol.PathExecutorAdded, protocol.PathApplicationRemoved}, paths(ah))
}

// A hung peer (it accepts connections and never answers) holds only its
// own queue: another peer still gets its messages at once, and the state
// lock and RPCs are not held up, however many messages wait for the hung one.
func TestOutboxHungPeerDoesNotDelayOthers(t *testing.T) {
	cfg := testConfig()
	cfg.RPCTimeout = time.Minute
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	hang := make(chan struct{})
	hung := newRecPeer(t, func(string) { <-hang })
	t.Cleanup(func() { close(hang) }) // runs before hung's Close
	ok := newRecPeer(t, nil)

	const n = 300 // more than any global bound on concurrent sends
	tm.mu.Lock()
	for i := range n {
		tm.sendAsyncLocked(hung.url(), protocol.PathKillExecutor, protocol.KillExecutor{Stamp: tm.stampLocked(), AppID: "a", ExecutorID: i})
	}
	tm.mu.Unlock()
	eventually(t, "the hung peer got its first message", func() bool {
		arrived, _ := hung.snapshot()
		return len(arrived) > 0
	})
	start := time.Now()
	tm.mu.Lock()
	tm.sendAsyncLocked(ok.url(), protocol.PathKillExecutor, protocol.KillExecutor{Stamp: tm.stampLocked(), AppID: "b", ExecutorID: 1})
	tm.mu.Unlock()
	eventually(t, "the healthy peer got its message", func() bool {
		_, h := ok.snapshot()
		return len(h) == 1
	})
	assert.Less(t, time.Since(start), 5*time.Second, "the healthy peer waited behind the hung one")
	// RPCs are served meanwhile.
	var li protocol.LeaderInfo
	require.NoError(t, tm.call(http.MethodGet, protocol.PathLeader, nil, &li))
	assert.Equal(t, protocol.MasterAlive, li.State)
	arrived, _ := hung.snapshot()
	assert.Len(t, arrived, 1, "one call at a time to the hung peer")
}

// Messages queued in a term that ended are never sent: not the one in
// flight (cancelled), nor those queued behind it, even once the peer
// answers again and the master leads a new term.
func TestOutboxOldTermMessagesAreNotSentInNewTerm(t *testing.T) {
	cfg := testConfig()
	cfg.RPCTimeout = time.Minute
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	release := make(chan struct{})
	var once sync.Once
	p := newRecPeer(t, func(string) {
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	tm.mu.Lock()
	for i := range 5 {
		tm.sendAsyncLocked(p.url(), protocol.PathKillExecutor, protocol.KillExecutor{Stamp: tm.stampLocked(), AppID: "a", ExecutorID: i})
	}
	tm.mu.Unlock()
	eventually(t, "the first message is in flight", func() bool {
		arrived, _ := p.snapshot()
		return len(arrived) == 1
	})
	tm.el.elect(t, 2)
	tm.waitStatus(t, protocol.MasterAlive)
	once.Do(func() { close(release) })
	tm.mu.Lock()
	tm.sendAsyncLocked(p.url(), protocol.PathKillExecutor, protocol.KillExecutor{Stamp: tm.stampLocked(), AppID: "b", ExecutorID: 9})
	tm.mu.Unlock()
	eventually(t, "the new term's message arrived", func() bool {
		arrived, _ := p.snapshot()
		for _, r := range arrived {
			if decodeAs[protocol.KillExecutor](t, r.body).Epoch == 2 {
				return true
			}
		}
		return false
	})
	arrived, _ := p.snapshot()
	var epochs []int64
	for _, r := range arrived {
		var k protocol.KillExecutor
		require.NoError(t, json.Unmarshal(r.body, &k))
		epochs = append(epochs, k.Epoch)
	}
	assert.Equal(t, []int64{1, 2}, epochs, "only the in-flight message of term 1 reached the peer")
}
