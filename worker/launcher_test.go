package worker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// fakeLauncher starts in-memory processes that run until signalled (or
// until the test ends them). ignoreTerm makes them ignore SIGTERM.
type fakeLauncher struct {
	mu         sync.Mutex
	ignoreTerm bool
	fail       error
	procs      map[string]*fakeProcess
	cmds       []Command
}

func (l *fakeLauncher) Launch(c Command) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, c)
	if l.fail != nil {
		return nil, l.fail
	}
	p := &fakeProcess{pid: 100000 + len(l.cmds), ignoreTerm: l.ignoreTerm, end: make(chan struct{})}
	if l.procs == nil {
		l.procs = map[string]*fakeProcess{}
	}
	l.procs[c.ID] = p
	return p, nil
}

func (l *fakeLauncher) proc(id string) *fakeProcess {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[id]
}

type fakeProcess struct {
	pid        int
	ignoreTerm bool

	mu      sync.Mutex
	signals []syscall.Signal
	code    int
	msg     string
	ended   bool
	end     chan struct{}
}

func (p *fakeProcess) PID() int { return p.pid }

func (p *fakeProcess) Wait() (*int, string) {
	<-p.end
	p.mu.Lock()
	defer p.mu.Unlock()
	code := p.code
	return &code, p.msg
}

func (p *fakeProcess) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	ignore := sig == syscall.SIGTERM && p.ignoreTerm
	p.mu.Unlock()
	if !ignore {
		p.exit(128+int(sig), "killed by signal "+sig.String())
	}
	return nil
}

func (p *fakeProcess) exit(code int, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended, p.code, p.msg = true, code, msg
	close(p.end)
}

func (p *fakeProcess) gotSignals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.signals...)
}

// With a Launcher in the config, executors run through it: their state
// changes are reported, a new master learns of them from MasterChanged,
// kills go through SIGTERM and, after the grace period, SIGKILL, and no
// process is started and no directory created.
func TestFakeLauncherRunsExecutorsThroughTheWorker(t *testing.T) {
	m := newFakeMaster(t, 1)
	l := &fakeLauncher{}
	cfg := testConfig(t, m.sparkURL())
	cfg.Launcher = l
	r := startWorker(t, cfg, nil)
	r.waitRegistered(t, m.sparkURL())

	code, body := post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-1", 0, "never run"))
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 0, protocol.ExecutorRunning) }, "no RUNNING")
	l.mu.Lock()
	require.Len(t, l.cmds, 1)
	c := l.cmds[0]
	l.mu.Unlock()
	assert.Equal(t, "executor", c.Kind)
	assert.Equal(t, "app-1/0", c.ID)
	assert.Equal(t, []string{"sh", "-c", "never run"}, c.Argv)
	assert.Contains(t, c.Env, "SPARK_APP_ID=app-1")
	assert.Equal(t, filepath.Join(cfg.WorkDir, "app-1", "0"), c.Dir)
	_, err := os.Stat(c.Dir)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the fake launcher creates no directory")

	// A new master (higher epoch) learns of the running executor.
	var st protocol.WorkerSchedulerState
	rpc := protocol.NewClient(5*time.Second, "")
	err = rpc.Call(context.Background(), http.MethodPost, r.w.URL(), protocol.PathWorkerMasterChanged,
		protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: 2, MasterURL: m.sparkURL()}}, &st)
	require.NoError(t, err)
	require.Len(t, st.Executors, 1)
	assert.Equal(t, protocol.ExecutorRunning, st.Executors[0].State)
	assert.Equal(t, l.proc("app-1/0").pid, st.Executors[0].PID)

	// Kill: SIGTERM ends it, reported KILLED.
	code, body = post(t, r.w, protocol.PathKillExecutor, protocol.KillExecutor{Stamp: protocol.Stamp{Epoch: 2, MasterURL: m.sparkURL()},
		AppID: "app-1", ExecutorID: 0})
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 0, protocol.ExecutorKilled) }, "no KILLED")
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, l.proc("app-1/0").gotSignals())

	// One that ignores SIGTERM gets SIGKILL after the grace period.
	l.mu.Lock()
	l.ignoreTerm = true
	l.mu.Unlock()
	code, body = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 2, "app-1", 1, "stubborn"))
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 1, protocol.ExecutorRunning) }, "no RUNNING")
	code, body = post(t, r.w, protocol.PathKillExecutor, protocol.KillExecutor{Stamp: protocol.Stamp{Epoch: 2, MasterURL: m.sparkURL()},
		AppID: "app-1", ExecutorID: 1})
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 1, protocol.ExecutorKilled) }, "no KILLED")
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, l.proc("app-1/1").gotSignals())

	// One that ends by itself is EXITED with its code.
	l.mu.Lock()
	l.ignoreTerm = false
	l.mu.Unlock()
	code, body = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 2, "app-1", 2, "short"))
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return l.proc("app-1/2") != nil }, "not launched")
	l.proc("app-1/2").exit(0, "")
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 2, protocol.ExecutorExited) }, "no EXITED")

	// A launch the Launcher refuses is FAILED with its error.
	l.mu.Lock()
	l.fail = errors.New("no more fakes")
	l.mu.Unlock()
	code, body = post(t, r.w, protocol.PathLaunchExecutor, launchMsg(m, 2, "app-1", 3, "refused"))
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-1", 3, protocol.ExecutorFailed) }, "no FAILED")
	for _, s := range m.executorStates() {
		if s.ExecutorID == 3 {
			assert.Contains(t, s.Message, "no more fakes")
		}
	}
}
