package master

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sparkd/protocol"
	"sparkd/recovery"
)

// A driver whose assignment to a worker could not be persisted (a
// ZooKeeper timeout or connection loss, not a fence) must not stay RUNNING
// with no process behind it: it waits again and is launched once the store
// answers.
func TestDriverAssignmentPersistFailureRetries(t *testing.T) {
	old := driverLaunchRetry
	driverLaunchRetry = 50 * time.Millisecond
	t.Cleanup(func() { driverLaunchRetry = old })

	tm := startMaster(t, testConfig(), nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	var failures atomic.Int32
	tm.store.mu.Lock()
	tm.store.putDriver = func(r recovery.DriverRecord) error {
		if r.WorkerID != "" && failures.Add(1) <= 2 {
			return errors.New("zkutil: multi: zk: connection closed")
		}
		return nil
	}
	tm.store.mu.Unlock()

	id, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	require.NoError(t, err, "the submission itself is persisted")
	w := newPeer(t, nil)
	tm.registerWorker(t, "worker-a", w, 4, 4096)

	eventually(t, "driver launched after the store recovered", func() bool { return len(w.got(protocol.PathLaunchDriver)) == 1 })
	assert.GreaterOrEqual(t, failures.Load(), int32(3))
	launched := decodeAs[protocol.LaunchDriver](t, w.got(protocol.PathLaunchDriver)[0])
	assert.Equal(t, id, launched.DriverID)
	eventually(t, "assignment persisted", func() bool {
		tm.store.mu.Lock()
		defer tm.store.mu.Unlock()
		return tm.store.drivers[id].WorkerID == "worker-a"
	})
	v := tm.View()
	require.Len(t, v.ActiveDrivers, 1)
	assert.Equal(t, protocol.DriverRunning, v.ActiveDrivers[0].State)
	require.Len(t, v.Workers, 1)
	assert.Equal(t, 1, v.Workers[0].CoresUsed, "the failed assignments released their cores")
}
