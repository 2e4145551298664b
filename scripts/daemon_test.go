// Package scripts_test runs the operator scripts for real: daemon.sh against a
// stand-in daemon, and the whole start-all/stop-all flow over a real sshd
// against real sparkd masters and workers (cluster_test.go).
package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/testbin"
)

// home is a throwaway SPARK_HOME: scripts/, bin/sparkd and conf/ of its own.
type home struct {
	dir, pidDir, logDir string
	env                 []string
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, data, mode))
}

// newHome lays out a SPARK_HOME whose bin/sparkd is bin (a path).
func newHome(t *testing.T, bin string) *home {
	t.Helper()
	h := &home{dir: t.TempDir()}
	root := testbin.Root()
	scripts, err := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	require.NoError(t, err)
	for _, s := range scripts {
		copyFile(t, s, filepath.Join(h.dir, "scripts", filepath.Base(s)), 0o755)
	}
	copyFile(t, bin, filepath.Join(h.dir, "bin", "sparkd"), 0o755)
	require.NoError(t, os.MkdirAll(filepath.Join(h.dir, "conf"), 0o755))
	h.pidDir = filepath.Join(h.dir, "pids")
	h.logDir = filepath.Join(h.dir, "logs")
	h.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.dir,
		"USER=tester",
		"SPARK_HOME=" + h.dir,
		"SPARK_PID_DIR=" + h.pidDir,
		"SPARK_LOG_DIR=" + h.logDir,
	}
	t.Cleanup(func() { h.killAll(t) })
	return h
}

// killAll SIGKILLs whatever pid files still name, so a failing test leaves
// no daemon behind.
func (h *home) killAll(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(h.pidDir, "*.pid"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 1 {
			continue
		}
		// Only a sparkd process: tests write unrelated pids on purpose.
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); filepath.Base(argv0) == "sparkd" {
			_ = syscallKill(pid)
		}
	}
}

// run runs a script from the home with extra environment; it returns the
// combined output and the exit code.
func (h *home) run(t *testing.T, extraEnv []string, script string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(h.dir, "scripts", script), args...)
	cmd.Env = append(append([]string{}, h.env...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return out.String(), code
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s %v did not finish in 90s; output:\n%s", script, args, out.String())
	}
	return "", -1
}

var fakeBin string

func fakeSparkd(t *testing.T) string {
	t.Helper()
	if fakeBin != "" {
		return fakeBin
	}
	dir, err := os.MkdirTemp("", "fakesparkd-")
	require.NoError(t, err)
	fakeBin = filepath.Join(dir, "sparkd")
	cmd := exec.Command("go", "build", "-o", fakeBin, "./testdata/fakesparkd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build fakesparkd: %s", out)
	return fakeBin
}

func (h *home) pid(t *testing.T, role string, instance int) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.pidDir, "spark-tester-"+role+"-"+strconv.Itoa(instance)+".pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, err)
	return pid
}

func alive(pid int) bool {
	return syscallKill0(pid) == nil && !isZombie(pid)
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestDaemonStartStatusStop(t *testing.T) {
	h := newHome(t, fakeSparkd(t))

	out, code := h.run(t, nil, "daemon.sh", "status", "master", "1")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "sparkd master not running.")

	out, code = h.run(t, nil, "daemon.sh", "start", "master", "1", "--port", "0")
	require.Equal(t, 0, code, out)
	host, _ := os.Hostname()
	logFile := filepath.Join(h.logDir, "spark-tester-master-1-"+host+".out")
	assert.Contains(t, out, "starting sparkd master, logging to "+logFile)
	pid := h.pid(t, "master", 1)
	assert.True(t, alive(pid))

	out, code = h.run(t, nil, "daemon.sh", "status", "master", "1")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "sparkd master is running.")

	// A second start is refused and leaves the first alone.
	out, code = h.run(t, nil, "daemon.sh", "start", "master", "1")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "running as process "+strconv.Itoa(pid)+".  Stop it first.")
	assert.Equal(t, pid, h.pid(t, "master", 1))

	out, code = h.run(t, nil, "daemon.sh", "stop", "master", "1")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "stopping sparkd master")
	assert.False(t, alive(pid), "stop must wait for the process to exit")
	assert.NoFileExists(t, filepath.Join(h.pidDir, "spark-tester-master-1.pid"))

	out, code = h.run(t, nil, "daemon.sh", "stop", "master", "1")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "no sparkd master to stop")
}

func TestDaemonStatusStalePidFile(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	require.NoError(t, os.MkdirAll(h.pidDir, 0o755))
	// A pid that exists but is not sparkd: this test process itself.
	pidFile := filepath.Join(h.pidDir, "spark-tester-worker-1.pid")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644))

	out, code := h.run(t, nil, "daemon.sh", "status", "worker", "1")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "file is present but sparkd worker not running")
}

func TestDaemonNeverKillsRecycledPid(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	require.NoError(t, os.MkdirAll(h.pidDir, 0o755))
	victim := exec.Command("sleep", "60")
	require.NoError(t, victim.Start())
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
	pidFile := filepath.Join(h.pidDir, "spark-tester-master-1.pid")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(victim.Process.Pid)), 0o644))

	out, code := h.run(t, nil, "daemon.sh", "stop", "master", "1")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "no sparkd master to stop")
	assert.True(t, alive(victim.Process.Pid), "an unrelated process named by a stale pid file must survive")

	// start is not fooled either: the pid is not a running sparkd.
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(victim.Process.Pid)), 0o644))
	out, code = h.run(t, nil, "daemon.sh", "start", "master", "1")
	assert.Equal(t, 0, code, out)
	assert.NotEqual(t, victim.Process.Pid, h.pid(t, "master", 1))
	_, _ = h.run(t, nil, "daemon.sh", "stop", "master", "1")
	assert.True(t, alive(victim.Process.Pid))
}

func TestDaemonStopEscalatesToKill(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	env := []string{"FAKE_IGNORE_TERM=1", "SPARK_STOP_TIMEOUT=1"}
	out, code := h.run(t, env, "daemon.sh", "start", "worker", "1")
	require.Equal(t, 0, code, out)
	pid := h.pid(t, "worker", 1)

	out, code = h.run(t, env, "daemon.sh", "stop", "worker", "1")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "did not stop after 1s; sending SIGKILL")
	assert.False(t, alive(pid))
}

func TestDaemonFailedLaunch(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	out, code := h.run(t, []string{"FAKE_FAIL=1"}, "daemon.sh", "start", "master", "1")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "failed to launch: sparkd master")
	assert.Contains(t, out, "unknown recovery mode", "the log's last lines are shown")
	assert.Contains(t, out, "full log in ")
	assert.NoFileExists(t, filepath.Join(h.pidDir, "spark-tester-master-1.pid"))
}

func TestDaemonLogRotation(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	env := []string{"SPARK_LOG_MAX_FILES=2"}
	host, _ := os.Hostname()
	logFile := filepath.Join(h.logDir, "spark-tester-master-1-"+host+".out")
	for i := 0; i < 4; i++ {
		out, code := h.run(t, env, "daemon.sh", "start", "master", "1", "--run", strconv.Itoa(i))
		require.Equal(t, 0, code, out)
		require.Eventually(t, func() bool {
			data, _ := os.ReadFile(logFile)
			return strings.Contains(string(data), "--run "+strconv.Itoa(i))
		}, 10*time.Second, 20*time.Millisecond)
		out, code = h.run(t, env, "daemon.sh", "stop", "master", "1")
		require.Equal(t, 0, code, out)
	}
	read := func(p string) string { data, _ := os.ReadFile(p); return string(data) }
	assert.Contains(t, read(logFile), "--run 3")
	assert.Contains(t, read(logFile+".1"), "--run 2")
	assert.Contains(t, read(logFile+".2"), "--run 1")
	assert.NoFileExists(t, logFile+".3", "SPARK_LOG_MAX_FILES=2 keeps two old logs")
}

// The first start creates the log and rotates nothing: no empty .out.1.
func TestDaemonFirstStartRotatesNothing(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	host, _ := os.Hostname()
	logFile := filepath.Join(h.logDir, "spark-tester-master-1-"+host+".out")
	out, code := h.run(t, nil, "daemon.sh", "start", "master", "1")
	require.Equal(t, 0, code, out)
	assert.FileExists(t, logFile)
	assert.NoFileExists(t, logFile+".1", "the first start must not rotate the log it has just created")
	out, code = h.run(t, nil, "daemon.sh", "stop", "master", "1")
	require.Equal(t, 0, code, out)
}

func TestDaemonUsageErrors(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	for _, args := range [][]string{{}, {"start"}, {"start", "executor", "1"}, {"start", "master", "x"}, {"restart", "master", "1"}} {
		out, code := h.run(t, nil, "daemon.sh", args...)
		assert.Equal(t, 1, code, "%v: %s", args, out)
		assert.Contains(t, out, "daemon.sh", "%v", args)
	}
	out, code := h.run(t, nil, "start-worker.sh")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "Usage: start-worker.sh <master-urls>")
}

func TestShellcheckClean(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed; `make deps` installs it")
	}
	root := testbin.Root()
	files, err := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	require.NoError(t, err)
	for _, pattern := range []string{"hack/*.sh", "docker/*.sh", "docker/zookeeper/*.sh", "conf/spark-env.sh.template"} {
		more, _ := filepath.Glob(filepath.Join(root, pattern))
		files = append(files, more...)
	}
	files = append(files, filepath.Join(root, ".ci", "run"))
	cmd := exec.Command("shellcheck", append([]string{"-x"}, files...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "shellcheck:\n%s", out)
}
