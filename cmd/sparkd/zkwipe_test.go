package main

import (
	"context"
	"errors"
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/zkutil"
)

// zkDeleteAll removes p and everything under it, as zkCli's `deleteall`,
// going again while something creates nodes under it meanwhile.
func zkDeleteAll(ctx context.Context, c *zkutil.Conn, p string) error {
	var del func(p string) error
	del = func(p string) error {
		kids, _, err := c.Children(ctx, p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := del(path.Join(p, k)); err != nil {
				return err
			}
		}
		if err := c.Delete(ctx, p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		return nil
	}
	for {
		err := del(p)
		if !errors.Is(err, zk.ErrNotEmpty) || ctx.Err() != nil {
			return err
		}
	}
}

// waitAliveAbove waits until master 0 is ALIVE at an epoch above above.
func waitAliveAbove(t *testing.T, c *cluster.Cluster, above int64) protocol.LeaderInfo {
	t.Helper()
	var got protocol.LeaderInfo
	haWait(t, 30*time.Second, "master 0 never became ALIVE at a new epoch", func() bool {
		li, err := c.LeaderInfo(0)
		got = li
		return err == nil && li.State == protocol.MasterAlive && li.Epoch > above
	})
	return got
}

// Issue 15, item 6: after `deleteall` of spark.deploy.zookeeper.dir and a
// restart of the masters, the new leader's epoch is above the one the
// workers have seen, so they register with it instead of refusing it (409)
// until they give up.
func TestHAFaultWipedZooKeeperDirectory(t *testing.T) {
	requireZK(t)
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 2, ZooKeeper: 1, SessionTimeout: 2 * time.Second,
		WorkerTimeout: 8 * time.Second})
	_, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	// Two more terms, so that the workers have seen an epoch above what a
	// fresh epoch znode's version gives.
	for range 2 {
		c.RestartMaster(0)
		li = waitAliveAbove(t, c, li.Epoch)
		require.NoError(t, c.WaitWorkers(2, 30*time.Second))
	}
	t.Logf("epoch before the wipe: %d", li.Epoch)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := zkutil.Connect(ctx, zkutil.Config{Connect: c.ZK.Connect(), SessionTimeout: 4 * time.Second})
	require.NoError(t, err)
	defer conn.Close()

	c.Masters[0].Kill()
	require.NoError(t, zkDeleteAll(ctx, conn, c.ZKDir))
	c.RestartMaster(0)
	got := waitAliveAbove(t, c, 0)
	assert.Greater(t, got.Epoch, li.Epoch, "the new leader's epoch is above the wiped directory's")
	require.NoError(t, c.WaitWorkers(2, 30*time.Second), "the workers register with the new leader")
	for _, w := range c.Workers {
		// The worker's own view: it follows the new leader at its epoch.
		haWait(t, 30*time.Second, w.Name+" never accepted the new leader", func() bool {
			doc, err := getWorkerJSON(w.UIPort)
			return err == nil && doc.State == "ALIVE" && doc.Epoch == got.Epoch && doc.MasterURL == c.Masters[0].URL()
		})
		assert.True(t, w.Running(), "worker %s still runs", w.Name)
		assert.False(t, w.LogContains("All masters are unresponsive"), "worker %s gave up", w.Name)
	}
}
