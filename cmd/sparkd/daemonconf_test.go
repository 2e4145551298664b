package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/internal/testbin"
)

// confHome makes a sparkd home whose conf/ holds files; it returns the home.
func confHome(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

// confEnv is the process environment without SPARK_* variables, plus extra.
func confEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARK_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type loadResult struct {
	cfg        *conf.Config
	positional []string
	code       int
	done       bool
	stdout     string
	stderr     string
}

func loadConf(t *testing.T, role conf.Role, home string, args ...string) loadResult {
	t.Helper()
	var out, errb bytes.Buffer
	fs := flag.NewFlagSet("sparkd "+role.String(), flag.ContinueOnError)
	cfg, pos, code, done := loadDaemonEnv(role, fs, args, confEnv("SPARK_HOME="+home), &out, &errb)
	return loadResult{cfg, pos, code, done, out.String(), errb.String()}
}

func TestLoadDaemonFlags(t *testing.T) {
	tests := []struct {
		name string
		role conf.Role
		args []string
		key  string
		want string // value and source
	}{
		{"master --host", conf.RoleMaster, []string{"--host", "m1"}, conf.KeyMasterHost, "m1 flag --host"},
		{"master -h", conf.RoleMaster, []string{"-h", "m1"}, conf.KeyMasterHost, "m1 flag -h"},
		{"master --port", conf.RoleMaster, []string{"--port", "1"}, conf.KeyMasterPort, "1 flag --port"},
		{"master -p=", conf.RoleMaster, []string{"-p=2"}, conf.KeyMasterPort, "2 flag -p"},
		{"last one wins across aliases", conf.RoleMaster, []string{"--port", "1", "-p", "2"}, conf.KeyMasterPort, "2 flag -p"},
		{"master --webui-port", conf.RoleMaster, []string{"--webui-port", "0"}, conf.KeyMasterUIPort, "0 flag --webui-port"},
		{"worker --webui-port", conf.RoleWorker, []string{"--webui-port", "9", "spark://m"}, conf.KeyWorkerUIPort, "9 flag --webui-port"},
		{"worker -c", conf.RoleWorker, []string{"-c", "3", "spark://m"}, conf.KeyWorkerCores, "3 flag -c"},
		{"worker --memory", conf.RoleWorker, []string{"--memory", "2g", "spark://m"}, conf.KeyWorkerMemory, "2g flag --memory"},
		{"worker -d", conf.RoleWorker, []string{"-d", "/w", "spark://m"}, conf.KeyWorkerDir, "/w flag -d"},
		{"worker --port", conf.RoleWorker, []string{"--port", "5", "spark://m"}, conf.KeyWorkerPort, "5 flag --port"},
		{"worker master argument", conf.RoleWorker, []string{"spark://m1,m2:1"}, conf.KeyMaster, "spark://m1,m2:1 command-line master URL argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A lower source sets the same key, so the flag must win over it.
			home := confHome(t, map[string]string{"conf/spark-env.sh": "SPARK_MASTER_PORT=7\nSPARK_WORKER_CORES=7\n"})
			r := loadConf(t, tt.role, home, tt.args...)
			require.Equal(t, 0, r.code, r.stderr)
			require.False(t, r.done)
			v, ok := r.cfg.Get(tt.key)
			require.True(t, ok)
			assert.Equal(t, tt.want, v.Raw+" "+v.Source.String())
		})
	}
}

func TestLoadDaemonFiles(t *testing.T) {
	home := confHome(t, map[string]string{
		"other.properties": "spark.deploy.retainedDrivers = 5\n",
		"sparkd.toml":      "[spark.deploy]\nretainedApplications = 6\n",
	})
	r := loadConf(t, conf.RoleMaster, home, "--properties-file", filepath.Join(home, "other.properties"), "--config", filepath.Join(home, "sparkd.toml"))
	require.Equal(t, 0, r.code, r.stderr)
	m, err := r.cfg.Master()
	require.NoError(t, err)
	assert.Equal(t, 5, m.RetainedDrivers)
	assert.Equal(t, 6, m.RetainedApplications)
}

func TestLoadDaemonExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		role   conf.Role
		files  map[string]string
		args   []string
		code   int
		stderr string // substring of the single stderr line ("" = no output)
	}{
		{"help", conf.RoleMaster, nil, []string{"--help"}, 0, "Usage"},
		{"unknown flag", conf.RoleMaster, nil, []string{"--bogus"}, 2, "flag provided but not defined"},
		{"master positional", conf.RoleMaster, nil, []string{"spark://x"}, 2, `unexpected argument "spark://x"`},
		{"two master URL arguments", conf.RoleWorker, nil, []string{"spark://a", "spark://b"}, 2, "want one master URL argument"},
		{"bad flag value", conf.RoleMaster, nil, []string{"--port", "x"}, 1, `sparkd master: conf: spark.master.port="x" (from flag --port): not a port number`},
		{"missing properties file", conf.RoleMaster, nil, []string{"--properties-file", "/nonexistent/p.conf"}, 1, "/nonexistent/p.conf"},
		{"missing TOML", conf.RoleMaster, nil, []string{"--config", "/nonexistent/c.toml"}, 1, "/nonexistent/c.toml"},
		{"spark-env.sh syntax", conf.RoleMaster, map[string]string{"conf/spark-env.sh": "if then\n"}, nil, 1, "spark-env.sh"},
		{"worker without master", conf.RoleWorker, nil, nil, 1, `sparkd worker: conf: spark.master="" (from default): no master URL`},
		{"worker bad master", conf.RoleWorker, nil, []string{"mesos://m:5050"}, 1, `spark.master="mesos://m:5050" (from command-line master URL argument)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadConf(t, tt.role, confHome(t, tt.files), tt.args...)
			assert.Equal(t, tt.code, r.code)
			assert.True(t, r.done)
			assert.Nil(t, r.cfg)
			assert.Contains(t, r.stderr, tt.stderr)
			if tt.code == 1 {
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			}
		})
	}
}

func TestLoadDaemonPrintConfig(t *testing.T) {
	r := loadConf(t, conf.RoleWorker, confHome(t, nil), "--print-config", "-m", "3g", "spark://m1:7077,m2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, r.done)
	assert.Empty(t, r.stderr)
	assert.Regexp(t, `(?m)^spark\.worker\.memory +=\s+3g +# flag -m$`, r.stdout)
	assert.Regexp(t, `(?m)^spark\.master +=\s+spark://m1:7077,m2 +# command-line master URL argument$`, r.stdout)

	// An invalid configuration is still printed (that is how an operator
	// debugs it), followed by the one error line and exit 1.
	r = loadConf(t, conf.RoleMaster, confHome(t, nil), "--print-config", "--webui-port", "99999")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "spark.master.ui.port")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"))
	assert.Contains(t, r.stderr, `spark.master.ui.port="99999" (from flag --webui-port)`)
}

// runSparkd runs the real binary with env and returns exit code, stdout, stderr.
func runSparkd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("sparkd %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	case <-time.After(60 * time.Second):
		t.Fatalf("sparkd %v did not exit within 60s; stderr: %s", args, errb.String())
	}
	return -1, "", ""
}

// The acceptance test: bin/sparkd master --print-config with a
// spark-env.sh that sets the HA options and the ports shows each value with
// its source.
func TestSparkdMasterPrintConfig(t *testing.T) {
	home := confHome(t, map[string]string{
		"conf/spark-env.sh": `# HA, as the Spark docs say to configure it
SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=zk1:2181,zk2:2181,zk3:2181 -Dspark.deploy.zookeeper.dir=/x"
SPARK_MASTER_PORT=7177
SPARK_MASTER_WEBUI_PORT=8180
`,
		"conf/spark-defaults.conf": "spark.deploy.retainedDrivers 50\n",
	})
	envFile := filepath.Join(home, "conf", "spark-env.sh")
	code, stdout, stderr := runSparkd(t, confEnv("SPARK_HOME="+home), "master", "--print-config", "--host", "m1")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	for _, want := range [][2]string{
		{conf.KeyRecoveryMode, "ZOOKEEPER  # SPARK_DAEMON_JAVA_OPTS in " + envFile},
		{conf.KeyZKURL, "zk1:2181,zk2:2181,zk3:2181  # SPARK_DAEMON_JAVA_OPTS in " + envFile},
		{conf.KeyZKDir, "/x  # SPARK_DAEMON_JAVA_OPTS in " + envFile},
		{conf.KeyMasterPort, "7177  # SPARK_MASTER_PORT in " + envFile},
		{conf.KeyMasterUIPort, "8180  # SPARK_MASTER_WEBUI_PORT in " + envFile},
		{conf.KeyMasterHost, "m1  # flag --host"},
		{conf.KeyRetainedDrivers, "50  # " + filepath.Join(home, "conf", "spark-defaults.conf") + ":1"},
		{conf.KeyZKSessionTimeout, "10s  # default"},
	} {
		value, source, _ := strings.Cut(want[1], "  # ")
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(want[0])+` += `+regexp.QuoteMeta(value)+` +# `+regexp.QuoteMeta(source)+`$`, stdout, want[0])
	}
}

// The acceptance test: a bad configuration exits 1 with one clear
// line naming the key, the value and the source, and no panic trace.
func TestSparkdBadConfigOneLine(t *testing.T) {
	home := confHome(t, map[string]string{
		"conf/spark-env.sh": `SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEPER -Dspark.deploy.zookeeper.url=zk1:2181"` + "\n",
	})
	envFile := filepath.Join(home, "conf", "spark-env.sh")
	for _, args := range [][]string{{"master"}, {"master", "--print-config"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runSparkd(t, confEnv("SPARK_HOME="+home), args...)
			assert.Equal(t, 1, code)
			assert.Equal(t, `sparkd master: conf: spark.deploy.recoveryMode="ZOOKEPER" (from SPARK_DAEMON_JAVA_OPTS in `+envFile+
				`): unknown recovery mode; want NONE, FILESYSTEM or ZOOKEEPER`+"\n", stderr)
		})
	}
	code, _, stderr := runSparkd(t, confEnv("SPARK_HOME="+home, "SPARK_WORKER_MEMORY=12q"), "worker", "spark://m1:7077")
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	assert.Contains(t, stderr, `spark.worker.memory="12q" (from SPARK_WORKER_MEMORY (environment))`)
	assert.NotContains(t, stderr, "goroutine")
}

// Warnings while loading the configuration use the daemons' Spark line
// format ("yy/MM/dd HH:mm:ss WARN conf: ..."), not logrus's
// time="..." level=warning text, which operators' greps miss.
func TestLoadDaemonWarningsInSparkFormat(t *testing.T) {
	r := loadConf(t, conf.RoleMaster, confHome(t, map[string]string{"conf/spark-defaults.conf": "spark.deploy.recoverymode ZOOKEEPER\n"}),
		"--print-config")
	assert.Equal(t, 0, r.code)
	assert.Regexp(t, `(?m)^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN conf: spark.deploy.recoverymode is not a key sparkd knows`, r.stderr)
	assert.NotContains(t, r.stderr, "level=warning")
}

// fakeMachine resolves names from hosts and lists ifaces.
func fakeMachine(hosts map[string][]string, ifaces ...netInterface) machine {
	return machine{
		lookupIP: func(host string) ([]net.IP, error) {
			addrs, ok := hosts[host]
			if !ok {
				return nil, errors.New("no such host")
			}
			ips := make([]net.IP, len(addrs))
			for i, a := range addrs {
				ips[i] = net.ParseIP(a)
			}
			return ips, nil
		},
		interfaces: func() ([]netInterface, error) { return ifaces, nil },
	}
}

func iface(name string, addrs ...string) netInterface {
	ni := netInterface{name: name}
	for _, a := range addrs {
		ni.addrs = append(ni.addrs, net.ParseIP(a))
	}
	return ni
}

// The default host is the host name unless it resolves to loopback (Debian's
// 127.0.1.1); then the first other interface address, as Spark's
// Utils.findLocalInetAddress picks it, with Spark's warning.
func TestDefaultHostAvoidsLoopback(t *testing.T) {
	lo := iface("lo", "127.0.0.1", "::1")
	eth0 := iface("eth0", "fe80::1", "fd00::5", "10.0.0.5")
	tests := []struct {
		name       string
		m          machine
		want       string
		from       string
		warnPrefix string
	}{
		{"resolves elsewhere", fakeMachine(map[string][]string{"h": {"10.0.0.9"}}, lo, eth0), "h", "", ""},
		{"does not resolve", fakeMachine(nil, lo, eth0), "h", "", ""},
		{"debian 127.0.1.1", fakeMachine(map[string][]string{"h": {"127.0.1.1"}}, lo, eth0), "10.0.0.5",
			"interface eth0, as host name h resolves to loopback 127.0.1.1",
			"Your hostname, h resolves to a loopback address: 127.0.1.1; using 10.0.0.5 instead (on interface eth0)"},
		{"listener would bind the IPv4 loopback", fakeMachine(map[string][]string{"h": {"fd00::9", "127.0.0.1"}}, lo, eth0), "10.0.0.5",
			"interface eth0, as host name h resolves to loopback 127.0.0.1",
			"Your hostname, h resolves to a loopback address: 127.0.0.1; using 10.0.0.5 instead (on interface eth0)"},
		{"IPv4 address of another host is kept", fakeMachine(map[string][]string{"h": {"::1", "10.0.0.9"}}, lo, eth0), "h", "", ""},
		{"first interface with an address", fakeMachine(map[string][]string{"h": {"127.0.1.1"}}, lo, iface("tun0", "fe80::2"), iface("eth1", "fd00::7"), eth0), "fd00::7",
			"interface eth1, as host name h resolves to loopback 127.0.1.1",
			"Your hostname, h resolves to a loopback address: 127.0.1.1; using fd00::7 instead (on interface eth1)"},
		{"only lo", fakeMachine(map[string][]string{"h": {"127.0.1.1"}}, lo), "h", "",
			"Your hostname, h resolves to a loopback address: 127.0.1.1, but we couldn't find any external IP address!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warnings []string
			host, from := defaultHost("h", tt.m, func(w string) { warnings = append(warnings, w) })
			assert.Equal(t, tt.want, host)
			assert.Equal(t, tt.from, from)
			if tt.warnPrefix == "" {
				assert.Empty(t, warnings)
				return
			}
			assert.Equal(t, []string{tt.warnPrefix, "Set SPARK_LOCAL_IP if you need to bind to another address"}, warnings)
		})
	}
}

// With no host given, a daemon on a machine whose host name resolves to
// loopback binds and advertises its interface address: --print-config says
// why, and a daemon that runs logs Spark's warning in its log format. A host given, or
// SPARK_LOCAL_IP, is used as it is, with no warning.
func TestLoadDaemonDefaultHost(t *testing.T) {
	saved := thisMachine
	t.Cleanup(func() { thisMachine = saved })
	hostName, err := os.Hostname()
	require.NoError(t, err)
	thisMachine = fakeMachine(map[string][]string{hostName: {"127.0.1.1"}}, iface("lo", "127.0.0.1"), iface("eth0", "10.0.0.5"))

	r := loadConf(t, conf.RoleMaster, confHome(t, nil), "--print-config")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^spark\.master\.host += 10\.0\.0\.5 +# default, from interface eth0, as host name `+regexp.QuoteMeta(hostName)+` resolves to loopback 127\.0\.1\.1$`, r.stdout)
	assert.Empty(t, r.stderr, "--print-config shows why in the source column")

	r = loadConf(t, conf.RoleWorker, confHome(t, nil), "spark://m:7077")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN conf: Your hostname, `+regexp.QuoteMeta(hostName)+` resolves to a loopback address: 127\.0\.1\.1; using 10\.0\.0\.5 instead \(on interface eth0\)$`, r.stderr)
	wc, err := r.cfg.Worker()
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.5", wc.Host)

	r = loadConf(t, conf.RoleWorker, confHome(t, nil), "--host", hostName, "spark://m:7077")
	require.Equal(t, 0, r.code, r.stderr)
	wc, err = r.cfg.Worker()
	require.NoError(t, err)
	assert.Equal(t, hostName, wc.Host, "an explicit host is kept")
	assert.Empty(t, r.stderr)

	home := confHome(t, map[string]string{"conf/spark-env.sh": "SPARK_LOCAL_IP=10.9.9.9\n"})
	r = loadConf(t, conf.RoleMaster, home, "--print-config")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^spark\.master\.host += 10\.9\.9\.9 +# default, from spark\.local\.ip$`, r.stdout)
	assert.Regexp(t, `(?m)^spark\.local\.ip += 10\.9\.9\.9 +# SPARK_LOCAL_IP in `+regexp.QuoteMeta(filepath.Join(home, "conf", "spark-env.sh"))+`$`, r.stdout)
	assert.Empty(t, r.stderr)

	// A bad configuration still gets its one line, without the host warning.
	r = loadConf(t, conf.RoleWorker, confHome(t, nil), "--cores", "lots", "spark://m:7077")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
}
