package worker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pidRunning reports whether pid is a live (not zombie) process.
func pidRunning(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// A driver or executor script killed with SIGKILL (or crashing) left its
// children running: a supervised driver's old work went on next to its
// relaunch. Once the leader exits, the rest of its group is killed.
func TestProcExitKillsLeftoverGroup(t *testing.T) {
	dir := t.TempDir()
	p, err := launchProc(nil, Command{Argv: []string{"sh", "-c", "sleep 300 & echo $! > child; exit 3"}, Env: os.Environ(), Dir: dir},
		time.Second, realClock{})
	require.NoError(t, err)
	p.wait()
	raw, err := os.ReadFile(filepath.Join(dir, "child"))
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	require.NotNil(t, p.exitCode)
	require.Equal(t, 3, *p.exitCode)
	deadline := time.Now().Add(10 * time.Second)
	for pidRunning(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the exited process still runs", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
