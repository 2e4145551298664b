package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/protocol"
)

// workerFakeMaster accepts registrations and records what a worker sends.
type workerFakeMaster struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]int
}

func newWorkerFakeMaster(t *testing.T) *workerFakeMaster {
	m := &workerFakeMaster{seen: map[string]int{}}
	r := mux.NewRouter()
	for kind, path := range map[string]string{
		"register": protocol.PathRegisterWorker, "heartbeat": protocol.PathWorkerHeartbeat,
		"latest": protocol.PathWorkerLatestState, "decommission": protocol.PathWorkerDecommission,
		"unregister": protocol.PathWorkerUnregister, "executor": protocol.PathExecutorState,
	} {
		r.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			m.mu.Lock()
			m.seen[kind]++
			m.mu.Unlock()
			protocol.WriteJSON(w, 200, protocol.RegisteredWorker{Stamp: protocol.Stamp{Epoch: 1, MasterURL: "spark://" + m.addr()}})
		})
	}
	m.srv = httptest.NewServer(r)
	t.Cleanup(m.srv.Close)
	return m
}

func (m *workerFakeMaster) addr() string { return strings.TrimPrefix(m.srv.URL, "http://") }

func (m *workerFakeMaster) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[kind]
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", within, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startWorkerProc starts `sparkd worker` as a real process.
func startWorkerProc(t *testing.T, env []string, args ...string) (*exec.Cmd, *cluster.SyncBuffer, chan error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(testbin.Path(t), append([]string{"worker"}, args...)...)
	cmd.Env = append(os.Environ(), "SPARK_HOME="+home, "SPARK_CONF_DIR="+home+"/conf")
	cmd.Env = append(cmd.Env, env...)
	out := &cluster.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
	return cmd, out, done
}

func exitCode(t *testing.T, done chan error, within time.Duration) int {
	t.Helper()
	select {
	case err := <-done:
		done <- err // let the cleanup see it
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		return ee.ExitCode()
	case <-time.After(within):
		t.Fatalf("process did not exit within %v", within)
		return -1
	}
}

// SIGHUP is ignored, SIGPWR is ignored with a warning while decommissioning
// is disabled (the default), SIGTERM unregisters and exits 0.
func TestWorkerProcessSignals(t *testing.T) {
	m := newWorkerFakeMaster(t)
	cmd, out, done := startWorkerProc(t, nil,
		"--host", "127.0.0.1", "--webui-port", "0", "--cores", "2", "--memory", "1g", "spark://"+m.addr())
	waitFor(t, 20*time.Second, func() bool { return m.count("register") == 1 && m.count("latest") == 1 }, "no registration: "+out.String())
	assert.Contains(t, out.String(), "INFO Worker: Successfully registered with master spark://"+m.addr())

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.NoError(t, cmd.Process.Signal(syscall.SIGPWR))
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(out.String(), "WARN Worker: Received decommission request, but decommission is disabled (spark.decommission.enabled=false)")
	}, "SIGPWR not refused: "+out.String())
	assert.Equal(t, 0, m.count("decommission"))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, exitCode(t, done, 20*time.Second), out.String())
	assert.Equal(t, 1, m.count("unregister"))
}

// With spark.decommission.enabled, SIGPWR decommissions the worker; with no
// executor or driver left it exits 0 on its own, as Spark's worker does.
func TestWorkerProcessExitsAfterDecommission(t *testing.T) {
	m := newWorkerFakeMaster(t)
	cmd, out, done := startWorkerProc(t, []string{"SPARK_WORKER_OPTS=-Dspark.decommission.enabled=true"},
		"--host", "127.0.0.1", "--webui-port", "0", "--cores", "2", "--memory", "1g", "spark://"+m.addr())
	waitFor(t, 20*time.Second, func() bool { return m.count("register") == 1 && m.count("latest") == 1 }, "no registration: "+out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGPWR))
	assert.Equal(t, 0, exitCode(t, done, 20*time.Second), out.String())
	assert.Equal(t, 1, m.count("decommission"))
	assert.Equal(t, 1, m.count("unregister"))
	assert.Contains(t, out.String(), "INFO Worker: Decommissioned worker has no executors or drivers left; exiting")
}

// With no reachable master the worker gives up with Spark's message and exit 1.
func TestWorkerProcessGivesUp(t *testing.T) {
	_, out, done := startWorkerProc(t, []string{"SPARK_WORKER_OPTS=-Dspark.worker.initialRegistrationRetries=1 " +
		"-Dspark.worker.maxRegistrationRetries=2 -Dspark.worker.registration.initialInterval=50ms -Dspark.worker.registration.maxInterval=100ms"},
		"-h", "127.0.0.1", "--webui-port", "0", "-c", "1", "-m", "512m", "spark://127.0.0.1:1")
	assert.Equal(t, 1, exitCode(t, done, 20*time.Second))
	assert.Contains(t, out.String(), "ERROR Worker: All masters are unresponsive! Giving up.")
}

func TestWorkerCommandBadInput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, runWorker([]string{"--no-such-flag"}, &stdout, &stderr))
	stderr.Reset()
	t.Setenv("SPARK_HOME", t.TempDir())
	assert.Equal(t, 1, runWorker([]string{"--cores", "lots", "spark://m:7077"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "lots")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr.String()), "\n")+1, "one line: %q", stderr.String())
	stderr.Reset()
	assert.Equal(t, 1, runWorker([]string{"--cores", "1"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "master")
}

func TestWorkerConfigMapping(t *testing.T) {
	wc := conf.Worker{Masters: []string{"a:7077", "b:7077"}, Host: "h", Port: 5, WebUIPort: 6, Cores: 3, MemoryMB: 2048,
		WorkDir: "/w", Timeout: 20 * time.Second, CleanupEnabled: false, AuthSecret: "s3",
		InitialRegistrationRetries: 2, MaxRegistrationRetries: 4, RegistrationInitialInterval: time.Second,
		RegistrationMaxInterval: 2 * time.Second, DecommissionEnabled: true}
	c := workerConfig(wc)
	assert.Equal(t, wc.Masters, c.Masters)
	assert.Equal(t, 3, c.Cores)
	assert.Equal(t, 2048, c.MemoryMB)
	assert.False(t, c.CleanupEnabled, "false must stay false")
	assert.Empty(t, c.AuthSecret, "the secret is used only with spark.authenticate=true")
	assert.True(t, c.DecommissionEnabled)
	assert.Equal(t, 4, c.MaxRegistrationRetries)
	wc.AuthEnabled = true
	assert.Equal(t, "s3", workerConfig(wc).AuthSecret)

	home := t.TempDir()
	t.Setenv("SPARK_HOME", home)
	t.Setenv("SPARK_CONF_DIR", home+"/conf")
	var stdout, stderr bytes.Buffer
	code := runWorker([]string{"--print-config", "-c", "3", "-m", "2g", "-d", home + "/wd", "spark://a:7077,b"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "spark.master")
}
