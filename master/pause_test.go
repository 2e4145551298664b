package master

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// pauseConfig turns pause detection on with a threshold of 7.5s of the fake
// clock (SelfFenceAfter/4), and a Confirm deadline (SelfFenceAfter, real
// time) no test reaches.
func pauseConfig() Config {
	cfg := testConfig()
	cfg.SelfFenceAfter = 30 * time.Second
	return cfg
}

// blockingConfirm makes Confirm wait for an answer on the returned channel.
func blockingConfirm(tm *tmaster) chan<- error {
	answer := make(chan error)
	tm.el.setConfirm(func(ctx context.Context) error {
		select {
		case err := <-answer:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return answer
}

func (tm *tmaster) readyz(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tm.WebUIAddr()+"/readyz", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (tm *tmaster) leaderState(t *testing.T) protocol.MasterState {
	t.Helper()
	var li protocol.LeaderInfo
	require.NoError(t, tm.call(http.MethodGet, protocol.PathLeader, nil, &li))
	return li.State
}

// queueProbe queues a message for p on the current term's outbox, as any
// command to a worker or a driver is.
func (tm *tmaster) queueProbe(p *peer) {
	tm.mu.Lock()
	tm.sendAsyncLocked(p.url(), "/probe", struct{}{})
	tm.mu.Unlock()
}

// After a pause (the fake clock jumps past the threshold between two ticks
// of the detector) the master reports STANDBY everywhere and sends nothing
// until Confirm has proved its term; then it resumes and delivers what
// waited.
func TestPauseClosesGateUntilConfirmed(t *testing.T) {
	tm := startMaster(t, pauseConfig(), nil)
	answer := blockingConfirm(tm)
	tm.el.elect(t, 5)
	tm.waitStatus(t, protocol.MasterAlive)
	p := newPeer(t, nil)

	// The pause: the gap alone closes the gate, before any tick ran.
	tm.clock.Advance(10 * time.Second)
	assert.Equal(t, protocol.MasterStandby, tm.status())
	assert.Equal(t, protocol.MasterStandby, tm.leaderState(t))
	assert.Equal(t, http.StatusServiceUnavailable, tm.readyz(t))
	_, err := tm.SubmitDriver(t.Context(), protocol.DriverSpec{Command: []string{"x"}, Cores: 1, MemoryMB: 1})
	var na *NotAliveError
	require.ErrorAs(t, err, &na)
	tm.queueProbe(p)

	// The detector ticks, sees the gap and asks for a confirmation; the
	// gate stays closed while it is pending.
	eventually(t, "Confirm called", func() bool { return tm.el.confirmCalls() == 1 })
	assert.Never(t, func() bool { return len(p.got("/probe")) > 0 || tm.status() != protocol.MasterStandby },
		200*time.Millisecond, 10*time.Millisecond, "nothing sent or reported ALIVE before the term is confirmed")
	assert.True(t, tm.logged("paused for 10s"))

	answer <- nil
	tm.waitStatus(t, protocol.MasterAlive)
	assert.Equal(t, protocol.MasterAlive, tm.leaderState(t))
	assert.Equal(t, http.StatusOK, tm.readyz(t))
	eventually(t, "the waiting message delivered", func() bool { return len(p.got("/probe")) == 1 })
	assert.True(t, tm.logged("confirmed the term after the pause"))
	assert.Equal(t, 1, tm.el.confirmCalls())
	assert.Equal(t, int64(5), tm.term().epoch, "the same term goes on")
}

// A Confirm that fails steps the master down to STANDBY (in this process);
// what was queued is never sent.
func TestPauseFailedConfirmStepsDown(t *testing.T) {
	tm := startMaster(t, pauseConfig(), nil)
	tm.el.setConfirm(func(context.Context) error {
		return fmt.Errorf("zk: epoch znode moved on: %w", recovery.ErrFenced)
	})
	tm.el.elect(t, 5)
	tm.waitStatus(t, protocol.MasterAlive)
	p := newPeer(t, nil)

	tm.clock.Advance(10 * time.Second)
	tm.queueProbe(p)
	eventually(t, "stepped down", func() bool { return tm.term() == nil })
	assert.Equal(t, protocol.MasterStandby, tm.status())
	assert.Equal(t, uint64(1), tm.View().HA.FencedWrites)
	assert.True(t, tm.logged("Leadership has been revoked"))
	assert.Never(t, func() bool { return len(p.got("/probe")) > 0 }, 200*time.Millisecond, 10*time.Millisecond)
}

// Without a pause Confirm is never called, also across clock steps below
// the threshold, and the master stays ALIVE.
func TestNoPauseNoConfirm(t *testing.T) {
	tm := startMaster(t, pauseConfig(), nil)
	tm.el.elect(t, 5)
	tm.waitStatus(t, protocol.MasterAlive)
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		tm.clock.Advance(time.Second) // well below 7.5s between two ticks
		require.Equal(t, protocol.MasterAlive, tm.status())
		time.Sleep(20 * time.Millisecond) // lets the detector tick (not a synchronisation)
	}
	assert.Zero(t, tm.el.confirmCalls())
}

// A pause detected while not leading covers the next term: its election
// may predate the pause, so it is confirmed before it reports ALIVE.
func TestPauseBeforeElectionConfirmsNextTerm(t *testing.T) {
	tm := startMaster(t, pauseConfig(), nil)
	answer := blockingConfirm(tm)
	tm.clock.Advance(10 * time.Second)
	eventually(t, "pause detected", func() bool {
		tm.pause.mu.Lock()
		defer tm.pause.mu.Unlock()
		return tm.pause.gaps == 1
	})
	assert.Zero(t, tm.el.confirmCalls(), "no term, nothing to confirm")

	tm.el.elect(t, 7)
	eventually(t, "Confirm called for the new term", func() bool { return tm.el.confirmCalls() == 1 })
	assert.Never(t, func() bool { return tm.status() != protocol.MasterStandby }, 200*time.Millisecond, 10*time.Millisecond)
	answer <- nil
	tm.waitStatus(t, protocol.MasterAlive)
}

func TestPauseThreshold(t *testing.T) {
	for _, tc := range []struct{ fence, want time.Duration }{
		{0, 0},
		{200 * time.Millisecond, 100 * time.Millisecond},
		{6667 * time.Millisecond, 1666750 * time.Microsecond},
	} {
		assert.Equal(t, tc.want, pauseThreshold(tc.fence), "SelfFenceAfter %v", tc.fence)
	}
}

// A Confirm that fails because the Elector has just ended the term (its
// context is cancelled, OnRevoked not called yet) must not be retried in a
// loop until OnRevoked comes: the master steps down at once (issue 11,
// item 7: confirmLoop spun between the cancel and OnRevoked).
func TestConfirmOfAnEndedTermDoesNotSpin(t *testing.T) {
	tm := startMaster(t, pauseConfig(), nil)
	tm.el.elect(t, 5)
	tm.waitStatus(t, protocol.MasterAlive)
	tm.el.mu.Lock()
	cancelTerm := tm.el.cancel
	tm.el.mu.Unlock()
	tm.el.setConfirm(func(ctx context.Context) error {
		cancelTerm() // the Elector ends the term; OnRevoked is late
		return fmt.Errorf("%w: the term ended", recovery.ErrNotLeader)
	})
	tm.clock.Advance(10 * time.Second) // a pause: confirm the term
	eventually(t, "stepped down", func() bool { return tm.term() == nil })
	confirms := func() int {
		tm.el.mu.Lock()
		defer tm.el.mu.Unlock()
		return tm.el.confirms
	}
	assert.Never(t, func() bool { return confirms() > 2 }, 200*time.Millisecond, 5*time.Millisecond,
		"Confirm called again and again for one pause")
}
