package scripts_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/testbin"
)

// startIdleWorker starts a real worker through daemon.sh; its master is
// unreachable, so it keeps retrying registration (long enough for a test).
func startIdleWorker(t *testing.T, h *home, opts string) int {
	t.Helper()
	env := []string{"SPARK_WORKER_OPTS=" + opts}
	out, code := h.run(t, env, "daemon.sh", "start", "worker", "1", "--host", "127.0.0.1", "--port", "0", "--webui-port", "0",
		"-c", "1", "-m", "512m", "-d", filepath.Join(h.dir, "work"), "spark://127.0.0.1:1")
	require.Equal(t, 0, code, out)
	return h.pid(t, "worker", 1)
}

func workerLog(t *testing.T, h *home) string {
	host, _ := os.Hostname()
	data, _ := os.ReadFile(filepath.Join(h.logDir, "spark-tester-worker-1-"+host+".out"))
	return string(data)
}

// --block-until-exit returns once the decommissioned worker has exited (it
// exits by itself when it has no executors or drivers left).
func TestDecommissionWorkerBlockUntilExitReturns(t *testing.T) {
	h := newHome(t, testbin.Path(t))
	pid := startIdleWorker(t, h, "-Dspark.decommission.enabled=true")
	out, code := h.run(t, nil, "decommission-worker.sh", "--block-until-exit")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "sparkd worker 1 has exited")
	assert.False(t, alive(pid), "the worker is gone")
	assert.Contains(t, workerLog(t, h), "Decommissioned worker has no executors or drivers left; exiting")
}

// With decommissioning disabled the worker ignores SIGPWR; the script says
// so and returns non-zero at once instead of blocking forever.
func TestDecommissionWorkerDisabledSaysSoAndFails(t *testing.T) {
	h := newHome(t, testbin.Path(t))
	pid := startIdleWorker(t, h, "-Dspark.decommission.enabled=false")
	out, code := h.run(t, nil, "decommission-worker.sh", "--block-until-exit")
	assert.Equal(t, 3, code, out)
	assert.Contains(t, out, "decommissioning is disabled (spark.decommission.enabled=false); it keeps running")
	assert.NotContains(t, out, "has exited")
	assert.True(t, alive(pid), "the worker keeps running")

	out, code = h.run(t, nil, "daemon.sh", "decommission", "worker", "1")
	assert.Equal(t, 3, code, out)
	out, code = h.run(t, nil, "daemon.sh", "stop", "worker", "1")
	assert.Equal(t, 0, code, out)
}
