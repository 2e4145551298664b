package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/protocol"
)

// masterProc is one `sparkd master` process whose stderr is scanned.
type masterProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	done chan struct{}
}

func startMasterProc(t *testing.T, env []string, args ...string) *masterProc {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), append([]string{"master"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &masterProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("master output:\n%s", p.text())
		}
	})
	return p
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARK_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *masterProc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// waitLine waits for a line matching re and returns its submatches.
func (p *masterProc) waitLine(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.text()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.text()); m != nil {
				return m
			}
			t.Fatalf("master exited before logging %q", re)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no line matching %q within 30s", re)
	return nil
}

func (p *masterProc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("master did not exit within %s", timeout)
		return -1
	}
}

func TestMasterProcessSignals(t *testing.T) {
	confDir := t.TempDir()
	p := startMasterProc(t, []string{"SPARK_CONF_DIR=" + confDir, "SPARK_MASTER_OPTS=-Dspark.master.rest.port=0"},
		"--host", "127.0.0.1", "--port", "0", "--webui-port", "0")
	p.waitLine(t, `Registered signal handlers for \[TERM, HUP, INT\]`)
	url := p.waitLine(t, `Starting Spark master at (spark://127\.0\.0\.1:\d+)`)[1]
	p.waitLine(t, `I have been elected leader! New state: ALIVE`)

	cli := protocol.NewClient(2*time.Second, "")
	var li protocol.LeaderInfo
	require.NoError(t, cli.Call(context.Background(), http.MethodGet, url, protocol.PathLeader, nil, &li))
	assert.Equal(t, protocol.MasterAlive, li.State)
	assert.Equal(t, url, li.URL, "the URL advertises the real bound port")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitLine(t, `RECEIVED SIGNAL HUP`)
	require.NoError(t, cli.Call(context.Background(), http.MethodGet, url, protocol.PathLeader, nil, &li), "SIGHUP must not stop the master")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.waitExit(t, 15*time.Second))
	assert.Contains(t, p.text(), "RECEIVED SIGNAL TERM")
}

// Every line a NONE-mode master logs is in Spark's format, including the
// single-master elector's (it logs through logrus's standard logger).
func TestMasterLogLinesAreAllInSparkFormat(t *testing.T) {
	p := startMasterProc(t, []string{"SPARK_CONF_DIR=" + t.TempDir(), "SPARK_MASTER_OPTS=-Dspark.master.rest.port=0"},
		"--host", "127.0.0.1", "--port", "0", "--webui-port", "0")
	p.waitLine(t, `I have been elected leader! New state: ALIVE`)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.waitExit(t, 15*time.Second))
	spark := regexp.MustCompile(`^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|ERROR|DEBUG) [A-Za-z]+: `)
	p.mu.Lock()
	lines := append([]string(nil), p.out...)
	p.mu.Unlock()
	require.NotEmpty(t, lines)
	for _, l := range lines {
		assert.Regexp(t, spark, l)
	}
	assert.Contains(t, p.text(), "INFO Master: elected leader (single-master recovery mode)")
}

func TestMasterBadConfigExitsNonZero(t *testing.T) {
	p := startMasterProc(t, []string{"SPARK_CONF_DIR=" + t.TempDir(), "SPARK_MASTER_OPTS=-Dspark.deploy.recoveryMode=BOGUS"},
		"--host", "127.0.0.1", "--port", "0", "--webui-port", "0")
	assert.Equal(t, 1, p.waitExit(t, 15*time.Second))
	assert.Contains(t, p.text(), "spark.deploy.recoveryMode")
}

func TestMasterConfigMapping(t *testing.T) {
	mc := conf.Master{Host: "h", Port: 1, WebUIPort: 2, RESTEnabled: true, RESTPort: 3, RecoveryMode: "ZOOKEEPER",
		WorkerTimeout: time.Minute, DeadWorkerPersistence: 15, SpreadOut: false, DefaultCores: 4, MaxExecutorRetries: -1,
		RetainedApplications: 7, RetainedDrivers: 8, AuthEnabled: false, AuthSecret: "ignored"}
	c := masterConfig(mc)
	assert.Equal(t, "h", c.Host)
	assert.Equal(t, 3, c.RESTPort)
	assert.True(t, c.ZKEnabled)
	assert.False(t, c.SpreadOut)
	assert.Equal(t, -1, c.MaxExecutorRetries)
	assert.Empty(t, c.AuthSecret, "the secret is used only with spark.authenticate=true")
	mc.AuthEnabled = true
	assert.Equal(t, "ignored", masterConfig(mc).AuthSecret)
}
