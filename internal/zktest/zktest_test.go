package zktest

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStandalone(t *testing.T) {
	e := Start(t, 1)
	assert.Equal(t, 0, e.Leader())
	m, err := e.Servers()[0].Mode()
	require.NoError(t, err)
	assert.Equal(t, "standalone", m)
	out, err := FourLetterWord(e.Servers()[0].Addr(), "ruok", 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "imok", string(out))

	e.Stop(0)
	assert.False(t, e.Servers()[0].Running())
	assert.Equal(t, -1, e.Leader())
	assert.Error(t, e.WaitHealthy(200*time.Millisecond), "nothing running")
	e.Start(0)
	require.NoError(t, e.WaitHealthy(30*time.Second))
}

// TestQuorum loses the leader, then quorum, of a 3-server ensemble.
func TestQuorum(t *testing.T) {
	e := Start(t, 3)
	require.Len(t, e.Servers(), 3)
	leader := e.Leader()
	require.GreaterOrEqual(t, leader, 0)
	followers := 0
	for _, s := range e.Servers() {
		if m, err := s.Mode(); err == nil && m == "follower" {
			followers++
		}
	}
	assert.Equal(t, 2, followers)

	e.Kill(leader)
	require.NoError(t, e.WaitHealthy(30*time.Second), "two of three elect a new leader")
	newLeader := e.Leader()
	assert.NotEqual(t, leader, newLeader)
	assert.GreaterOrEqual(t, newLeader, 0)

	e.Stop(newLeader) // quorum lost: the last server stops serving
	err := e.WaitHealthy(2 * time.Second)
	assert.Error(t, err, "one of three is not a quorum")

	e.Start(leader)
	e.Start(newLeader)
	require.NoError(t, e.WaitHealthy(60*time.Second))
	for _, s := range e.Servers() {
		assert.True(t, s.Running())
	}
}

// TestTeardownLeavesNoProcess checks that a (sub)test's cleanup kills its
// servers.
func TestTeardownLeavesNoProcess(t *testing.T) {
	var pids []int
	t.Run("inner", func(t *testing.T) {
		e := Start(t, 1)
		for _, s := range e.Servers() {
			s.mu.Lock()
			pids = append(pids, s.cmd.Process.Pid)
			s.mu.Unlock()
		}
	})
	require.NotEmpty(t, pids)
	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		assert.True(t, errors.Is(err, syscall.ESRCH), "pid %d still exists: %v", pid, err)
	}
}

func TestClasspathOverrides(t *testing.T) {
	t.Setenv("ZOOKEEPER_JAR", "/nonexistent/zookeeper.jar")
	_, _, err := Classpath()
	assert.True(t, errors.Is(err, ErrNotInstalled), "%v", err)

	t.Setenv("ZOOKEEPER_JAR", "")
	t.Setenv("ZOOKEEPER_HOME", t.TempDir())
	_, _, err = Classpath()
	assert.True(t, errors.Is(err, ErrNotInstalled), "%v", err)
}

// echoServer answers every byte it reads.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestProxy(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	got, err := roundTrip(c, "hello", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello", got)

	p.Cut()
	// Silence, not a reset: the read times out.
	_, err = roundTrip(c, "lost", 300*time.Millisecond)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
	// New connections are refused (closed at once).
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = roundTrip(c2, "x", 5*time.Second)
		c2.Close()
	}
	assert.Error(t, err)

	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	got, err = roundTrip(c3, "again", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "again", got)
	// The silenced connection was closed by Restore.
	_, err = roundTrip(c, "x", 5*time.Second)
	assert.Error(t, err)

	p.Close()
	p.Close() // idempotent
}
