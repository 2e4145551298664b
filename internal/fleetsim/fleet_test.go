package fleetsim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/worker"
)

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no master", Config{Workers: 1}, "no master"},
		{"no worker", Config{Masters: []string{"127.0.0.1:1"}}, "workers 0"},
		{"negative apps", Config{Masters: []string{"127.0.0.1:1"}, Workers: 1, Apps: -1}, "must not be negative"},
		{"too many executors", Config{Masters: []string{"127.0.0.1:1"}, Workers: 2, WorkerCores: 1, Apps: 1, Executors: 3}, "do not fit"},
		{"short timeout", Config{Masters: []string{"127.0.0.1:1"}, Workers: 1, WorkerTimeout: time.Millisecond}, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDefaultsAndSplit(t *testing.T) {
	c := Config{Masters: []string{"127.0.0.1:1"}, Workers: 10}
	require.NoError(t, c.fill())
	assert.Equal(t, 5, c.Apps)
	assert.Equal(t, 7, c.Executors)
	assert.Equal(t, []int{2, 2, 1, 1, 1}, executorsPerApp(5, 7))
	c = Config{Masters: []string{"127.0.0.1:1"}, Workers: 3, NoApps: true}
	require.NoError(t, c.fill())
	assert.Equal(t, 0, c.Apps)
	assert.Equal(t, 0, c.Executors)
}

// The simulated executor runs until signalled, or for its lifetime.
func TestSimulatedProcess(t *testing.T) {
	l := newLauncher(0)
	p, err := l.Launch(worker.Command{Kind: "executor", ID: "app/0", Argv: []string{"x"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), l.running.Load())
	require.NoError(t, p.Signal(15))
	code, msg := p.Wait()
	require.NotNil(t, code)
	assert.Equal(t, 143, *code)
	assert.Contains(t, msg, "killed by signal")
	assert.Equal(t, int64(0), l.running.Load())
	require.NoError(t, p.Signal(9), "a signal after the end does nothing")

	l = newLauncher(10 * time.Millisecond)
	p, err = l.Launch(worker.Command{Kind: "executor", ID: "app/1", Argv: []string{"x"}})
	require.NoError(t, err)
	code, _ = p.Wait()
	require.NotNil(t, code)
	assert.Equal(t, 0, *code)
}

// A fleet in this process (6 workers, 3 applications, 4 executors) against
// two real masters: everything attaches to the leader, and after a crash of
// the leader everything follows the standby with every executor running.
func TestFleetFollowsACrashFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two masters")
	}
	cluster.RequireDaemons(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: -1, SessionTimeout: 2 * time.Second, WorkerTimeout: 20 * time.Second})
	lead, li, err := c.WaitLeader(time.Minute)
	require.NoError(t, err)
	f, err := New(Config{Masters: []string{c.Masters[0].Addr(), c.Masters[1].Addr()}, Workers: 6, Executors: 4,
		WorkerTimeout: 20 * time.Second, Log: Discard()})
	require.NoError(t, err)
	t.Cleanup(f.Close)
	require.NoError(t, f.Start(context.Background()))
	require.Error(t, f.Start(context.Background()), "Start twice")

	following := func(i int) func() bool {
		return func() bool {
			st := f.Status()
			a := st.ByMaster[c.Masters[i].URL()]
			return a != nil && a.Workers == 6 && a.Apps == 3 && st.ExecutorsRunning == 4
		}
	}
	require.True(t, cluster.WaitFor(time.Minute, following(lead)), "fleet not attached to the leader: %+v", f.Status())
	st := f.Status()
	assert.Equal(t, 6, st.Workers)
	assert.Equal(t, 3, st.Apps)
	assert.Positive(t, st.RegisterRequests[c.Masters[lead].Addr()])
	assert.False(t, st.ByMaster[c.Masters[lead].URL()].LastWorkerAt.Before(st.Started))

	c.Masters[lead].Kill()
	require.True(t, cluster.WaitFor(time.Minute, following(1-lead)), "fleet not attached to the new leader: %+v", f.Status())
	nli, err := c.LeaderInfo(1 - lead)
	require.NoError(t, err)
	assert.Equal(t, protocol.MasterAlive, nli.State)
	assert.Greater(t, nli.Epoch, li.Epoch)
	assert.Equal(t, int64(4), f.Status().ExecutorsLaunched, "no executor launched twice")
	f.Close()
	f.Close()
	assert.Zero(t, f.Status().ExecutorsRunning, "Close killed the simulated executors")
}
