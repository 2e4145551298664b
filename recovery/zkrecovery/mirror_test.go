package zkrecovery

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/recovery"
)

func (s *Store) mirrorSettled(want int) bool {
	s.mir.mu.Lock()
	defer s.mir.mu.Unlock()
	return s.mir.valid && len(s.mir.dirty) == 0 && !s.mir.listDirty && len(s.mir.recs) == want
}

// startLeaderA starts a one-server ensemble and master "a", leading.
func startLeaderA(t *testing.T) (*zktest.Ensemble, string, *master) {
	ens := zktest.Start(t, 1)
	dir := testDir()
	a := startMaster(t, ens.Connect(), dir, "a")
	waitLeader(t, 10*time.Second, a)
	return ens, dir, a
}

func workerRec(id, host string) recovery.WorkerRecord {
	return recovery.WorkerRecord{ID: id, Host: host, Port: 7078, Cores: 2, MemoryMB: 1024}
}

func hostsOf(st recovery.State) map[string]string {
	out := map[string]string{}
	for _, w := range st.Workers {
		out[w.ID] = w.Host
	}
	return out
}

// TestStandbyMirror: a standby's mirror follows the leader's creates,
// updates and removes through watches; taking office reads only what
// changed since (not every record) and returns exactly what a full read
// returns, including writes the old leader made just before it resigned,
// whose watch events the standby had not yet acted on.
func TestStandbyMirror(t *testing.T) {
	ens, dir, a := startLeaderA(t)
	addr := ens.Connect()
	ctx := context.Background()
	b := startMaster(t, addr, dir, "b")

	const n = 300
	want := map[string]string{}
	var mu sync.Mutex
	put := func(id, host string) {
		require.NoError(t, a.st.PutWorker(ctx, workerRec(id, host)))
		mu.Lock()
		want[id] = host
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { put(fmt.Sprintf("w-%03d", i), "h0") })
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "standby mirror loaded", func() bool { return b.st.mirrorSettled(n) })
	loads := b.st.mir.loads.Load()

	// Updates, removes and creates while the standby watches.
	for i := 0; i < 50; i++ {
		put(fmt.Sprintf("w-%03d", i), "h1")
	}
	for i := 50; i < 80; i++ {
		require.NoError(t, a.st.Remove(ctx, recovery.KindWorker, fmt.Sprintf("w-%03d", i)))
		delete(want, fmt.Sprintf("w-%03d", i))
	}
	for i := n; i < n+20; i++ {
		put(fmt.Sprintf("w-%03d", i), "h2")
	}
	waitFor(t, 10*time.Second, "standby mirror caught up", func() bool { return b.st.mirrorSettled(len(want)) })
	assert.Equal(t, loads, b.st.mir.loads.Load(), "changes are applied, not reloaded")

	// The last writes land just before the resignation: the standby has
	// their events at most, not their data.
	put("w-000", "last")
	put("w-new", "last")
	require.NoError(t, a.st.Remove(ctx, recovery.KindWorker, "w-001"))
	delete(want, "w-001")
	reads := b.st.mir.reads.Load()
	a.stop()
	waitLeader(t, 15*time.Second, b)
	st, err := b.st.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, hostsOf(st))
	took := b.st.mir.reads.Load() - reads
	t.Logf("taking office over %d records re-read %d of them", len(want), took)
	assert.Less(t, took, int64(20), "taking office reads what changed, not every record")
	assert.Equal(t, loads, b.st.mir.loads.Load(), "no full reload at takeover")

	// A full read of another store agrees.
	c := startMaster(t, addr, dir, "c", WithoutMirror())
	full, err := c.st.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, hostsOf(full))

	// The leader keeps no mirror.
	b.st.mir.mu.Lock()
	assert.Nil(t, b.st.mir.recs)
	b.st.mir.mu.Unlock()
}

// TestStandbyMirrorReloadsAfterDisconnect: after a lost connection (the
// session survives, but the library re-arms watches later and out of order
// with other replies) the mirror is not trusted: it is loaded again, and a
// change made while the standby was cut off is in it.
func TestStandbyMirrorReloadsAfterDisconnect(t *testing.T) {
	ens, dir, a := startLeaderA(t)
	ctx := context.Background()
	proxy := zktest.NewProxy(t, ens.Servers()[0].Addr())
	b := startMasterOn(t, connectSession(t, proxy.Addr(), "b", 6*time.Second), dir, "b")
	for i := range 20 {
		require.NoError(t, a.st.PutWorker(ctx, workerRec(fmt.Sprintf("w-%02d", i), "h0")))
	}
	waitFor(t, 10*time.Second, "standby mirror loaded", func() bool { return b.st.mirrorSettled(20) })
	loads := b.st.mir.loads.Load()

	proxy.Cut()
	waitFor(t, 10*time.Second, "the mirror distrusted", func() bool {
		b.st.mir.mu.Lock()
		defer b.st.mir.mu.Unlock()
		return !b.st.mir.valid
	})
	require.NoError(t, a.st.PutWorker(ctx, workerRec("w-00", "changed-while-cut")))
	proxy.Restore()
	waitFor(t, 20*time.Second, "mirror loaded again", func() bool {
		return b.st.mir.loads.Load() > loads && b.st.mirrorSettled(20)
	})
	b.st.mir.mu.Lock()
	got := b.st.mir.recs["worker_w-00"].rec.Workers
	b.st.mir.mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, "changed-while-cut", got[0].Host)
}
