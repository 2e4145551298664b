package zkrecovery

import (
	"context"
	"errors"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/recovery"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testConfirm: Confirm proves the term with fresh round trips; it fails,
// and ends the term, once a newer epoch exists behind the leader's back.
func testConfirm(t *testing.T, addr string) {
	dir := testDir()
	a := startMaster(t, addr, dir, "a")
	waitLeader(t, 10*time.Second, a)
	b := startMaster(t, addr, dir, "b")
	waitFor(t, 10*time.Second, "standby ready", func() bool { l, ok := b.el.Leader(); return ok && l.ID == "a" })
	_, e1 := a.isLeading()

	require.NoError(t, a.el.Confirm(ctxFor(t, 5*time.Second)), "the leader confirms its term")
	assert.ErrorIs(t, b.el.Confirm(ctxFor(t, 5*time.Second)), recovery.ErrNotLeader, "a standby has no term")

	// A cancelled ctx proves nothing and ends nothing.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, a.el.Confirm(cctx), recovery.ErrNotLeader)
	ok, e := a.isLeading()
	require.True(t, ok)
	require.Equal(t, e1, e)

	// Bump the epoch behind the leader's back (as a successor would): no
	// write notices, but Confirm does, and the term ends.
	raw := connect(t, addr, "intruder")
	_, err := raw.Set(ctxFor(t, 5*time.Second), path.Join(dir, "epoch"), []byte(`{"epoch":500}`), -1)
	require.NoError(t, err)
	err = a.el.Confirm(ctxFor(t, 5*time.Second))
	require.ErrorIs(t, err, recovery.ErrFenced)
	waitFor(t, 5*time.Second, "revoked after a failed Confirm", func() bool {
		ev, ok := a.lastEvent("revoked")
		return ok && errors.Is(ev.err, recovery.ErrFenced)
	})
	assert.ErrorIs(t, a.st.PutApp(ctxFor(t, 5*time.Second), app("x")), recovery.ErrNotLeader)

	// It campaigns again (at the back of the queue, as after a fenced
	// write), so b takes office; b then confirms.
	waitLeader(t, 10*time.Second, b)
	_, eb := b.isLeading()
	assert.Greater(t, eb, int64(500))
	require.NoError(t, b.el.Confirm(ctxFor(t, 5*time.Second)))
}

// testConfirmSessionLost: a leader whose session expired while it heard
// nothing (here: cut off, its self-fence disabled by a clock running an
// hour behind, as after a pause) cannot confirm; the term ends. Once the
// network is back it campaigns again with a new session and confirms.
func testConfirmSessionLost(t *testing.T, serverAddr string) {
	dir := testDir()
	proxy := zktest.NewProxy(t, serverAddr)
	behind := func() time.Time { return time.Now().Add(-time.Hour) }
	a := startMaster(t, proxy.Addr(), dir, "a", WithClock(behind))
	waitLeader(t, 10*time.Second, a)
	_, e1 := a.isLeading()
	cur := a.el.sh.current()
	require.NotNil(t, cur)
	require.NoError(t, a.el.Confirm(ctxFor(t, 5*time.Second)))

	proxy.Cut()
	raw := connect(t, serverAddr, "observer")
	waitFor(t, 4*testSession+5*time.Second, "the server expired the session", func() bool {
		ok, _, err := raw.Exists(ctxFor(t, 5*time.Second), cur.node)
		return err == nil && !ok
	})
	ok, _ := a.isLeading()
	require.True(t, ok, "without the self-fence the elector still believes it leads")

	err := a.el.Confirm(ctxFor(t, time.Second))
	require.ErrorIs(t, err, recovery.ErrNotLeader)
	waitFor(t, 5*time.Second, "revoked after a failed Confirm", func() bool { ok, _ := a.isLeading(); return !ok })

	proxy.Restore()
	waitFor(t, 20*time.Second, "re-election with a new session", func() bool { ok, e := a.isLeading(); return ok && e > e1 })
	require.NoError(t, a.el.Confirm(ctxFor(t, 5*time.Second)))
	assert.NotEqual(t, cur.session, a.el.sh.current().session)
}
