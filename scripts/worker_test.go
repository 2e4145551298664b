package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
)

// In a container start-worker.sh may be PID 1: with SPARK_NO_DAEMONIZE it
// must become the worker itself so that `docker stop`'s SIGTERM reaches it.
func TestStartWorkerForegroundExecsTheWorker(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	cmd := exec.Command(filepath.Join(h.dir, "scripts", "start-worker.sh"), "spark://m1:7077,m2:7077", "--cores", "2")
	cmd.Env = append(append([]string{}, h.env...), "SPARK_NO_DAEMONIZE=1", "SPARK_WORKER_WEBUI_PORT=9000")
	var out cluster.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so cleanup reaches whatever the script started
	// even when it fails to exec (as the old script did).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	pid := strconv.Itoa(cmd.Process.Pid)
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		return strings.HasPrefix(filepath.Base(strings.Split(string(data), "\x00")[0]), "sparkd")
	}, 10*time.Second, 20*time.Millisecond, "the script's process did not become sparkd:\n%s", out.String())
	data, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	assert.Equal(t, []string{"worker", "--webui-port", "9000", "spark://m1:7077,m2:7077", "--cores", "2"}, args[1:])
	// Signal only once the daemon is up (it prints after installing its
	// handlers), as docker stop would hit a running daemon.
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "started") }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		assert.NoError(t, err, "the worker exits 0 on SIGTERM:\n%s", out.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("SIGTERM did not reach the worker:\n%s", out.String())
	}
	assert.NoFileExists(t, filepath.Join(h.pidDir, "spark-tester-worker-1.pid"), "no pid file in the foreground")

	out2, code := h.run(t, []string{"SPARK_NO_DAEMONIZE=1", "SPARK_WORKER_INSTANCES=2"}, "start-worker.sh", "spark://m1:7077")
	assert.Equal(t, 1, code, out2)
	assert.Contains(t, out2, "SPARK_NO_DAEMONIZE runs one worker in the foreground")
}

// Instance i gets web UI port base+i-1 and port SPARK_WORKER_PORT+i-1.
func TestStartWorkerInstancesPorts(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	env := []string{"SPARK_WORKER_INSTANCES=2", "SPARK_WORKER_WEBUI_PORT=9100", "SPARK_WORKER_PORT=9200"}
	out, code := h.run(t, env, "start-worker.sh", "spark://m1:7077")
	require.Equal(t, 0, code, out)
	for i, want := range [][]string{
		{"worker", "--webui-port", "9100", "--port", "9200", "spark://m1:7077"},
		{"worker", "--webui-port", "9101", "--port", "9201", "spark://m1:7077"},
	} {
		pid := h.pid(t, "worker", i+1)
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		require.NoError(t, err)
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		assert.Equal(t, want, args[1:], "instance %d", i+1)
	}
	out, code = h.run(t, env, "stop-worker.sh")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, 2, strings.Count(out, "stopping sparkd worker"), out)
}
