package executor

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func logger(w *syncBuf) *logrus.Entry {
	l := logrus.New()
	l.Out = w
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l)
}

func newDriver(t *testing.T, cfg task.DriverConfig) *task.Driver {
	t.Helper()
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 200 * time.Millisecond
		cfg.NetworkTimeout = 2 * time.Second
	}
	d, err := task.NewDriver(cfg)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	d.AllowApp("app-1")
	return d
}

type runningBackend struct {
	log  *syncBuf
	out  *syncBuf
	done chan error
}

func startBackend(t *testing.T, d *task.Driver, id, secret string, cores int) *runningBackend {
	t.Helper()
	return startBackendAt(t, d.URL(), id, secret, cores)
}

func startBackendHost(t *testing.T, d *task.Driver, id, host string) *runningBackend {
	t.Helper()
	return startBackendFull(t, d.URL(), id, "", host, 1)
}

func startBackendAt(t *testing.T, driverURL, id, secret string, cores int) *runningBackend {
	t.Helper()
	return startBackendFull(t, driverURL, id, secret, "127.0.0.1", cores)
}

func startBackendFull(t *testing.T, driverURL, id, secret, host string, cores int) *runningBackend {
	t.Helper()
	rb := &runningBackend{log: &syncBuf{}, out: &syncBuf{}, done: make(chan error, 1)}
	b, err := New(Config{DriverURL: driverURL, AppID: "app-1", ExecutorID: id, Host: host, Cores: cores,
		Secret: secret, NetworkTimeout: 2 * time.Second, WorkDir: t.TempDir(), Stdout: rb.out, Stderr: rb.log, Logger: logger(rb.log)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { rb.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rb.done:
		case <-time.After(10 * time.Second):
			t.Errorf("executor %s did not stop", id)
		}
	})
	return rb
}

func (rb *runningBackend) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rb.done:
		rb.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("executor did not exit")
		return nil
	}
}

func runDriver(t *testing.T, d *task.Driver) task.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := d.Run(ctx)
	require.NoError(t, ctx.Err(), "the job finished before its deadline: %+v", res)
	return res
}

func TestJobThroughBackendsCommitsEachOutputOnce(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	marker := filepath.Join(t.TempDir(), "failed-once")
	cmds := make([]string, 20)
	for i := range cmds {
		cmds[i] = "echo out-{{TASK_ID}}-$TASK_ID-{{ATTEMPT}}-$ATTEMPT; echo noise >&2"
	}
	// Task 7 fails its first attempt, then succeeds as attempt 1.
	cmds[7] = fmt.Sprintf("if [ ! -e %s ]; then touch %s; echo first-try >&2; exit 1; fi; echo out-7-{{ATTEMPT}}", marker, marker)
	d := newDriver(t, task.DriverConfig{Commands: cmds, OutputDir: out, Secret: "s3cret"})
	b1 := startBackend(t, d, "0", "s3cret", 2)
	b2 := startBackend(t, d, "1", "s3cret", 1)
	res := runDriver(t, d)
	require.True(t, res.OK, "%+v", res)
	assert.Equal(t, 20, res.Counts.Succeeded)
	assert.Equal(t, 1, res.Counts.FailedAttempts)
	require.Len(t, res.Failures, 1)
	assert.Equal(t, 7, res.Failures[0].Task)
	assert.Contains(t, res.Failures[0].LastError, "exit status 1; stderr: first-try")
	for i := range cmds {
		data, err := os.ReadFile(filepath.Join(out, task.PartName(i)))
		require.NoError(t, err)
		want := fmt.Sprintf("out-%d-%d-0-0\n", i, i)
		if i == 7 {
			want = "out-7-1\n"
		}
		assert.Equal(t, want, string(data))
	}
	assert.NoError(t, b1.wait(t), "the driver told the executor to shut down")
	assert.NoError(t, b2.wait(t))
	assert.Contains(t, b1.log.String()+b2.log.String(), "noise", "task stderr goes to the executor's stderr")
	assert.Empty(t, b1.out.String()+b2.out.String(), "captured stdout is not also logged")
	assert.Greater(t, res.Overhead, time.Duration(0))
}

func TestUncapturedStdoutGoesToExecutorStdout(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"echo hello-$TASK_ID"}})
	b := startBackend(t, d, "0", "", 1)
	res := runDriver(t, d)
	require.True(t, res.OK)
	require.NoError(t, b.wait(t))
	assert.Equal(t, "hello-0\n", b.out.String())
}

// A driver that vanishes without a word (a crash: here, the proxy in front
// of it closes) is noticed by its refused connections.
func TestBackendExitsWhenDriverGoes(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"sleep 30"}})
	target, err := url.Parse(d.URL())
	require.NoError(t, err)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	b := startBackendAt(t, proxy.URL, "0", "", 1)
	require.Eventually(t, func() bool { return d.Counts().RunningAttempts == 1 }, 5*time.Second, 10*time.Millisecond)
	start := time.Now()
	proxy.CloseClientConnections()
	proxy.Close()
	err = b.wait(t)
	assert.ErrorIs(t, err, ErrDisassociated)
	assert.Less(t, time.Since(start), 5*time.Second, "a closed driver port is noticed at once")
	assert.Contains(t, b.log.String(), "disassociated! Shutting down.")
}

func TestBackendWithWrongSecretIsRefused(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"true"}, Secret: "right"})
	b := startBackend(t, d, "0", "wrong", 1)
	err := b.wait(t)
	assert.ErrorIs(t, err, ErrRemoved)
	assert.Contains(t, err.Error(), "spark.authenticate.secret does not match")
}

// An executor that stops polling (SIGSTOP, a partition) is lost after
// spark.network.timeout; its task runs again elsewhere, not as a failure.
func TestSilentExecutorIsLostAfterNetworkTimeout(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"echo done"}, OutputDir: filepath.Join(t.TempDir(), "out"),
		HeartbeatInterval: 50 * time.Millisecond, NetworkTimeout: 400 * time.Millisecond})
	rpc := protocol.NewClient(2*time.Second, "")
	ctx := context.Background()
	var reg task.RegisteredExecutor
	require.NoError(t, rpc.Call(ctx, http.MethodPost, d.URL(), task.PathRegisterExecutor,
		task.RegisterExecutor{AppID: "app-1", ExecutorID: "9", Host: "h", Cores: 1}, &reg))
	var o task.Orders
	require.NoError(t, rpc.Call(ctx, http.MethodPost, d.URL(), task.PathPoll, task.Poll{Executor: reg.Executor}, &o))
	require.Len(t, o.Launch, 1, "the silent executor got the task")
	// ... and never polls again. A real executor joins.
	done := make(chan task.Result, 1)
	go func() { done <- runDriver(t, d) }()
	startBackend(t, d, "0", "", 1)
	res := <-done
	require.True(t, res.OK)
	assert.Equal(t, 1, res.Counts.LostAttempts)
	assert.Equal(t, 0, res.Counts.FailedAttempts)
	err := rpc.Call(ctx, http.MethodPost, d.URL(), task.PathPoll, task.Poll{Executor: reg.Executor}, &o)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusGone, se.Code, "a lost executor that comes back is told to go")
	assert.Contains(t, se.Message, "Executor heartbeat timed out")
}

func TestDriverRefusesBadBodies(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"true"}})
	rpc := protocol.NewClient(2*time.Second, "")
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{task.PathRegisterExecutor, task.RegisterExecutor{AppID: "app-1", ExecutorID: "1", Host: "h"}, "cores must be a positive number"},
		{task.PathRegisterExecutor, task.RegisterExecutor{ExecutorID: "1", Host: "h", Cores: 1}, "appId is required"},
		{task.PathRegisterExecutor, []int{1}, "body must be a JSON object"},
		{task.PathPoll, task.Poll{}, "executor is required"},
		{task.PathStatus, task.StatusUpdate{Executor: "app-1/1", Results: []task.TaskResult{{Attempt: 1, State: "DONE"}}}, `results[0].state is "DONE"`},
	} {
		err := rpc.Call(context.Background(), http.MethodPost, d.URL(), tc.path, tc.body, nil)
		var se *protocol.StatusError
		require.ErrorAs(t, err, &se, tc.path)
		assert.Equal(t, http.StatusBadRequest, se.Code, tc.path)
		assert.Contains(t, se.Message, tc.want)
	}
	err := rpc.Call(context.Background(), http.MethodPost, d.URL(), task.PathRegisterExecutor,
		task.RegisterExecutor{AppID: "app-other", ExecutorID: "1", Host: "h", Cores: 1}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.Code, "an unknown application may be one still registering")
	assert.True(t, strings.Contains(se.Message, "app-other"))
}

func TestOutputAboveMaxOutputFailsTheTask(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	d := newDriver(t, task.DriverConfig{Commands: []string{"head -c 100 /dev/zero"}, OutputDir: out, MaxOutput: 10,
		Scheduler: task.Config{MaxFailures: 1}})
	startBackend(t, d, "0", "", 1)
	res := runDriver(t, d)
	require.False(t, res.OK)
	require.NotNil(t, res.Failure)
	assert.Equal(t, "stdout is 100 bytes, more than the 10 a task may commit", res.Failure.LastError)
	assert.NoFileExists(t, filepath.Join(out, task.PartName(0)))
}

// A task that prefers a host waits (up to spark.locality.wait) for a slot
// there, while the others run anywhere.
func TestPreferredHostThroughBackends(t *testing.T) {
	d := newDriver(t, task.DriverConfig{Commands: []string{"echo zero", "echo one", "echo two"},
		Preferred: map[int][]string{0: {"host-b"}}, Scheduler: task.Config{LocalityWait: time.Minute}})
	a := startBackendHost(t, d, "0", "host-a")
	require.Eventually(t, func() bool { return d.Counts().Succeeded == 2 }, 10*time.Second, 10*time.Millisecond,
		"the tasks without preferences run on host-a")
	assert.Equal(t, 1, d.Counts().Pending, "task 0 waits for host-b")
	b := startBackendHost(t, d, "1", "host-b")
	start := time.Now()
	res := runDriver(t, d)
	require.True(t, res.OK)
	assert.Less(t, time.Since(start), 30*time.Second, "not after the locality wait")
	require.NoError(t, a.wait(t))
	require.NoError(t, b.wait(t))
	assert.Equal(t, "zero\n", b.out.String())
	assert.NotContains(t, a.out.String(), "zero")
}

// Killing a task kills what it started too.
func TestKilledTaskTakesItsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	d := newDriver(t, task.DriverConfig{Commands: []string{fmt.Sprintf("sleep 60 & echo $! > %s; wait", pidFile)}})
	b := startBackend(t, d, "0", "", 1)
	var child int
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(data), &child)
		return err == nil && child > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, syscall.Kill(child, 0), "the task's child runs")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the job is cancelled: its running attempts are killed
	res := d.Run(ctx)
	assert.False(t, res.OK)
	require.NoError(t, b.wait(t))
	require.Eventually(t, func() bool { return syscall.Kill(child, 0) != nil }, 5*time.Second, 10*time.Millisecond,
		"the task's child %d was killed with it", child)
}
