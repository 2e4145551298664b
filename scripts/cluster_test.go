package scripts_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/internal/zktest"
)

// sshd is a real OpenSSH server on 127.0.0.2 and 127.0.0.3, each address
// acting as its own host: its own pid, log and work directories and its own
// bind address (sshd_config Match LocalAddress + SetEnv).
type sshd struct {
	dir, key string
	port     int
	cmd      *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSSHD(t *testing.T, hosts []string, perHost func(host string) []string) *sshd {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("sshd is not installed; `make deps` installs openssh-server")
	}
	s := &sshd{dir: t.TempDir(), port: freePort(t)}
	s.key = filepath.Join(s.dir, "userkey")
	for _, k := range []string{"hostkey", "userkey"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(s.dir, k)).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pub, err := os.ReadFile(s.key + ".pub")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "authorized_keys"), pub, 0o600))
	var cfg strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&cfg, "ListenAddress %s:%d\n", h, s.port)
	}
	fmt.Fprintf(&cfg, "HostKey %s/hostkey\nAuthorizedKeysFile %s/authorized_keys\nPidFile %s/sshd.pid\n", s.dir, s.dir, s.dir)
	cfg.WriteString("StrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n")
	for _, h := range hosts {
		fmt.Fprintf(&cfg, "Match LocalAddress %s\n\tSetEnv %s\n", h, strings.Join(perHost(h), " "))
	}
	conf := filepath.Join(s.dir, "sshd_config")
	require.NoError(t, os.WriteFile(conf, []byte(cfg.String()), 0o600))
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	s.cmd = exec.Command(bin, "-D", "-f", conf, "-E", filepath.Join(s.dir, "sshd.log"))
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
			t.Logf("sshd log:\n%s", log)
		}
	})
	for _, h := range hosts {
		require.Eventually(t, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", h, s.port), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		}, 15*time.Second, 50*time.Millisecond, "sshd on %s", h)
	}
	return s
}

func (s *sshd) opts() string {
	return fmt.Sprintf("-p %d -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5", s.port, s.key)
}

type masterJSON struct {
	Status       string `json:"status"`
	AliveWorkers int    `json:"aliveworkers"`
	Workers      []struct {
		Host  string `json:"host"`
		State string `json:"state"`
	} `json:"workers"`
}

func getMasterJSON(url string) (masterJSON, error) {
	var m masterJSON
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// TestStartAllOverSSH starts a ZooKeeper-mode master and two workers through
// start-all.sh, the workers on "hosts" 127.0.0.2 and 127.0.0.3 reached over
// real ssh, then stops them all with stop-all.sh.
func TestStartAllOverSSH(t *testing.T) {
	ens := zktest.Start(t, 1)
	h := newHome(t, testbin.Path(t))
	hosts := []string{"127.0.0.2", "127.0.0.3"}
	hostDir := func(host string) string { return filepath.Join(h.dir, "hosts", host) }
	s := startSSHD(t, hosts, func(host string) []string {
		d := hostDir(host)
		return []string{
			"SPARK_PID_DIR=" + d + "/pids", "SPARK_LOG_DIR=" + d + "/logs",
			"SPARK_WORKER_DIR=" + d + "/work", "SPARK_WORKER_HOST=" + host, "USER=tester",
		}
	})
	t.Cleanup(func() {
		for _, host := range hosts {
			files, _ := filepath.Glob(filepath.Join(hostDir(host), "pids", "*.pid"))
			for _, f := range files {
				hh := &home{pidDir: filepath.Dir(f)}
				hh.killAll(t)
			}
			if t.Failed() {
				logs, _ := filepath.Glob(filepath.Join(hostDir(host), "logs", "*"))
				for _, l := range logs {
					data, _ := os.ReadFile(l)
					t.Logf("%s:\n%s", l, data)
				}
			}
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(h.logDir, "*"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, data)
			}
		}
	})

	masterPort, webPort := freePort(t), freePort(t)
	env := fmt.Sprintf(`SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=%s -Dspark.deploy.zookeeper.dir=/scripts-test -Dspark.deploy.zookeeper.sessionTimeout=4s -Dspark.master.rest.enabled=false"
SPARK_MASTER_HOST=127.0.0.1
SPARK_MASTER_PORT=%d
SPARK_MASTER_WEBUI_PORT=%d
SPARK_WORKER_WEBUI_PORT=0
SPARK_WORKER_CORES=1
SPARK_WORKER_MEMORY=256m
SPARK_SSH_OPTS="%s"
SPARK_STOP_TIMEOUT=20
`, ens.Connect(), masterPort, webPort, s.opts())
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "conf", "spark-env.sh"), []byte(env), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "conf", "workers"),
		[]byte("# test hosts\n127.0.0.2\n\n127.0.0.3   # second host\n"), 0o644))

	out, code := h.run(t, nil, "start-all.sh")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "starting sparkd master")
	assert.Contains(t, out, "127.0.0.2: starting sparkd worker")
	assert.Contains(t, out, "127.0.0.3: starting sparkd worker")

	url := fmt.Sprintf("http://127.0.0.1:%d/json", webPort)
	var last masterJSON
	require.Eventually(t, func() bool {
		m, err := getMasterJSON(url)
		last = m
		return err == nil && m.Status == "ALIVE" && m.AliveWorkers == 2
	}, 60*time.Second, 200*time.Millisecond, "master never saw both workers: %+v", last)
	var got []string
	for _, w := range last.Workers {
		got = append(got, w.Host)
	}
	sort.Strings(got)
	assert.Equal(t, hosts, got, "each worker binds the address of its own host")

	out, code = h.run(t, nil, "stop-all.sh", "--wait")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "127.0.0.2: stopping sparkd worker")
	assert.Contains(t, out, "stopping sparkd master")
	for _, host := range hosts {
		files, _ := filepath.Glob(filepath.Join(hostDir(host), "pids", "*.pid"))
		assert.Empty(t, files, "stop removes pid files on %s", host)
	}
	_, err := getMasterJSON(url)
	assert.Error(t, err, "the master is stopped")
}

// TestWorkersShReportsFailedHosts: a host that cannot be reached makes
// workers.sh fail and name it, while the reachable host still runs.
func TestWorkersShReportsFailedHosts(t *testing.T) {
	h := newHome(t, fakeSparkd(t))
	s := startSSHD(t, []string{"127.0.0.2"}, func(string) []string { return []string{"SPARKD_TEST_HOST=two"} })
	env := []string{"SPARK_SSH_OPTS=" + s.opts(), "SPARK_WORKERS=127.0.0.2,127.0.0.9"}
	out, code := h.run(t, env, "workers.sh", "echo", "hello from", "$SPARKD_TEST_HOST")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "127.0.0.2: hello from $SPARKD_TEST_HOST", "arguments are quoted for the remote shell")
	assert.Contains(t, out, "failed on 1 of 2 hosts: 127.0.0.9")

	env = []string{"SPARK_SSH_OPTS=" + s.opts(), "SPARK_WORKERS=127.0.0.2", "SPARK_SSH_FOREGROUND=1"}
	out, code = h.run(t, env, "workers.sh", "sh", "-c", "echo $SPARKD_TEST_HOST")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "127.0.0.2: two")
}
