package scalebench

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/testbin"
)

// A small fleet (20 workers, 10 applications, 15 executors, all through
// the fleetsim process) starts against two real masters and a real
// ZooKeeper, and after a crash of the leader every worker and application
// re-attaches to the standby, with every executor still running.
func TestSmallFleetCrashFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper, two masters and a fleet")
	}
	cluster.RequireDaemons(t)
	bin, err := BuildFleetsim(testbin.Root(), t.TempDir())
	require.NoError(t, err)
	const session = 2 * time.Second
	o := Options{N: 20, Apps: 10, Executors: 15, Session: session, WorkerTimeout: 20 * time.Second, Crash: true,
		FleetBin: bin}
	if testing.Verbose() {
		o.Log = os.Stderr
	}
	r, err := Run(t, o)
	require.NoError(t, err)

	assert.Greater(t, r.Cold.Workers, time.Duration(0))
	assert.GreaterOrEqual(t, r.Cold.PerWorker, 1.0, "every worker registered with the leader")
	assert.Greater(t, r.Leader.RSSBytes, int64(0))
	assert.Greater(t, r.Leader.FDs, 0)

	require.NotNil(t, r.Crash)
	f := r.Crash
	// Generous bounds: the CPU is shared with other tests.
	assert.Less(t, f.Alive, session+10*time.Second, "standby ALIVE")
	assert.Less(t, f.Attached, session+15*time.Second, "everything re-attached")
	assert.Greater(t, f.Workers, time.Duration(0))
	assert.Greater(t, f.Apps, time.Duration(0))
	assert.Equal(t, int64(15), f.ExecutorsRunning, "no executor lost by the failover")
	assert.Nil(t, r.Graceful)
}
