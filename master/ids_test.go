package master

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
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
	// The counter never goes back: a term never repeats an id, however many
	// it makes in one second; past 999 the number grows a digit and keeps
	// the epoch's thousands digit.
	st := newState(3)
	seen := map[string]bool{}
	for i := range 2*idBlock + 5 {
		id := st.newAppID(now)
		require.False(t, seen[id], "id %s repeated", id)
		seen[id] = true
		switch i {
		case 0:
			assert.Equal(t, "app-20261120120000-3000", id)
		case idBlock - 1:
			assert.Equal(t, "app-20261120120000-3999", id)
		case idBlock:
			assert.Equal(t, "app-20261120120000-13000", id)
		case 2 * idBlock:
			assert.Equal(t, "app-20261120120000-23000", id)
		}
	}
	// Known ids are skipped.
	st = newState(4)
	st.storedIDs["app-20261120120000-4000"] = true
	assert.Equal(t, "app-20261120120000-4001", st.newAppID(now))
}

// More than a block's worth of concurrent registrations within one second
// (registrations are acknowledged only once persisted, so many are pending
// at once): every application gets its own id and none is lost.
func TestConcurrentRegistrationsInOneSecondGetDistinctIDs(t *testing.T) {
	tm := startMaster(t, testConfig(), nil) // the fake clock stands still
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	const n = idBlock + 50
	client := newPeer(t, nil)
	var mu sync.Mutex
	ids := map[string]bool{}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				var resp protocol.RegisteredApplication
				err := tm.call(http.MethodPost, protocol.PathRegisterApp, protocol.RegisterApplication{
					App:       protocol.AppDescription{Name: "burst", Command: []string{"x"}, ExecutorMemMB: 1},
					ClientURL: fmt.Sprintf("%s/app/%d", client.url(), i)}, &resp)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.False(t, ids[resp.AppID], "id %s handed out twice", resp.AppID)
				ids[resp.AppID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, ids, n)
	assert.Len(t, tm.View().ActiveApps, n)
}
