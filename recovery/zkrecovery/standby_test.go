package zkrecovery

import (
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
)

// totalWatches asks the server for its watch count (`wchs`).
func totalWatches(t *testing.T, addr string) int {
	t.Helper()
	out, err := zktest.FourLetterWord(addr, "wchs", 2*time.Second)
	require.NoError(t, err)
	m := regexp.MustCompile(`Total watches:\s*(\d+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "wchs answered %q", out)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// A standby that stays standby, the normal case, must not grow: it waits on
// its watches and re-arms only the one that fired. (It used to re-arm its
// watches every second, and with a chroot park a goroutine per watch: about
// 170,000 watches a day.) The test runs a leader and a standby on chroot
// connections for several seconds and checks that the server's watch count
// and the process's goroutines stay flat.
func TestLongStandbyStaysFlat(t *testing.T) {
	ens := zktest.Start(t, 1)
	addr := ens.Connect() + "/chrooted"
	dir := testDir()
	a := startMaster(t, addr, dir, "m-a")
	waitLeader(t, 20*time.Second, a)
	b := startMaster(t, addr, dir, "m-b")
	waitFor(t, 10*time.Second, "the standby knows the leader", func() bool {
		info, ok := b.el.Leader()
		return ok && info.ID == "m-a"
	})
	server := ens.Servers()[0].Addr()
	// Let both settle (the standby armed its watches), then measure.
	time.Sleep(time.Second)
	w0, g0 := totalWatches(t, server), runtime.NumGoroutine()
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		require.LessOrEqual(t, totalWatches(t, server), w0, "watches grew while nothing changed")
	}
	w1, g1 := totalWatches(t, server), runtime.NumGoroutine()
	t.Logf("watches %d -> %d, goroutines %d -> %d over 6s of standby", w0, w1, g0, g1)
	assert.Equal(t, w0, w1, "watches")
	assert.LessOrEqual(t, g1, g0+2, "goroutines")
	lead, _ := b.isLeading()
	assert.False(t, lead)

	// The standby still reacts at once: the leader resigns, the standby takes over.
	a.stop()
	waitLeader(t, 10*time.Second, b)
}
