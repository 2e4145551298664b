package zkrecovery

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

func TestSelfFenceBound(t *testing.T) {
	for _, tc := range []struct {
		negotiated, configured, want time.Duration
	}{
		{3 * time.Second, 0, 2 * time.Second},
		{3 * time.Second, time.Second, time.Second},
		{3 * time.Second, 5 * time.Second, 2 * time.Second}, // capped below the session timeout
		{10 * time.Second, 0, 6666666666},
	} {
		assert.Equal(t, tc.want, selfFenceBound(tc.negotiated, tc.configured), "%+v", tc)
	}
}

func TestNewValidates(t *testing.T) {
	_, _, err := New(nil, "/spark", nil)
	assert.Error(t, err)
	for _, dir := range []string{"", "spark", "/spark/", "/a//b", "/a/../b"} {
		_, err := newPaths(dir)
		assert.ErrorIs(t, err, ErrBadDir, dir)
	}
	p, err := newPaths("/")
	require.NoError(t, err)
	assert.Equal(t, "/epoch", p.epoch)
}

func TestParseSeq(t *testing.T) {
	n, ok := parseSeq("_c_1b2c-latch-0000000042")
	assert.True(t, ok)
	assert.Equal(t, int64(42), n)
	_, ok = parseSeq("junk")
	assert.False(t, ok)
}

// TestSingleServer runs the scenarios that need one ZooKeeper server; they
// share it, each under its own directory.
func TestSingleServer(t *testing.T) {
	ens := zktest.Start(t, 1)
	addr := ens.Connect()

	t.Run("ElectionOrder", func(t *testing.T) { testElectionOrder(t, addr) })
	t.Run("SuccessiveElections", func(t *testing.T) { testSuccessiveElections(t, addr) })
	t.Run("GracefulResign", func(t *testing.T) { testGracefulResign(t, addr) })
	t.Run("SelfFenceFakeClock", func(t *testing.T) { testSelfFenceFakeClock(t, addr) })
	t.Run("ZombieLeader", func(t *testing.T) { testZombieLeader(t, ens.Servers()[0].Addr()) })
	t.Run("CorruptRecord", func(t *testing.T) { testCorruptRecord(t, addr) })
	t.Run("UnreadableRecord", func(t *testing.T) { testUnreadableRecord(t, addr) })
	t.Run("Records", func(t *testing.T) { testRecords(t, addr) })
	t.Run("OrphanCandidate", func(t *testing.T) { testOrphanCandidate(t, addr) })
	t.Run("ShortBlip", func(t *testing.T) { testShortBlip(t, ens.Servers()[0].Addr()) })
	t.Run("Confirm", func(t *testing.T) { testConfirm(t, addr) })
	t.Run("ConfirmSessionLost", func(t *testing.T) { testConfirmSessionLost(t, ens.Servers()[0].Addr()) })
	t.Run("WipedDirectory", func(t *testing.T) { testWipedDirectory(t, addr) })
}

// testShortBlip: a connection blip well within the self-fence bound does
// not cost the leader its term (unlike Spark's and Flink's defaults).
func testShortBlip(t *testing.T, serverAddr string) {
	dir := testDir()
	proxy := zktest.NewProxy(t, serverAddr)
	// go-zookeeper waits 1 s before it retries the same server (this client
	// knows only one), so the blip costs about 1.5 s of silence: use a 4 s
	// session (self-fence bound 2.7 s).
	m := startMasterOn(t, connectSession(t, proxy.Addr(), "m", 4*time.Second), dir, "m")
	waitLeader(t, 10*time.Second, m)
	_, epoch := m.isLeading()
	proxy.Cut()
	time.Sleep(400 * time.Millisecond) // the fault's duration, not a synchronisation
	proxy.Restore()
	ctx := context.Background()
	waitFor(t, 10*time.Second, "a write after the blip", func() bool { return m.st.PutApp(ctx, app("after-blip")) == nil })
	ok, e := m.isLeading()
	assert.True(t, ok)
	assert.Equal(t, epoch, e, "same term after a short blip")
	assert.Empty(t, func() []event {
		_, ok := m.lastEvent("revoked")
		if ok {
			return m.eventList()
		}
		return nil
	}())
}

// testOrphanCandidate: a candidate node of this session that the elector
// does not know (a create whose reply was lost) must not stall the election.
func testOrphanCandidate(t *testing.T, addr string) {
	dir := testDir()
	conn := connect(t, addr, "m")
	ctx := context.Background()
	require.NoError(t, conn.EnsurePath(ctx, dir+"/leader_election"))
	orphan, err := conn.CreateProtectedEphemeralSequential(ctx, dir+"/leader_election/latch-", []byte(`{"id":"m"}`))
	require.NoError(t, err)
	m := startMasterOn(t, conn, dir, "m")
	waitLeader(t, 10*time.Second, m)
	ok, _, err := conn.Exists(ctx, orphan)
	require.NoError(t, err)
	assert.False(t, ok, "orphan candidate node deleted")
}

func testElectionOrder(t *testing.T, addr string) {
	dir := testDir()
	ms := []*master{startMaster(t, addr, dir, "m0")}
	first := waitLeader(t, 10*time.Second, ms...)
	require.Equal(t, "m0", first.id)
	ms = append(ms, startMaster(t, addr, dir, "m1"), startMaster(t, addr, dir, "m2"))

	// Learn the candidates' order from ZooKeeper itself.
	obs := connect(t, addr, "observer")
	var order []string
	waitFor(t, 10*time.Second, "three candidate nodes", func() bool {
		names, _, err := obs.Children(context.Background(), dir+"/leader_election")
		if err != nil || len(names) != 3 {
			return false
		}
		byID := map[int64]string{}
		var seqs []int64
		for _, n := range names {
			seq, ok := parseSeq(n)
			require.True(t, ok, n)
			data, _, err := obs.Get(context.Background(), dir+"/leader_election/"+n)
			require.NoError(t, err)
			var id string
			if i := strings.Index(string(data), `"id":"`); i >= 0 {
				id = strings.SplitN(string(data[i+6:]), `"`, 2)[0]
			}
			byID[seq] = id
			seqs = append(seqs, seq)
		}
		order = nil
		for len(seqs) > 0 {
			lo := 0
			for i := range seqs {
				if seqs[i] < seqs[lo] {
					lo = i
				}
			}
			order = append(order, byID[seqs[lo]])
			seqs = append(seqs[:lo], seqs[lo+1:]...)
		}
		return true
	})
	require.Equal(t, "m0", order[0])
	leader := waitLeader(t, 5*time.Second, ms...)

	// Observers (sparkd status --zk) see the same order and leader.
	cands, err := Candidates(context.Background(), obs, dir)
	require.NoError(t, err)
	require.Len(t, cands, 3)
	for i, c := range cands {
		assert.Equal(t, order[i], c.ID)
		assert.NoError(t, c.Err)
	}
	waitFor(t, 5*time.Second, "observer sees m0 in office", func() bool {
		l, ok, err := CurrentLeader(context.Background(), obs, dir)
		return err == nil && ok && l.ID == "m0" && l.WebUIURL == "http://m0:8080"
	})
	require.Equal(t, "m0", leader.id)
	_, epoch0 := leader.isLeading()

	// Standbys know the leader, its URLs and epoch (leader hints).
	for _, m := range ms[1:] {
		m := m
		waitFor(t, 10*time.Second, m.id+" sees the leader", func() bool {
			l, ok := m.el.Leader()
			return ok && l.ID == "m0" && l.Epoch == epoch0 && l.RPCURL == "spark://m0:7077" && l.RESTURL == "spark://m0:6066"
		})
		// And a standby's store refuses writes.
		assert.ErrorIs(t, m.st.PutApp(context.Background(), app("x")), recovery.ErrNotLeader)
	}

	// Kill the leader's session: the next candidate by sequence takes over.
	byID := map[string]*master{}
	for _, m := range ms {
		byID[m.id] = m
	}
	leader.conn.Close()
	next := waitLeader(t, 10*time.Second, ms[1:]...)
	assert.Equal(t, order[1], next.id)
	_, epoch1 := next.isLeading()
	assert.Greater(t, epoch1, epoch0)
	ev, ok := leader.lastEvent("revoked")
	require.True(t, ok, "the killed leader reports revoked")
	assert.ErrorIs(t, ev.err, ErrSessionLost)

	// Once more: the last one.
	next.conn.Close()
	last := waitLeader(t, 10*time.Second, byID[order[2]])
	_, epoch2 := last.isLeading()
	assert.Greater(t, epoch2, epoch1)
}

func testSuccessiveElections(t *testing.T, addr string) {
	dir := testDir()
	ms := []*master{startMaster(t, addr, dir, "s0"), startMaster(t, addr, dir, "s1")}
	var last int64
	for i := 0; i < 20; i++ {
		leader := waitLeader(t, 10*time.Second, ms...)
		_, epoch := leader.isLeading()
		require.Greater(t, epoch, last, "election %d", i)
		last = epoch
		// Alternate between a graceful resign and a lost session.
		if i%2 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			require.NoError(t, leader.el.Resign(ctx))
			cancel()
		} else {
			leader.conn.Close()
		}
		leader.stop()
		var rest []*master
		for _, m := range ms {
			if m != leader {
				rest = append(rest, m)
			}
		}
		ms = append(rest, startMaster(t, addr, dir, "s"+string(rune('a'+i))))
	}
}

func testGracefulResign(t *testing.T, addr string) {
	dir := testDir()
	a := startMaster(t, addr, dir, "a")
	waitLeader(t, 10*time.Second, a)
	b := startMaster(t, addr, dir, "b")
	waitFor(t, 10*time.Second, "b to see a as leader", func() bool {
		l, ok := b.el.Leader()
		return ok && l.ID == "a"
	})
	ctx := context.Background()
	require.NoError(t, a.st.PutApp(ctx, app("before")))

	start := time.Now()
	require.NoError(t, a.el.Resign(ctx))
	waitLeader(t, 5*time.Second, b) // generous; the real figure is in BenchmarkResignFailover
	t.Logf("successor in office %v after Resign", time.Since(start))

	ev, ok := a.lastEvent("revoked")
	require.True(t, ok)
	assert.ErrorIs(t, ev.err, recovery.ErrResigned)
	assert.ErrorIs(t, a.st.PutApp(ctx, app("after")), recovery.ErrNotLeader)
	require.NoError(t, b.st.PutApp(ctx, app("by-b")))
	st, err := b.st.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, st.Apps, 2)
	// A resigned elector does not campaign again.
	names, _, err := b.conn.Children(ctx, dir+"/leader_election")
	require.NoError(t, err)
	assert.Len(t, names, 1)
}

// testSelfFenceFakeClock jumps the leader's clock past the self-fence bound:
// it must revoke, then (its session and node being intact) take office
// again with a higher epoch, in the same process.
func testSelfFenceFakeClock(t *testing.T, addr string) {
	dir := testDir()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a := startMaster(t, addr, dir, "a", WithClock(clock))
	waitLeader(t, 10*time.Second, a)
	_, e1 := a.isLeading()
	a.mu.Lock()
	termCtx := a.termCtx
	a.mu.Unlock()

	offset.Store(int64(time.Hour))
	waitFor(t, 5*time.Second, "self-fence", func() bool { _, ok := a.lastEvent("revoked"); return ok })
	ev, _ := a.lastEvent("revoked")
	assert.ErrorIs(t, ev.err, ErrSelfFenced)
	select {
	case <-termCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("term context not cancelled by the self-fence")
	}
	assert.ErrorIs(t, a.st.PutApp(context.Background(), app("x")), recovery.ErrNotLeader)

	offset.Store(0)
	waitFor(t, 10*time.Second, "re-election", func() bool { ok, e := a.isLeading(); return ok && e > e1 })
	require.NoError(t, a.st.PutApp(context.Background(), app("y")))
}

// testZombieLeader cuts the leader off ZooKeeper for longer than its
// session: it must self-fence before ZooKeeper expires the session (so
// before the successor is elected), and once the network is back its next
// write must fail with ErrFenced without harming the successor's data.
func testZombieLeader(t *testing.T, serverAddr string) {
	dir := testDir()
	proxy := zktest.NewProxy(t, serverAddr)
	old := startMaster(t, proxy.Addr(), dir, "old")
	waitLeader(t, 10*time.Second, old)
	succ := startMaster(t, serverAddr, dir, "new")
	waitFor(t, 10*time.Second, "standby ready", func() bool { l, ok := succ.el.Leader(); return ok && l.ID == "old" })
	ctx := context.Background()
	require.NoError(t, old.st.PutApp(ctx, app("shared")))
	_, oldEpoch := old.isLeading()

	cut := time.Now()
	proxy.Cut()
	waitLeader(t, 3*testSession+5*time.Second, succ)
	elected, _ := succ.lastEvent("elected")
	revoked, ok := old.lastEvent("revoked")
	require.True(t, ok, "the cut-off leader reports revoked")
	assert.ErrorIs(t, revoked.err, ErrSelfFenced)
	assert.True(t, revoked.at.Before(elected.at), "self-fenced at +%v, successor elected at +%v", revoked.at.Sub(cut), elected.at.Sub(cut))
	assert.Less(t, revoked.at.Sub(cut), testSession, "self-fence must come before the session timeout")
	t.Logf("self-fenced %v after the cut; successor elected %v after the cut", revoked.at.Sub(cut), elected.at.Sub(cut))
	assert.Greater(t, elected.epoch, oldEpoch)

	// The successor writes its state.
	over := app("shared")
	over.ClientURL = "http://successor:4040"
	require.NoError(t, succ.st.PutApp(ctx, over))
	require.NoError(t, succ.st.PutApp(ctx, app("new-only")))

	proxy.Restore()
	// The zombie's next write is refused with ErrFenced (once it can reach
	// ZooKeeper again to learn that); no attempt may succeed.
	waitFor(t, 15*time.Second, "zombie write fenced", func() bool {
		z := app("shared")
		z.ClientURL = "http://zombie:4040"
		err := old.st.PutApp(ctx, z)
		require.Error(t, err, "a zombie write must never succeed")
		return errors.Is(err, recovery.ErrFenced)
	})
	st, err := succ.st.Read(ctx)
	require.NoError(t, err)
	got := map[string]string{}
	for _, a := range st.Apps {
		got[a.ID] = a.ClientURL
	}
	assert.Equal(t, map[string]string{"shared": "http://successor:4040", "new-only": "http://driver-new-only:4040"}, got)

	// The zombie campaigns again in-process, as a standby of the successor.
	waitFor(t, 15*time.Second, "old master back as standby", func() bool {
		l, ok := old.el.Leader()
		return ok && l.ID == "new"
	})
	lead, _ := old.isLeading()
	assert.False(t, lead)
}

// testUnreadableRecord: a record whose ACL denies reading does not stop
// recovery (it used to fail every Read, so no master ever became ALIVE); it
// is reported and left in place.
func testUnreadableRecord(t *testing.T, addr string) {
	dir := testDir()
	m := startMaster(t, addr, dir, "m")
	waitLeader(t, 10*time.Second, m)
	ctx := context.Background()
	require.NoError(t, m.st.PutApp(ctx, app("ok1")))
	raw := connect(t, addr, "vandal")
	key := "app_app-20261120000000-0000"
	_, err := raw.Multi(ctx, &zk.CreateRequest{Path: dir + "/master_status/" + key, Data: []byte(`{"format":1}`),
		Acl: zk.WorldACL(zk.PermCreate | zk.PermDelete)}) // anyone may delete it, nobody may read it
	require.NoError(t, err)

	st, err := m.st.Read(ctx)
	require.NoError(t, err, "one unreadable record must not fail the whole read")
	require.Len(t, st.Apps, 1)
	assert.Equal(t, "ok1", st.Apps[0].ID)
	require.Len(t, st.Quarantined, 1)
	assert.Equal(t, key, st.Quarantined[0].Key)
	assert.Empty(t, st.Quarantined[0].MovedTo, "it cannot be moved")
	assert.ErrorIs(t, st.Quarantined[0].Err, zk.ErrNoAuth)
	ok, _, err := raw.Exists(ctx, dir+"/master_status/"+key)
	require.NoError(t, err)
	assert.True(t, ok, "never deleted")
}

func testCorruptRecord(t *testing.T, addr string) {
	dir := testDir()
	m := startMaster(t, addr, dir, "m")
	waitLeader(t, 10*time.Second, m)
	ctx := context.Background()
	for _, id := range []string{"a1", "a2", "a3"} {
		require.NoError(t, m.st.PutApp(ctx, app(id)))
	}
	require.NoError(t, m.st.PutWorker(ctx, recovery.WorkerRecord{ID: "w1", Host: "h1", Port: 7078, Cores: 8, MemoryMB: 1024}))
	require.NoError(t, m.st.PutDriver(ctx, recovery.DriverRecord{ID: "d1", Spec: driverSpec(), WorkerID: "w1"}))

	raw := connect(t, addr, "vandal")
	bad := map[string]string{
		"app_garbled":  "\x00\x01not json",
		"driver_nofmt": `{"id":"nofmt"}`,
		"junk":         "who wrote this",
	}
	for k, v := range bad {
		_, err := raw.Create(ctx, dir+"/master_status/"+k, []byte(v), 0)
		require.NoError(t, err)
	}
	// Also a record in the quarantine already, under the same key.
	_, err := raw.Create(ctx, dir+"/quarantine/app_garbled", []byte("older"), 0)
	require.NoError(t, err)

	st, err := m.st.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, st.Apps, 3)
	assert.Len(t, st.Workers, 1)
	require.Len(t, st.Drivers, 1)
	assert.Equal(t, driverSpec(), st.Drivers[0].Spec)
	require.Len(t, st.Quarantined, len(bad))
	for _, q := range st.Quarantined {
		assert.ErrorIs(t, q.Err, recovery.ErrBadRecord)
		data, _, err := raw.Get(ctx, q.MovedTo)
		require.NoError(t, err, "quarantined copy of %s", q.Key)
		assert.Equal(t, bad[q.Key], string(data))
		ok, _, err := raw.Exists(ctx, dir+"/master_status/"+q.Key)
		require.NoError(t, err)
		assert.False(t, ok, "%s moved out of master_status", q.Key)
	}
	// Nothing was deleted: the older quarantined copy is still there.
	qs, _, err := raw.Children(ctx, dir+"/quarantine")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"app_garbled", "app_garbled.1", "driver_nofmt", "junk"}, qs)

	// A second read is clean.
	st, err = m.st.Read(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Quarantined)
	assert.Len(t, st.Apps, 3)
}

func driverSpec() protocol.DriverSpec {
	return protocol.DriverSpec{Command: []string{"app.jar", "arg"}, Cores: 1, MemoryMB: 512, Supervise: true, Masters: "spark://m1:7077,m2:7077"}
}

func testRecords(t *testing.T, addr string) {
	dir := testDir()
	m := startMaster(t, addr, dir, "m")
	waitLeader(t, 10*time.Second, m)
	ctx := context.Background()

	// Overwrite, remove, remove again.
	require.NoError(t, m.st.PutApp(ctx, app("a")))
	upd := app("a")
	upd.State = "RUNNING"
	require.NoError(t, m.st.PutApp(ctx, upd))
	require.NoError(t, m.st.PutApp(ctx, app("b")))
	require.NoError(t, m.st.Remove(ctx, recovery.KindApp, "b"))
	require.NoError(t, m.st.Remove(ctx, recovery.KindApp, "b"))
	st, err := m.st.Read(ctx)
	require.NoError(t, err)
	require.Len(t, st.Apps, 1)
	assert.Equal(t, upd.State, st.Apps[0].State)

	// Size limit: just under is stored and read back; over is refused with a
	// clear error, before anything is sent.
	big := app("big")
	big.Desc.Name = strings.Repeat("x", recovery.MaxRecordSize-1024)
	require.NoError(t, m.st.PutApp(ctx, big))
	big.Desc.Name = strings.Repeat("x", recovery.MaxRecordSize)
	err = m.st.PutApp(ctx, big)
	require.ErrorIs(t, err, recovery.ErrTooLarge)
	assert.Contains(t, err.Error(), "jute.maxbuffer")
	st, err = m.st.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, st.Apps, 2)

	// A bad id is refused.
	assert.ErrorIs(t, m.st.PutApp(ctx, app("a/b")), recovery.ErrBadID)

	// Writes are fenced: bump the epoch behind the leader's back (as a new
	// leader would) and the next write fails with ErrFenced, ending the term.
	raw := connect(t, addr, "intruder")
	_, err = raw.Set(ctx, path.Join(dir, "epoch"), []byte(`{"epoch":999}`), -1)
	require.NoError(t, err)
	err = m.st.PutApp(ctx, app("c"))
	require.ErrorIs(t, err, recovery.ErrFenced)
	assert.ErrorIs(t, err, zk.ErrBadVersion)
	waitFor(t, 5*time.Second, "revoked after a fenced write", func() bool {
		ev, ok := m.lastEvent("revoked")
		return ok && errors.Is(ev.err, recovery.ErrFenced)
	})
	// It campaigns again and takes office with an epoch above the intruder's.
	waitFor(t, 10*time.Second, "re-election", func() bool { ok, e := m.isLeading(); return ok && e > 999 })
	require.NoError(t, m.st.PutApp(ctx, app("c")))
}
