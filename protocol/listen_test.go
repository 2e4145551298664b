package protocol

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) Warnf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

// busyPort occupies a port the OS chose and returns it.
func busyPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestListenFallsBackToTheNextPortLikeSpark(t *testing.T) {
	p := busyPort(t)
	var w warnings
	ln, err := Listen("127.0.0.1", p, DefaultMaxPortRetries, ServiceMaster, &w)
	require.NoError(t, err)
	defer ln.Close()
	got := ln.Addr().(*net.TCPAddr).Port
	assert.Greater(t, got, p)
	assert.LessOrEqual(t, got, p+DefaultMaxPortRetries)
	require.NotEmpty(t, w.lines)
	assert.Equal(t, fmt.Sprintf("Service 'sparkMaster' could not bind on port %d. Attempting port %d.", p, p+1), w.lines[0])
}

func TestListenWithoutRetriesFailsNamingTheService(t *testing.T) {
	p := busyPort(t)
	var w warnings
	_, err := Listen("127.0.0.1", p, 0, ServiceWorkerUI, &w)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE), "%v", err)
	assert.Contains(t, err.Error(), "service 'WorkerUI' failed after 0 retries")
	assert.Empty(t, w.lines)
}

func TestListenPortZeroIsRandom(t *testing.T) {
	ln, err := Listen("127.0.0.1", 0, DefaultMaxPortRetries, ServiceDriver, nil)
	require.NoError(t, err)
	defer ln.Close()
	assert.NotZero(t, ln.Addr().(*net.TCPAddr).Port)
}

func TestListenOtherErrorsAreNotRetried(t *testing.T) {
	var w warnings
	_, err := Listen("192.0.2.1", 40000, DefaultMaxPortRetries, ServiceREST, &w) // TEST-NET-1: not ours
	require.Error(t, err)
	assert.False(t, errors.Is(err, syscall.EADDRINUSE))
	assert.True(t, strings.Contains(err.Error(), "RestSubmissionServer"), "%v", err)
	assert.Empty(t, w.lines)
}

func TestRetryPortWrapsLikeSpark(t *testing.T) {
	assert.Equal(t, 7077, retryPort(7077, 0))
	assert.Equal(t, 7078, retryPort(7077, 1))
	assert.Equal(t, 1024, retryPort(65535, 1))
}
