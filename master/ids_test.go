package master

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sparkd/protocol"
	"sparkd/recovery"
)

// A failover within the same second must not hand out again the id of an
// application or driver the previous leader already finished (its record
// is gone from the store), or `sparkd submit --status <id>` and the
// history would mix the two.
func TestIDsAreNotReusedAcrossAFastFailover(t *testing.T) {
	tm := startMaster(t, testConfig(), nil) // the fake clock stands still: one second
	seen := map[string]string{}
	use := func(id, what string) {
		t.Helper()
		assert.Regexp(t, `^(app|driver)-\d{14}-\d{4}$`, id, "Spark's id format")
		if prev, dup := seen[id]; dup {
			t.Errorf("%s reused id %s of %s", what, id, prev)
		}
		seen[id] = what
	}
	for epoch := int64(1); epoch <= 3; epoch++ {
		tm.el.elect(t, epoch)
		tm.waitStatus(t, protocol.MasterAlive)
		require.EqualValues(t, epoch, tm.View().Epoch)
		for i := range 3 {
			client := newPeer(t, nil)
			id := tm.registerApp(t, fmt.Sprintf("app-%d-%d", epoch, i), client, 1, 64)
			use(id, fmt.Sprintf("application %d of epoch %d", i, epoch))
			require.NoError(t, tm.call(http.MethodPost, "/v1/apps/"+id+"/unregister", protocol.UnregisterApplication{AppID: id}, nil))
			did, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
			require.NoError(t, err)
			use(did, fmt.Sprintf("driver %d of epoch %d", i, epoch))
			require.NoError(t, tm.KillDriver(t.Context(), did))
		}
		eventually(t, "finished records removed", func() bool {
			st, err := tm.store.Read(t.Context())
			require.NoError(t, err)
			return st.Empty()
		})
	}
	assert.Len(t, seen, 18)
}

// Ids found in the store when a term begins are never handed out again,
// finished ones included, even when they fall in the new term's block.
func TestStoredIDsAreNotReused(t *testing.T) {
	store := newMemStore()
	ts := newClock().Now().Format(idTime)
	finishedApp, waitingDriver := "app-"+ts+"-2000", "driver-"+ts+"-2000"
	store.apps[finishedApp] = recovery.AppRecord{Format: 1, ID: finishedApp, Desc: protocol.AppDescription{Name: "x", Command: []string{"x"}, ExecutorMemMB: 1},
		ClientURL: "http://127.0.0.1:1", State: protocol.AppFinished}
	store.drivers[waitingDriver] = recovery.DriverRecord{Format: 1, ID: waitingDriver,
		Spec: protocol.DriverSpec{Command: []string{"d"}, Cores: 1, MemoryMB: 1}, State: protocol.DriverSubmitted}
	tm := startMaster(t, testConfig(), store)
	tm.el.elect(t, 12) // block 2000-2999, like epoch 2's
	tm.waitStatus(t, protocol.MasterAlive)
	id := tm.registerApp(t, "new", newPeer(t, nil), 1, 64)
	assert.Equal(t, "app-"+ts+"-2001", id)
	did, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	require.NoError(t, err)
	assert.Equal(t, "driver-"+ts+"-2001", did)
}

func TestIDBlocks(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		epoch int64
		first string
	}{{0, "app-20261120120000-0000"}, {1, "app-20261120120000-1000"}, {9, "app-20261120120000-9000"},
		{10, "app-20261120120000-0000"}, {23, "app-20261120120000-3000"}} {
		assert.Equal(t, c.first, newState(c.epoch).newAppID(now), "epoch %d", c.epoch)
	}
	// A term never leaves its block: the counter wraps and skips known ids;
	// only a second with more ids than the block holds goes above 9999.
	st := newState(3)
	for i := range idBlock {
		id := st.newAppID(now)
		require.Equal(t, fmt.Sprintf("app-20261120120000-%04d", 3000+i), id)
		st.apps[id] = &appInfo{id: id}
	}
	assert.Regexp(t, `^app-20261120120000-1\d{4}$`, st.newAppID(now), "above every block")
	later := now.Add(time.Second)
	assert.Equal(t, "app-20261120120001-3001", st.newAppID(later), "wrapped into the block again")
}
