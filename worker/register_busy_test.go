package worker

import (
	"net/http"
	"net/http/httptest"
	"strings"
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
	_, ok := w.registerWith(t.Context(), addr)
	assert.False(t, ok)
	for _, e := range hook.AllEntries() {
		assert.NotEqual(t, logrus.WarnLevel, e.Level, e.Message)
	}
	assert.True(t, strings.Contains(hook.LastEntry().Message, "in progress"), hook.LastEntry().Message)
}
