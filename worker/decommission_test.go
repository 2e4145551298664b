package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A decommissioned worker keeps running while it has executors or drivers,
// and exits (Run returns nil, after reporting their ends and unregistering)
// once the last one is done, as Spark's does.
func TestDecommissionedWorkerExitsWhenItsWorkIsDone(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.DecommissionEnabled = true
	var logs syncBuf
	l := logrus.New()
	l.SetOutput(&logs)
	w, err := newWorker(cfg, logrus.NewEntry(l), realClock{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = w.Close()
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	eventually(t, 10*time.Second, func() bool { _, ok := w.Master(); return ok }, "not registered")

	stop := t.TempDir()
	waitFor := func(name string) string {
		return `while [ ! -f '` + filepath.Join(stop, name) + `' ]; do sleep 0.02; done`
	}
	code, _ := post(t, w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-7", 0, waitFor("exec")))
	require.Equal(t, 200, code)
	code, body := post(t, w, protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: protocol.Stamp{Epoch: 1, MasterURL: m.sparkURL()},
		DriverID: "driver-7", Desc: protocol.DriverSpec{Command: []string{"sh", "-c", waitFor("driver")}, Cores: 1, MemoryMB: 256}})
	require.Equal(t, 200, code, body.Error)
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-7", 0, protocol.ExecutorRunning) }, "executor not running")

	require.NoError(t, w.Decommission(context.Background()))
	notExited := func(what string) {
		t.Helper()
		select {
		case err := <-errc:
			t.Fatalf("the worker exited (%v) while %s still ran", err, what)
		default:
		}
	}
	notExited("an executor and a driver")

	require.NoError(t, os.WriteFile(filepath.Join(stop, "exec"), nil, 0o644))
	eventually(t, 10*time.Second, func() bool { return m.hasExecutorState("app-7", 0, protocol.ExecutorExited) }, "executor not EXITED")
	eventually(t, 10*time.Second, func() bool { return len(w.schedulerState().Executors) == 0 }, "executor still listed")
	notExited("a driver")
	assert.NotContains(t, logs.String(), "exiting")

	require.NoError(t, os.WriteFile(filepath.Join(stop, "driver"), nil, 0o644))
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the decommissioned worker did not exit after its last driver finished")
	}
	assert.Contains(t, logs.String(), "Decommissioned worker has no executors or drivers left; exiting")
	states := m.driverStates()
	require.NotEmpty(t, states)
	assert.Equal(t, protocol.DriverFinished, states[len(states)-1].State, "the driver's end is reported before the worker leaves")
	assert.Equal(t, 1, m.count("unregister"))
}

// An idle worker exits at once when decommissioned; a worker with
// decommissioning disabled refuses and keeps running.
func TestDecommissionIdleWorkerExitsAndDisabledOneStays(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	cfg.DecommissionEnabled = true
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(context.Background()) }()
	t.Cleanup(func() { _ = w.Close() })
	eventually(t, 10*time.Second, func() bool { _, ok := w.Master(); return ok }, "not registered")
	require.NoError(t, w.Decommission(context.Background()))
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("an idle decommissioned worker did not exit")
	}
	// At least once: a registration that completes concurrently repeats it
	// (the message is idempotent).
	assert.GreaterOrEqual(t, m.count("decommission"), 1, "the master hears of the decommission before the worker leaves")

	r := startWorker(t, testConfig(t, m.sparkURL()), nil)
	r.waitRegistered(t, m.sparkURL())
	assert.ErrorIs(t, r.w.Decommission(context.Background()), ErrDecommissionDisabled)
	select {
	case err := <-r.errc:
		t.Fatalf("a worker with decommissioning disabled exited: %v", err)
	default:
	}
	assert.False(t, r.w.Decommissioned())
}

// The worker's lines read as Spark's: the start line names host:port (not a
// URL) and a finished executor has no empty "()".
func TestWorkerLogLinesReadLikeSpark(t *testing.T) {
	m := newFakeMaster(t, 1)
	cfg := testConfig(t, m.sparkURL())
	var logs syncBuf
	l := logrus.New()
	l.SetOutput(&logs)
	w, err := newWorker(cfg, logrus.NewEntry(l), realClock{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-errc
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	eventually(t, 10*time.Second, func() bool { _, ok := w.Master(); return ok }, "not registered")
	assert.Contains(t, logs.String(), fmt.Sprintf(`msg="Starting Spark worker 127.0.0.1:%d with 4 cores, 4.0 GiB RAM"`, w.port))

	for i, script := range []string{"exit 0", "exit 3"} {
		code, _ := post(t, w, protocol.PathLaunchExecutor, launchMsg(m, 1, "app-8", i, script))
		require.Equal(t, 200, code)
	}
	eventually(t, 10*time.Second, func() bool {
		return m.hasExecutorState("app-8", 0, protocol.ExecutorExited) && m.hasExecutorState("app-8", 1, protocol.ExecutorFailed)
	}, "executors not finished")
	assert.Contains(t, logs.String(), `msg="Executor app-8/0 finished with state EXITED exitStatus 0"`)
	assert.Contains(t, logs.String(), `msg="Executor app-8/1 finished with state FAILED message Command exited with code 3 exitStatus 3"`)
	assert.NotContains(t, logs.String(), "()")
}
