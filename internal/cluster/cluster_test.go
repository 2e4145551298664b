package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreePortsDistinct(t *testing.T) {
	ports, err := FreePorts(20)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		assert.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
}

func TestWriteConf(t *testing.T) {
	c := &Cluster{t: t, Dir: t.TempDir(), ZKDir: "/sparkd-x",
		Opts: Options{SessionTimeout: 1500 * time.Millisecond, WorkerTimeout: 8 * time.Second, Props: map[string]string{"spark.deploy.spreadOut": "false"}}}
	c.ConfDir = filepath.Join(c.Dir, "conf")
	require.NoError(t, c.writeConf("127.0.0.1:1,127.0.0.1:2"))
	env, err := os.ReadFile(filepath.Join(c.ConfDir, "spark-env.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(env), `SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=127.0.0.1:1,127.0.0.1:2 -Dspark.deploy.zookeeper.dir=/sparkd-x -Dspark.deploy.zookeeper.sessionTimeout=1500"`)
	// The script is valid bash and exports the variable.
	out, err := exec.Command("bash", "-c", "set -e; . "+filepath.Join(c.ConfDir, "spark-env.sh")+"; bash -c 'echo $SPARK_DAEMON_JAVA_OPTS'").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "recoveryMode=ZOOKEEPER")
	defs, err := os.ReadFile(filepath.Join(c.ConfDir, "spark-defaults.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(defs), "spark.worker.timeout 8s\n")
	assert.Contains(t, string(defs), "spark.deploy.spreadOut false\n")
}

// TestProcLifecycle exercises Kill/Stop/Cont/Restart on a stand-in process.
func TestProcLifecycle(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	dir := t.TempDir()
	p := &Proc{Name: "sleeper", args: []string{"30"}, env: os.Environ(), LogPath: filepath.Join(dir, "s.log"), t: t}
	t.Cleanup(p.killGroup)
	p.start(sleep)
	pid := p.Pid()
	require.NotZero(t, pid)
	assert.Error(t, p.Start(sleep), "a running process is not started twice")

	p.Stop()
	assert.Eventually(t, func() bool { return procState(pid) == "T" }, 5*time.Second, 10*time.Millisecond, "stopped")
	p.Cont()
	assert.Eventually(t, func() bool { return procState(pid) != "T" }, 5*time.Second, 10*time.Millisecond, "continued")

	p.Restart(sleep)
	assert.NotEqual(t, pid, p.Pid())
	p.Kill()
	assert.False(t, p.Running())
	assert.Equal(t, -1, p.ExitCode(), "killed by a signal")
	assert.Error(t, p.Signal(syscall.SIGTERM))
	log, err := os.ReadFile(p.LogPath)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(log), "==== sleeper start"))
}

func procState(pid int) string {
	data, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestClusterSmoke starts a real 1-node ZooKeeper, 2 masters and 2 workers,
// and checks leadership moves on SIGTERM and comes back as STANDBY.
func TestClusterSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and sparkd processes")
	}
	RequireDaemons(t)
	c := Start(t, Options{Masters: 2, Workers: 2, ZooKeeper: 1})
	i, li, err := c.WaitLeader(10 * time.Second)
	require.NoError(t, err)
	assert.Positive(t, li.Epoch)
	c.Masters[i].Term()
	j, lj, err := c.WaitNewLeader(i, li.Epoch, 15*time.Second)
	require.NoError(t, err)
	assert.NotEqual(t, i, j)
	require.NoError(t, c.WaitWorkers(2, 30*time.Second))
	c.RestartMaster(i)
	require.Eventually(t, func() bool {
		l, err := c.LeaderInfo(i)
		return err == nil && l.State == "STANDBY" && l.Epoch >= lj.Epoch
	}, 30*time.Second, 50*time.Millisecond, "restarted master is STANDBY")
}
