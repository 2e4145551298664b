package zkrecovery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// TestGroupCommit: concurrent writes share multis (far fewer transactions
// than writes), every one of them is durable when it returns, a group in
// which one write fails (a Create of a record another master wrote behind
// this one's back) still lands every write, and a deposed leader's group is
// refused as a whole.
func TestGroupCommit(t *testing.T) {
	ens := zktest.Start(t, 1)
	addr := ens.Connect()
	dir := testDir()
	var multis atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := zkutil.Connect(ctx, zkutil.Config{
		Connect: addr, SessionTimeout: testSession, CallTimeout: 5 * time.Second,
		Logger: testLog(t, "m").WithField("component", "zkutil"),
		ObserveCall: func(op string, _ time.Duration, _ error) {
			if op == "multi" {
				multis.Add(1)
			}
		},
	})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	m := startMasterOn(t, conn, dir, "m")
	waitLeader(t, 10*time.Second, m)

	const n = 400
	write := func(prefix string) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = m.st.PutWorker(ctx, recovery.WorkerRecord{ID: fmt.Sprintf("%s-%03d", prefix, i), Host: "h", Port: 1 + i, Cores: 2, MemoryMB: 1024})
			})
		}
		wg.Wait()
		return errs
	}
	before := multis.Load()
	for i, err := range write("worker-a") {
		require.NoError(t, err, "write %d", i)
	}
	used := multis.Load() - before
	t.Logf("%d concurrent writes took %d multis", n, used)
	assert.Less(t, used, int64(n/2), "concurrent writes are grouped")

	// Another connection writes records this store believes absent: each
	// Create of them fails, which fails its group; every write still lands.
	other := connect(t, addr, "other")
	for i := 0; i < n; i += 10 {
		_, data, err := recovery.Encode(&recovery.WorkerRecord{ID: fmt.Sprintf("worker-b-%03d", i), Host: "stale", Port: 1, Cores: 1, MemoryMB: 1})
		require.NoError(t, err)
		_, err = other.Create(ctx, fmt.Sprintf("%s/master_status/worker_worker-b-%03d", dir, i), data, 0)
		require.NoError(t, err)
	}
	for i, err := range write("worker-b") {
		require.NoError(t, err, "write %d", i)
	}
	st, err := m.st.Read(ctx)
	require.NoError(t, err)
	hosts := map[string]string{}
	for _, w := range st.Workers {
		hosts[w.ID] = w.Host
	}
	for i := range n {
		for _, p := range []string{"worker-a", "worker-b"} {
			id := fmt.Sprintf("%s-%03d", p, i)
			assert.Equal(t, "h", hosts[id], "record %s is the one written last", id)
		}
	}

	// A successor takes over; the deposed store's concurrent writes are all
	// fenced, and none of them lands.
	old := m
	_, oldEpoch := old.isLeading()
	succ := startMaster(t, addr, dir, "succ")
	waitFor(t, 10*time.Second, "standby ready", func() bool { l, ok := succ.el.Leader(); return ok && l.ID == "m" })
	// Bump the epoch behind the old leader's back, as a successor's
	// election does, without ending its session: the zombie case.
	_, stat, err := other.Get(ctx, dir+"/epoch")
	require.NoError(t, err)
	_, err = other.Set(ctx, dir+"/epoch", []byte(fmt.Sprint(oldEpoch+1)), stat.Version)
	require.NoError(t, err)
	for i, err := range write("zombie") {
		assert.ErrorIs(t, err, recovery.ErrFenced, "zombie write %d", i)
	}
	names, _, err := other.Children(ctx, dir+"/master_status")
	require.NoError(t, err)
	for _, name := range names {
		assert.NotContains(t, name, "zombie")
	}
}
