package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/worker"
)

// startLocalCluster runs an in-process NONE-mode master (RPC and REST, no
// web UI) and one worker with the given cores; both stop when the test ends.
func startLocalCluster(t *testing.T, cores int) *master.Master {
	t.Helper()
	mc := master.DefaultConfig()
	mc.Host, mc.Port, mc.WebUIPort, mc.RESTPort = "127.0.0.1", 0, -1, 0
	elector, store := recovery.NewNone()
	m, err := master.New(mc, elector, store, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	mdone := make(chan error, 1)
	go func() { mdone <- m.Run(ctx) }()

	wc := worker.Defaults()
	wc.Masters = []string{m.Addr()}
	wc.Host, wc.Port, wc.WebUIPort = "127.0.0.1", 0, 0
	wc.Cores, wc.MemoryMB, wc.WorkDir = cores, 2048, t.TempDir()
	w, err := worker.New(wc, quietEntry())
	require.NoError(t, err)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for _, done := range []chan error{wdone, mdone} {
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("the local cluster did not stop")
			}
		}
	})
	waitFor(t, 20*time.Second, func() bool { _, ok := w.Master(); return ok }, "the worker did not register")
	return m
}

// An application no worker can fit: after spark.starvation.timeout submit
// prints Spark's warning and the master's reason, and repeats it every
// timeout, instead of waiting silently after "registered".
func TestSubmitWarnsWhenNoExecutorIsGranted(t *testing.T) {
	m := startLocalCluster(t, 8)
	o, code, done := parseSubmit([]string{"--master", m.URL(), "--executor-cores", "10", "--wait", "10s",
		"--conf", "spark.starvation.timeout=300ms", "--exec", "--", "true"}, &strings.Builder{}, func(string) string { return "" })
	require.False(t, done, "parse: code %d", code)
	var stdout, stderr cluster.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := make(chan int, 1)
	go func() { rc <- runExecApp(ctx, o, &stdout, &stderr, quietEntry()) }()

	// The reason comes with the heartbeats (every 2 s), so it may miss the
	// first warnings of this short timeout.
	waitFor(t, 20*time.Second, func() bool {
		s := stdout.String()
		return strings.Count(s, starvationWarning) >= 2 && strings.Contains(s, "the master says: ")
	}, "no repeated starvation warning with the master's reason")
	out := stdout.String()
	assert.Contains(t, out, "registered with master")
	assert.Contains(t, out, "Initial job has not accepted any resources; check your cluster UI to ensure that workers are registered and have sufficient resources")
	assert.Contains(t, out, "the master says: each executor needs 10 cores but the largest worker has 8")
	cancel()
	select {
	case code := <-rc:
		assert.Equal(t, 130, code)
	case <-time.After(20 * time.Second):
		t.Fatal("submit did not stop")
	}
}

func TestSubmitStarvationTimeoutIsValidated(t *testing.T) {
	code, _, stderr := runCmd(t, submit, "--master", "spark://a:1", "--conf", "spark.starvation.timeout=0", "--exec", "--", "true")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `spark.starvation.timeout="0": want a positive duration`)
}

// A cluster-mode driver that no worker can fit: --status shows why.
func TestSubmitStatusShowsWhyADriverWaits(t *testing.T) {
	m := startLocalCluster(t, 1)
	t.Setenv("SPARK_CONF_DIR", t.TempDir())
	code, stdout, stderr := runCmd(t, submit, "--master", m.URL(), "--deploy-mode", "cluster", "--driver-cores", "4",
		"--wait", "10s", "/bin/true")
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)
	require.NotEmpty(t, id)
	code, stdout, stderr = runCmd(t, submit, "--master", m.URL(), "--status", id, "--wait", "10s")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "driverState: SUBMITTED")
	assert.Contains(t, stdout, "waitingReason: the driver needs 4 cores but no ALIVE worker has that many free (most free: 1)")
}
