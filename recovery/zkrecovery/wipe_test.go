package zkrecovery

import (
	"context"
	"errors"
	"fmt"
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/zkutil"
)

// deleteAll removes p and everything under it, as zkCli's `deleteall`. A
// master may create nodes meanwhile (a candidate campaigning again): then
// it goes again, until ctx ends.
func deleteAll(ctx context.Context, c *zkutil.Conn, p string) error {
	for {
		err := deleteTree(ctx, c, p)
		if !errors.Is(err, zk.ErrNotEmpty) || ctx.Err() != nil {
			return err
		}
	}
}

func deleteTree(ctx context.Context, c *zkutil.Conn, p string) error {
	kids, _, err := c.Children(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := deleteTree(ctx, c, path.Join(p, k)); err != nil {
			return err
		}
	}
	if err := c.Delete(ctx, p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}

// Issue 15, item 6: after `deleteall` of spark.deploy.zookeeper.dir, the
// next leader's epoch is still above every epoch before (workers, which
// keep the highest epoch they have seen, accept it), and the deposed
// leader's writes stay fenced.
func testWipedDirectory(t *testing.T, addr string) {
	dir := testDir()
	admin := connect(t, addr, "admin")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A few terms, so that the epoch is past what a fresh directory's
	// version counter gives.
	for i := range 3 {
		m := startMaster(t, addr, dir, fmt.Sprintf("old%d", i))
		waitLeader(t, 10*time.Second, m)
		require.NoError(t, m.el.Resign(ctx))
		m.stop()
	}
	ms := []*master{startMaster(t, addr, dir, "w0"), startMaster(t, addr, dir, "w1")}
	leader := waitLeader(t, 10*time.Second, ms...)
	_, before := leader.isLeading()

	// Wiped while a leader is in office: it loses its candidate node; its
	// store refuses to write, and whoever leads next opens a higher epoch.
	require.NoError(t, deleteAll(ctx, admin, dir))
	assert.Error(t, leader.st.PutApp(ctx, app("after-wipe")), "a write of the deposed term")
	waitFor(t, 20*time.Second, "a leader after the wipe, at a higher epoch", func() bool {
		for _, m := range ms {
			if ok, e := m.isLeading(); ok && e > before {
				return true
			}
		}
		return false
	})
	next := waitLeader(t, 10*time.Second, ms...)
	_, after := next.isLeading()
	assert.Greater(t, after, before)
	require.NoError(t, next.st.PutApp(ctx, app("a1")), "the new term writes")

	// Wiped with every master stopped, then a master restarted, as in the
	// issue: the fresh epoch znode still opens a higher epoch.
	for _, m := range ms {
		m.stop()
	}
	require.NoError(t, deleteAll(ctx, admin, dir))
	restarted := startMaster(t, addr, dir, "w2")
	waitLeader(t, 20*time.Second, restarted)
	_, again := restarted.isLeading()
	assert.Greater(t, again, after)
	st, err := restarted.st.Read(ctx)
	require.NoError(t, err)
	assert.True(t, st.Empty())

	// The floor lifts epochs above those of a rebuilt ensemble.
	restarted.stop()
	floored := startMaster(t, addr, dir, "w3", WithEpochFloor(again+1_000_000))
	waitLeader(t, 20*time.Second, floored)
	_, e := floored.isLeading()
	assert.GreaterOrEqual(t, e, again+1_000_000)
	assert.Less(t, e, again+1_000_002)
	assert.Error(t, restarted.st.PutApp(ctx, app("x")), "a stopped master's store")
	require.NoError(t, floored.st.PutApp(ctx, app("a2")))
	rd, err := floored.st.Read(ctx)
	require.NoError(t, err)
	require.Len(t, rd.Apps, 1)
}

func TestNextEpoch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ed    epochData
		st    zk.Stat
		floor int64
		want  int64
	}{
		{"fresh znode", epochData{}, zk.Stat{Mzxid: 41}, 0, 42},
		{"above the last change's zxid", epochData{Epoch: 30}, zk.Stat{Version: 3, Mzxid: 57}, 0, 58},
		{"stored epoch above the zxid (a floor before)", epochData{Epoch: 900}, zk.Stat{Mzxid: 57}, 0, 901},
		{"not in the previous epoch's id block", epochData{Epoch: 38}, zk.Stat{Mzxid: 57}, 0, 59},
		{"floor", epochData{Epoch: 12}, zk.Stat{Mzxid: 57}, 1000, 1000},
		{"floor passed", epochData{Epoch: 1000}, zk.Stat{Mzxid: 2000}, 1000, 2001},
		{"version-based epochs of an older sparkd", epochData{Epoch: 7}, zk.Stat{Version: 7, Mzxid: 5}, 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, nextEpoch(tc.ed, &tc.st, tc.floor))
		})
	}
}
