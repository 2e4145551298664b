package worker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// Every worker start in HA mode met the leader twice (directly, and through
// the standby's hint); the leader answers the second attempt 503 "in
// progress", which the worker logged as WARN "Failed to connect to master".
// It is not a connection failure: no warning.
func TestRegistrationInProgressIsNotAWarning(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteError(w, http.StatusServiceUnavailable, "registration of w is in progress; retry", nil)
	}))
	t.Cleanup(srv.Close)
	addr := "spark://" + strings.TrimPrefix(srv.URL, "http://")
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	w, err := newWorker(testConfig(t, addr), logrus.NewEntry(logger), realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	_, ok := w.registerWith(t.Context(), addr, nil)
	assert.False(t, ok)
	for _, e := range hook.AllEntries() {
		assert.NotEqual(t, logrus.WarnLevel, e.Level, e.Message)
	}
	assert.True(t, strings.Contains(hook.LastEntry().Message, "in progress"), hook.LastEntry().Message)
}

// With two masters, the standby's hint names the leader, which the same
// round already asks directly: the worker does not follow it, so the
// leader sees one registration per worker instead of two that meet there.
func TestHintToALeaderAskedDirectlyIsNotFollowed(t *testing.T) {
	var leaderHits atomic.Int32
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == protocol.PathRegisterWorker {
			leaderHits.Add(1)
			protocol.WriteJSON(w, 200, protocol.RegisteredWorker{Stamp: protocol.Stamp{Epoch: 1, MasterURL: "spark://" + r.Host}})
			return
		}
		protocol.WriteJSON(w, 200, struct{}{})
	}))
	t.Cleanup(leader.Close)
	leaderAddr := strings.TrimPrefix(leader.URL, "http://")
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteError(w, http.StatusServiceUnavailable, "master is STANDBY",
			&protocol.LeaderHint{State: protocol.MasterStandby, LeaderURL: "spark://" + leaderAddr, Epoch: 1})
	}))
	t.Cleanup(standby.Close)
	cfg := testConfig(t, "spark://"+strings.TrimPrefix(standby.URL, "http://"), "spark://"+leaderAddr)
	w, err := newWorker(cfg, testLogger(t), realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	require.True(t, w.tryRegisterAll(t.Context()))
	assert.EqualValues(t, 1, leaderHits.Load(), "the leader got one registration")
}
