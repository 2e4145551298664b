package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// home makes a sparkd home with conf/ holding the given files.
func home(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

// baseEnv is a minimal environment: bash must be found, nothing else set.
func baseEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, extra...)
}

func mustGet(t *testing.T, c *Config, key string) Value {
	t.Helper()
	v, ok := c.Get(key)
	require.True(t, ok, "key %s", key)
	return v
}

// TestPrecedence adds one source per step, lowest first, and checks that each
// overrides everything below it (DESIGN.md, "Configuration").
func TestPrecedence(t *testing.T) {
	type layer struct {
		name  string
		apply func(o *Options, files map[string]string, env *[]string)
		kind  SourceKind
		want  string
	}
	layers := []layer{
		{"default", func(*Options, map[string]string, *[]string) {}, SourceDefault, "7077"},
		{"spark-defaults.conf", func(_ *Options, f map[string]string, _ *[]string) {
			f["conf/spark-defaults.conf"] = "spark.master.port 1001\n"
		}, SourceProperties, "1001"},
		{"TOML", func(o *Options, f map[string]string, _ *[]string) {
			f["sparkd.toml"] = "[spark.master]\nport = 1002\n"
			o.TOMLFile = "sparkd.toml"
		}, SourceTOML, "1002"},
		{"SPARK_DAEMON_JAVA_OPTS", func(_ *Options, _ map[string]string, e *[]string) {
			*e = append(*e, "SPARK_DAEMON_JAVA_OPTS=-Xmx1g -Dspark.master.port=1003")
		}, SourceDaemonOpts, "1003"},
		{"SPARK_MASTER_OPTS", func(_ *Options, _ map[string]string, e *[]string) {
			*e = append(*e, "SPARK_MASTER_OPTS=-Dspark.master.port=1004")
		}, SourceRoleOpts, "1004"},
		{"SPARK_MASTER_PORT", func(_ *Options, _ map[string]string, e *[]string) {
			*e = append(*e, "SPARK_MASTER_PORT=1005")
		}, SourceEnv, "1005"},
		{"flag", func(o *Options, _ map[string]string, _ *[]string) {
			o.Flags = map[string]FlagValue{KeyMasterPort: {Value: "1006", Flag: "--port"}}
		}, SourceFlag, "1006"},
	}
	for n := range layers {
		top := layers[n]
		t.Run(top.name, func(t *testing.T) {
			opts := Options{Role: RoleMaster}
			files := map[string]string{}
			env := baseEnv()
			for _, l := range layers[:n+1] {
				l.apply(&opts, files, &env)
			}
			dir := home(t, files)
			opts.Home, opts.Environ = dir, env
			if opts.TOMLFile != "" {
				opts.TOMLFile = filepath.Join(dir, opts.TOMLFile)
			}
			c, err := Load(opts)
			require.NoError(t, err)
			v := mustGet(t, c, KeyMasterPort)
			assert.Equal(t, top.want, v.Raw)
			assert.Equal(t, top.kind, v.Source.Kind)
			assert.Equal(t, top.kind != SourceDefault, v.IsSet())
			m, err := c.Master()
			require.NoError(t, err)
			assert.Equal(t, top.want, strconv.Itoa(m.Port))
		})
	}
}

// Each role reads only its own -D variable and its own SPARK_* variables.
func TestRoleOptions(t *testing.T) {
	env := baseEnv(
		"SPARK_MASTER_OPTS=-Dspark.worker.timeout=11",
		"SPARK_WORKER_OPTS=-Dspark.worker.timeout=22",
		"SPARK_MASTER_WEBUI_PORT=9090",
		"SPARK_WORKER_WEBUI_PORT=9091",
		"SPARK_MASTER=spark://client:7077",
	)
	m, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: env})
	require.NoError(t, err)
	assert.Equal(t, "11", mustGet(t, m, KeyWorkerTimeout).Raw)
	assert.Equal(t, "9090", mustGet(t, m, KeyMasterUIPort).Raw)
	_, ok := m.Get(KeyWorkerUIPort)
	assert.False(t, ok)
	_, ok = m.Get(KeyMaster)
	assert.False(t, ok, "SPARK_MASTER is spark-daemon.sh's rsync source for daemons")

	w, err := Load(Options{Role: RoleWorker, Home: t.TempDir(), Environ: env})
	require.NoError(t, err)
	assert.Equal(t, "22", mustGet(t, w, KeyWorkerTimeout).Raw)
	assert.Equal(t, "9091", mustGet(t, w, KeyWorkerUIPort).Raw)
	assert.Equal(t, "", mustGet(t, w, KeyMaster).Raw)

	cl, err := Load(Options{Role: RoleClient, Home: t.TempDir(), Environ: env})
	require.NoError(t, err)
	assert.Equal(t, "spark://client:7077", mustGet(t, cl, KeyMaster).Raw)
	_, ok = cl.Get(KeyWorkerTimeout)
	assert.False(t, ok, "clients do not read daemon options")
}

// A higher source can turn a default-true boolean off, and "unset" is not
// "false".
func TestBooleanOff(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   []string
		toml  bool
		kind  SourceKind
	}{
		{"properties", map[string]string{"conf/spark-defaults.conf": "spark.deploy.spreadOut false"}, nil, false, SourceProperties},
		{"TOML", map[string]string{"c.toml": "\"spark.deploy.spreadOut\" = false"}, nil, true, SourceTOML},
		{"TOML string", map[string]string{"c.toml": "[spark.deploy]\nspreadOut = \"FALSE\""}, nil, true, SourceTOML},
		{"-D", nil, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.spreadOut=false"}, false, SourceDaemonOpts},
		{"-D overrides a true TOML", map[string]string{"c.toml": "\"spark.deploy.spreadOut\" = true"}, []string{"SPARK_MASTER_OPTS=-Dspark.deploy.spreadOut=false"}, true, SourceRoleOpts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := home(t, tt.files)
			opts := Options{Role: RoleMaster, Home: dir, Environ: baseEnv(tt.env...)}
			if tt.toml {
				opts.TOMLFile = filepath.Join(dir, "c.toml")
			}
			c, err := Load(opts)
			require.NoError(t, err)
			v := mustGet(t, c, KeySpreadOut)
			assert.True(t, v.IsSet())
			assert.Equal(t, tt.kind, v.Source.Kind)
			m, err := c.Master()
			require.NoError(t, err)
			assert.False(t, m.SpreadOut)
		})
	}
	c, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv()})
	require.NoError(t, err)
	v := mustGet(t, c, KeySpreadOut)
	assert.False(t, v.IsSet())
	m, err := c.Master()
	require.NoError(t, err)
	assert.True(t, m.SpreadOut)
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv()})
	require.NoError(t, err)
	m, err := c.Master()
	require.NoError(t, err)
	assert.Equal(t, 7077, m.Port)
	assert.Equal(t, 8080, m.WebUIPort)
	assert.True(t, m.RESTEnabled)
	assert.Equal(t, 6066, m.RESTPort)
	assert.Equal(t, RecoveryNone, m.RecoveryMode)
	assert.Equal(t, "/spark", m.ZooKeeper.Dir)
	assert.Equal(t, 10*time.Second, m.ZooKeeper.SessionTimeout)
	assert.Equal(t, 15*time.Second, m.ZooKeeper.ConnectionTimeout)
	assert.Equal(t, 60*time.Second, m.WorkerTimeout)
	assert.Equal(t, 60*time.Second, m.RecoveryTimeout)
	assert.Equal(t, 15, m.DeadWorkerPersistence)
	assert.True(t, m.SpreadOut)
	assert.Equal(t, 0, m.DefaultCores)
	assert.Equal(t, 10, m.MaxExecutorRetries)
	assert.Equal(t, 200, m.RetainedApplications)
	assert.Equal(t, 200, m.RetainedDrivers)
	assert.True(t, m.UIKillEnabled)
	assert.False(t, m.AuthEnabled)
	assert.Equal(t, 16, m.MaxPortRetries, "spark.port.maxRetries")
	assert.NotEmpty(t, m.Host)
	assert.Equal(t, filepath.Join(dir, "conf"), c.ConfDir())

	w, err := Load(Options{Role: RoleWorker, Home: dir, Environ: baseEnv(), Flags: map[string]FlagValue{KeyMaster: {Value: "spark://m:1", Flag: "master URL argument"}}})
	require.NoError(t, err)
	wc, err := w.Worker()
	require.NoError(t, err)
	assert.Equal(t, []string{"m:1"}, wc.Masters)
	assert.Equal(t, 0, wc.Port)
	assert.Equal(t, 8081, wc.WebUIPort)
	assert.Positive(t, wc.Cores)
	assert.GreaterOrEqual(t, wc.MemoryMB, 1024)
	assert.Equal(t, filepath.Join(dir, "work"), wc.WorkDir)
	assert.Equal(t, 60*time.Second, wc.Timeout)
	assert.Equal(t, 15*time.Second, wc.HeartbeatInterval())
	assert.True(t, wc.CleanupEnabled)
	assert.Equal(t, 1800*time.Second, wc.CleanupInterval)
	assert.Equal(t, 604800*time.Second, wc.AppDataTTL)
	assert.Equal(t, 10, wc.RetainedExecutorDirs)
	assert.Equal(t, 6, wc.InitialRegistrationRetries)
	assert.Equal(t, 16, wc.MaxRegistrationRetries)
	assert.Equal(t, time.Second, wc.RegistrationInitialInterval)
	assert.Equal(t, 10*time.Second, wc.RegistrationMaxInterval)
	assert.Equal(t, 16, wc.MaxPortRetries, "spark.port.maxRetries")
}

// recoveryTimeout defaults to spark.worker.timeout, whatever set that.
func TestRecoveryTimeoutFollowsWorkerTimeout(t *testing.T) {
	c, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.worker.timeout=5")})
	require.NoError(t, err)
	v := mustGet(t, c, KeyRecoveryTimeout)
	assert.False(t, v.IsSet())
	assert.Equal(t, "default, from spark.worker.timeout", v.Source.String())
	m, err := c.Master()
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, m.RecoveryTimeout)

	c, err = Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.worker.timeout=5 -Dspark.deploy.recoveryTimeout=2500ms")})
	require.NoError(t, err)
	m, err = c.Master()
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, m.RecoveryTimeout)
}

func TestEnvScript(t *testing.T) {
	script := `# comment
SPARK_MASTER_PORT=7177
SPARK_MASTER_WEBUI_PORT=$((8000 + 180))
SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=zk1:2181,zk2:2181 -Dspark.deploy.zookeeper.dir=/x"
SPARK_PUBLIC_DNS="$SPARK_HOME-dns"
echo "hello from spark-env.sh"
echo "to stderr" >&2
[ -n "$NOT_SET" ] && SPARK_MASTER_HOST=never
`
	dir := home(t, map[string]string{"conf/spark-env.sh": script})
	envFile := filepath.Join(dir, "conf", "spark-env.sh")
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_HOME="+dir, "SPARK_MASTER_HOST=inherited")})
	require.NoError(t, err)
	for key, want := range map[string]string{
		KeyMasterPort:   "7177 SPARK_MASTER_PORT in " + envFile,
		KeyMasterUIPort: "8180 SPARK_MASTER_WEBUI_PORT in " + envFile,
		KeyRecoveryMode: "ZOOKEEPER SPARK_DAEMON_JAVA_OPTS in " + envFile,
		KeyZKURL:        "zk1:2181,zk2:2181 SPARK_DAEMON_JAVA_OPTS in " + envFile,
		KeyZKDir:        "/x SPARK_DAEMON_JAVA_OPTS in " + envFile,
		KeyPublicDNS:    dir + "-dns SPARK_PUBLIC_DNS in " + envFile,
		KeyMasterHost:   "inherited SPARK_MASTER_HOST (environment)",
	} {
		v := mustGet(t, c, key)
		assert.Equal(t, want, v.Raw+" "+v.Source.String(), key)
	}
	m, err := c.Master()
	require.NoError(t, err)
	assert.Equal(t, RecoveryZooKeeper, m.RecoveryMode)
	assert.Equal(t, 7177, m.Port)
}

func TestEnvScriptOnce(t *testing.T) {
	dir := home(t, map[string]string{"conf/spark-env.sh": "SPARK_MASTER_PORT=1\n"})
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_ENV_LOADED=1", "SPARK_MASTER_PORT=2")})
	require.NoError(t, err)
	v := mustGet(t, c, KeyMasterPort)
	assert.Equal(t, "2 SPARK_MASTER_PORT (environment)", v.Raw+" "+v.Source.String())

	// The script sees SPARK_ENV_LOADED=1 itself, and SPARK_HOME/SPARK_CONF_DIR.
	dir = home(t, map[string]string{"conf/spark-env.sh": `SPARK_PUBLIC_DNS="$SPARK_ENV_LOADED:$SPARK_HOME:$SPARK_CONF_DIR"`})
	c, err = Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv()})
	require.NoError(t, err)
	assert.Equal(t, "1:"+dir+":"+filepath.Join(dir, "conf"), mustGet(t, c, KeyPublicDNS).Raw)
}

func TestConfDirFromEnv(t *testing.T) {
	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, "spark-env.sh"), []byte("SPARK_MASTER_PORT=3\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(other, "spark-defaults.conf"), []byte("spark.master.ui.port=4\n"), 0o644))
	c, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv("SPARK_CONF_DIR=" + other)})
	require.NoError(t, err)
	assert.Equal(t, "3", mustGet(t, c, KeyMasterPort).Raw)
	v := mustGet(t, c, KeyMasterUIPort)
	assert.Equal(t, "4", v.Raw)
	assert.Equal(t, filepath.Join(other, "spark-defaults.conf")+":1", v.Source.String())

	// SPARK_HOME is used when Options.Home is empty.
	h := home(t, map[string]string{"conf/spark-defaults.conf": "spark.master.ui.port 5"})
	c, err = Load(Options{Role: RoleMaster, Environ: baseEnv("SPARK_HOME=" + h)})
	require.NoError(t, err)
	assert.Equal(t, "5", mustGet(t, c, KeyMasterUIPort).Raw)
	assert.Equal(t, h, c.Home())
}

func TestPropertiesFileFlag(t *testing.T) {
	dir := home(t, map[string]string{
		"conf/spark-defaults.conf": "spark.master.ui.port 1\nspark.deploy.retainedDrivers 7",
		"other.conf":               "spark.master.ui.port  2  \n",
	})
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv(), PropertiesFile: filepath.Join(dir, "other.conf")})
	require.NoError(t, err)
	assert.Equal(t, "2", mustGet(t, c, KeyMasterUIPort).Raw, "values are trimmed, as Spark does")
	assert.False(t, mustGet(t, c, KeyRetainedDrivers).IsSet(), "--properties-file replaces spark-defaults.conf")

	_, err = Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv(), PropertiesFile: filepath.Join(dir, "missing.conf")})
	assert.ErrorIs(t, err, ErrFile)
	assert.ErrorContains(t, err, "missing.conf")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		env     []string
		toml    bool
		is      error
		contain []string
	}{
		{"spark-env.sh syntax error", map[string]string{"conf/spark-env.sh": "X=1\nfoo() {\n"}, nil, false, ErrEnvScript, []string{"spark-env.sh", "syntax error"}},
		{"spark-env.sh exits", map[string]string{"conf/spark-env.sh": "echo bye >&2\nexit 3\n"}, nil, false, ErrEnvScript, []string{"spark-env.sh", "exited", "bye"}},
		{"spark-env.sh set -e failure", map[string]string{"conf/spark-env.sh": "set -e\nfalse\nX=1\n"}, nil, false, ErrEnvScript, []string{"spark-env.sh", "exited"}},
		{"bad properties", map[string]string{"conf/spark-defaults.conf": "a=1\nb=\\u12\n"}, nil, false, ErrSyntax, []string{"spark-defaults.conf", "line 2", "\\u"}},
		{"bad TOML", map[string]string{"c.toml": "spark.master = \n"}, nil, true, ErrSyntax, []string{"c.toml", "line 1"}},
		{"TOML date", map[string]string{"c.toml": "\"spark.worker.timeout\" = 1979-05-27\n"}, nil, true, ErrSyntax, []string{"c.toml", "spark.worker.timeout", "dates"}},
		{"TOML key twice", map[string]string{"c.toml": "\"spark.deploy.spreadOut\" = true\n[spark.deploy]\nspreadOut = false\n"}, nil, true, ErrSyntax, []string{"spark.deploy.spreadOut", "twice"}},
		{"bad quoting", nil, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.a=\"x"}, false, ErrSyntax, []string{"SPARK_DAEMON_JAVA_OPTS (environment)", "unterminated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := home(t, tt.files)
			opts := Options{Role: RoleMaster, Home: dir, Environ: baseEnv(tt.env...)}
			if tt.toml {
				opts.TOMLFile = filepath.Join(dir, "c.toml")
			}
			_, err := Load(opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			for _, s := range tt.contain {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestTOMLFlatten(t *testing.T) {
	kv, err := parseTOML(`
"spark.authenticate" = true
"spark.authenticate.secret" = "s3"
[spark.deploy]
recoveryMode = "ZOOKEEPER"
maxExecutorRetries = -1
[spark.deploy.zookeeper]
url = ["zk1:2181", "zk2:2181"]
sessionTimeout = "4s"
ratio = 0.5
`)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"spark.authenticate":                    "true",
		"spark.authenticate.secret":             "s3",
		"spark.deploy.recoveryMode":             "ZOOKEEPER",
		"spark.deploy.maxExecutorRetries":       "-1",
		"spark.deploy.zookeeper.url":            "zk1:2181,zk2:2181",
		"spark.deploy.zookeeper.sessionTimeout": "4s",
		"spark.deploy.zookeeper.ratio":          "0.5",
	}, kv)
}

// Every Validate error names the key, the value and the source.
func TestValidate(t *testing.T) {
	zk := "-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=zk1:2181 "
	tests := []struct {
		name string
		role Role
		env  []string
		want string
	}{
		{"unknown recovery mode", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryMode=ZOOKEPER"},
			`conf: spark.deploy.recoveryMode="ZOOKEPER" (from SPARK_DAEMON_JAVA_OPTS (environment)): unknown recovery mode; want NONE, FILESYSTEM or ZOOKEEPER`},
		{"rocksdb", RoleMaster, []string{"SPARK_MASTER_OPTS=-Dspark.deploy.recoveryMode=ROCKSDB"},
			`conf: spark.deploy.recoveryMode="ROCKSDB" (from SPARK_MASTER_OPTS (environment)): not supported by sparkd; want NONE, FILESYSTEM or ZOOKEEPER`},
		{"zookeeper without url", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryMode=ZOOKEEPER"},
			`conf: spark.deploy.zookeeper.url="" (from default): spark.deploy.recoveryMode=ZOOKEEPER needs spark.deploy.zookeeper.url (zk1:2181,zk2:2181,...)`},
		{"filesystem without dir", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryMode=FILESYSTEM"},
			`conf: spark.deploy.recoveryMode="FILESYSTEM" (from SPARK_DAEMON_JAVA_OPTS (environment)): FILESYSTEM needs spark.deploy.recoveryDirectory`},
		{"bad zk url", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=zk1:2181,,zk2"},
			`conf: spark.deploy.zookeeper.url="zk1:2181,,zk2" (from SPARK_DAEMON_JAVA_OPTS (environment)): empty server in list`},
		{"bad zk dir", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=" + zk + "-Dspark.deploy.zookeeper.dir=spark/"},
			`conf: spark.deploy.zookeeper.dir="spark/" (from SPARK_DAEMON_JAVA_OPTS (environment)): want an absolute znode path`},
		{"session timeout too short", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=" + zk + "-Dspark.deploy.zookeeper.sessionTimeout=1500"},
			`conf: spark.deploy.zookeeper.sessionTimeout="1500" (from SPARK_DAEMON_JAVA_OPTS (environment)): must be at least 2s, so that the self-fence bound`},
		{"zk auth malformed", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=" + zk + "-Dspark.deploy.zookeeper.auth=nopass"},
			`conf: spark.deploy.zookeeper.auth="******" (from SPARK_DAEMON_JAVA_OPTS (environment)): want user:password`},
		{"zk acl without auth", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=" + zk + "-Dspark.deploy.zookeeper.acl=true"},
			`conf: spark.deploy.zookeeper.acl="true" (from SPARK_DAEMON_JAVA_OPTS (environment)): an ACL needs credentials`},
		{"bad duration", RoleMaster, []string{`SPARK_DAEMON_JAVA_OPTS=-Dspark.worker.timeout="60 seconds"`},
			`conf: spark.worker.timeout="60 seconds" (from SPARK_DAEMON_JAVA_OPTS (environment)): duration "60 seconds": unknown unit`},
		{"bad duration unit", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.worker.timeout=60x"},
			`conf: spark.worker.timeout="60x" (from SPARK_DAEMON_JAVA_OPTS (environment)): duration "60x": unknown unit`},
		{"zero worker timeout", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.worker.timeout=0"},
			`conf: spark.worker.timeout="0" (from SPARK_DAEMON_JAVA_OPTS (environment)): must be positive`},
		{"zero recovery timeout", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryTimeout=0s"},
			`conf: spark.deploy.recoveryTimeout="0s" (from SPARK_DAEMON_JAVA_OPTS (environment)): must be positive`},
		{"port out of range", RoleMaster, []string{"SPARK_MASTER_PORT=70000"},
			`conf: spark.master.port="70000" (from SPARK_MASTER_PORT (environment)): not a port number; want 0-65535 (0 = random)`},
		{"negative port retries", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.port.maxRetries=-1"},
			`conf: spark.port.maxRetries="-1" (from SPARK_DAEMON_JAVA_OPTS (environment)): must be at least 0`},
		{"negative ui port", RoleMaster, []string{"SPARK_MASTER_WEBUI_PORT=-1"},
			`conf: spark.master.ui.port="-1" (from SPARK_MASTER_WEBUI_PORT (environment)): not a port number`},
		{"bad boolean", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.spreadOut=yes"},
			`conf: spark.deploy.spreadOut="yes" (from SPARK_DAEMON_JAVA_OPTS (environment)): not a boolean; want true or false`},
		{"defaultCores zero", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.defaultCores=0"},
			`conf: spark.deploy.defaultCores="0" (from SPARK_DAEMON_JAVA_OPTS (environment)): must be at least 1`},
		{"auth without secret", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.authenticate=true"},
			`conf: spark.authenticate="true" (from SPARK_DAEMON_JAVA_OPTS (environment)): needs a secret in spark.authenticate.secret`},
		{"unknown REST filter", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.master.rest.filters=com.example.Filter"},
			`conf: spark.master.rest.filters="com.example.Filter" (from SPARK_DAEMON_JAVA_OPTS (environment)): unsupported filter "com.example.Filter"; sparkd supports only org.apache.spark.ui.JWSFilter`},
		{"JWSFilter without a key", RoleMaster, []string{"SPARK_DAEMON_JAVA_OPTS=-Dspark.ui.filters=org.apache.spark.ui.JWSFilter"},
			`conf: spark.org.apache.spark.ui.JWSFilter.param.secretKey="" (from default): org.apache.spark.ui.JWSFilter needs a key here`},
		{"JWSFilter with a weak key", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=spark://m:7077 -Dspark.ui.filters=org.apache.spark.ui.JWSFilter -Dspark.org.apache.spark.ui.JWSFilter.param.secretKey=c2hvcnQ"},
			`conf: spark.org.apache.spark.ui.JWSFilter.param.secretKey="******" (from SPARK_WORKER_OPTS (environment)): too short: 40 bits, want at least 256`},
		{"worker without master", RoleWorker, nil,
			`conf: spark.master="" (from default): no master URL`},
		{"worker bad master", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=http://m:1"},
			`conf: spark.master="http://m:1" (from SPARK_WORKER_OPTS (environment)): master URL "http://m:1": scheme "http" is not supported`},
		{"worker memory", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=spark://m", "SPARK_WORKER_MEMORY=lots"},
			`conf: spark.worker.memory="lots" (from SPARK_WORKER_MEMORY (environment)): memory size "lots": want a number`},
		{"worker cores", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=spark://m", "SPARK_WORKER_CORES=0"},
			`conf: spark.worker.cores="0" (from SPARK_WORKER_CORES (environment)): must be at least 1`},
		{"worker timeout too small for a heartbeat", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=spark://m -Dspark.worker.timeout=3ns"},
			`conf: spark.worker.timeout="3ns" (from SPARK_WORKER_OPTS (environment)): too small`},
		{"registration intervals", RoleWorker, []string{"SPARK_WORKER_OPTS=-Dspark.master=spark://m -Dspark.worker.registration.initialInterval=1min"},
			`conf: spark.worker.registration.initialInterval="1min" (from SPARK_WORKER_OPTS (environment)): must not exceed spark.worker.registration.maxInterval (10s)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Options{Role: tt.role, Home: t.TempDir(), Environ: baseEnv(tt.env...)})
			require.NoError(t, err)
			err = c.Validate()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			var ke *KeyError
			require.True(t, errors.As(err, &ke))
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got  %s\nwant %s...", err, tt.want)
		})
	}
}

func TestValidateGood(t *testing.T) {
	env := baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.recoveryMode=zookeeper -Dspark.deploy.zookeeper.url=zk1:2181,zk2:2181/chroot -Dspark.deploy.zookeeper.dir=/x/y" +
		" -Dspark.deploy.zookeeper.sessionTimeout=2000 -Dspark.deploy.zookeeper.connectionTimeout=3 -Dspark.deploy.zookeeper.auth=u:p -Dspark.deploy.zookeeper.acl=TRUE" +
		" -Dspark.master.port=0 -Dspark.master.ui.port=0 -Dspark.master.rest.port=0 -Dspark.deploy.defaultCores=4 -Dspark.deploy.maxExecutorRetries=-1")
	c, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: env})
	require.NoError(t, err)
	m, err := c.Master()
	require.NoError(t, err)
	assert.Equal(t, RecoveryZooKeeper, m.RecoveryMode)
	assert.Equal(t, ZooKeeper{URL: "zk1:2181,zk2:2181/chroot", Dir: "/x/y", SessionTimeout: 2 * time.Second, ConnectionTimeout: 3 * time.Millisecond, Auth: "u:p", ACL: true}, m.ZooKeeper)
	assert.Less(t, m.ZooKeeper.FenceBound(), m.ZooKeeper.SessionTimeout)
	assert.Equal(t, 0, m.Port)
	assert.Equal(t, 4, m.DefaultCores)
	assert.Equal(t, -1, m.MaxExecutorRetries)
}

// The issue's scenario: spark-env.sh sets the HA options and ports, and
// --print-config shows each value with its source.
func TestPrintIssueScenario(t *testing.T) {
	dir := home(t, map[string]string{
		"conf/spark-env.sh": `SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=zk1:2181,zk2:2181 -Dspark.deploy.zookeeper.dir=/x"
SPARK_MASTER_PORT=7177
SPARK_MASTER_WEBUI_PORT=8180
`,
		"conf/spark-defaults.conf": "spark.authenticate true\nspark.authenticate.secret  hunter2\nspark.executor.memory 2g\n",
	})
	envFile := filepath.Join(dir, "conf", "spark-env.sh")
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv(), Flags: map[string]FlagValue{KeyMasterHost: {Value: "m1", Flag: "--host"}}})
	require.NoError(t, err)
	var b bytes.Buffer
	c.Print(&b)
	out := b.String()
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, "#") {
			lines[f[0]] = strings.Join(f[1:], " ")
		}
	}
	assert.Equal(t, "= ZOOKEEPER # SPARK_DAEMON_JAVA_OPTS in "+envFile, lines[KeyRecoveryMode])
	assert.Equal(t, "= zk1:2181,zk2:2181 # SPARK_DAEMON_JAVA_OPTS in "+envFile, lines[KeyZKURL])
	assert.Equal(t, "= /x # SPARK_DAEMON_JAVA_OPTS in "+envFile, lines[KeyZKDir])
	assert.Equal(t, "= 7177 # SPARK_MASTER_PORT in "+envFile, lines[KeyMasterPort])
	assert.Equal(t, "= 8180 # SPARK_MASTER_WEBUI_PORT in "+envFile, lines[KeyMasterUIPort])
	assert.Equal(t, "= m1 # flag --host", lines[KeyMasterHost])
	assert.Equal(t, "= 10s # default", lines[KeyZKSessionTimeout])
	assert.Equal(t, "= 60 # default, from spark.worker.timeout", lines[KeyRecoveryTimeout])
	assert.Equal(t, `= "" # default`, lines[KeyRecoveryDirectory])
	assert.Equal(t, "= ****** # "+filepath.Join(dir, "conf", "spark-defaults.conf")+":2", lines[KeyAuthSecret])
	assert.Equal(t, "= 2g # "+filepath.Join(dir, "conf", "spark-defaults.conf")+":3", lines["spark.executor.memory"], "unknown keys are shown too")
	assert.NotContains(t, out, "hunter2")
	assert.Contains(t, out, "spark-env.sh "+envFile)

	// Aligned: every value column starts at the same offset.
	col := -1
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.Index(l, "= ")
		if col < 0 {
			col = i
		}
		assert.Equal(t, col, i, l)
	}
}

func TestLogLines(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	dir := home(t, map[string]string{
		"conf/spark-env.sh":        "echo noisy script\n[ -n \"$UNSET\" ] && X=1\n",
		"conf/spark-defaults.conf": "spark.deploy.recoverymode ZOOKEEPER\n",
	})
	_, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Xmx1g -Dspark.a=1"), Log: logrus.NewEntry(logger)})
	require.NoError(t, err)
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Level.String()+": "+e.Message)
	}
	assert.Contains(t, msgs, `debug: ignoring JVM option "-Xmx1g" (only -Dspark.* options are read)`)
	assert.Contains(t, msgs, "warning: spark-env.sh: noisy script")
	assert.Contains(t, msgs, "warning: spark-env.sh: last command returned status 1 (ignored, as Spark does)")
	assert.Contains(t, msgs, "warning: spark.deploy.recoverymode is not a key sparkd knows (keys are case-sensitive); did you mean spark.deploy.recoveryMode?")
}

// A near-miss typo in a daemon key used to be silently ignored: with
// -Dspark.deploy.zookeper.url the daemon only said that
// spark.deploy.zookeeper.url was missing. Application keys are not flagged.
func TestTypoedKeyWarns(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	dir := home(t, map[string]string{})
	_, err := Load(Options{Role: RoleMaster, Home: dir, Log: logrus.NewEntry(logger),
		Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.zookeper.url=h:2181 -Dspark.worker.timout=30 -Dspark.executor.memory=2g -Dspark.deploy.somethingElseEntirely=1")})
	require.NoError(t, err)
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Message)
	}
	assert.Contains(t, msgs, "spark.deploy.zookeper.url is not a key sparkd knows; did you mean spark.deploy.zookeeper.url?")
	assert.Contains(t, msgs, "spark.worker.timout is not a key sparkd knows; did you mean spark.worker.timeout?")
	for _, m := range msgs {
		assert.NotContains(t, m, "spark.executor.memory")
		assert.NotContains(t, m, "somethingElseEntirely")
	}
	assert.Equal(t, 0, editDistance("abc", "abc"))
	assert.Equal(t, 1, editDistance("zookeper", "zookeeper"))
	assert.Equal(t, 3, editDistance("", "abc"))
}

// With spark.authenticate=true and nothing said about the REST server, it is
// off (a derived default --print-config explains); without authentication
// it stays on by default.
func TestRESTOffByDefaultWithAuthentication(t *testing.T) {
	dir := home(t, map[string]string{})
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.authenticate=true -Dspark.authenticate.secret=s")})
	require.NoError(t, err)
	m, err := c.Master()
	require.NoError(t, err)
	assert.False(t, m.RESTEnabled)
	v, _ := c.Get(KeyMasterRESTEnabled)
	assert.Equal(t, "default, from spark.authenticate=true", v.Source.String())

	c, err = Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv()})
	require.NoError(t, err)
	m, err = c.Master()
	require.NoError(t, err)
	assert.True(t, m.RESTEnabled)

	// As in Spark 4.1: with a REST filter, or when asked for, the REST
	// server runs with spark.authenticate on.
	const key = "-Dspark.org.apache.spark.ui.JWSFilter.param.secretKey=c3BhcmtkLXRlc3Qta2V5LW9mLWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmc"
	for _, opts := range []string{
		"-Dspark.authenticate=true -Dspark.authenticate.secret=s -Dspark.master.rest.filters=org.apache.spark.ui.JWSFilter " + key,
		"-Dspark.authenticate=true -Dspark.authenticate.secret=s -Dspark.master.rest.enabled=true",
	} {
		c, err = Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=" + opts)})
		require.NoError(t, err)
		m, err = c.Master()
		require.NoError(t, err, opts)
		assert.True(t, m.RESTEnabled, opts)
	}
	assert.True(t, m.AuthEnabled)
}

// A daemon's host, when nobody set it, is SPARK_LOCAL_IP, else what
// Options.DefaultHost picks, else the host name; a host that is set stays.
func TestDefaultHost(t *testing.T) {
	pick := func(h string) (string, string) {
		return "10.0.0.5", "interface eth0, as host name " + h + " resolves to loopback"
	}
	keep := func(string) (string, string) { return "", "" }
	tests := []struct {
		name        string
		role        Role
		env         []string
		host        string // --host, if not ""
		defaultHost func(string) (string, string)
		asked       bool // whether DefaultHost is asked
		want, from  string
	}{
		{"host name", RoleMaster, nil, "", nil, false, hostname(), "default"},
		{"picked", RoleMaster, nil, "", pick, true, "10.0.0.5", "default, from interface eth0, as host name " + hostname() + " resolves to loopback"},
		{"worker picked", RoleWorker, nil, "", pick, true, "10.0.0.5", "default, from interface eth0, as host name " + hostname() + " resolves to loopback"},
		{"pick keeps the host name", RoleWorker, nil, "", keep, true, hostname(), "default"},
		{"SPARK_LOCAL_IP", RoleMaster, []string{"SPARK_LOCAL_IP=192.168.1.7"}, "", pick, false, "192.168.1.7", "default, from " + KeyLocalIP},
		{"worker SPARK_LOCAL_IP", RoleWorker, []string{"SPARK_LOCAL_IP=192.168.1.7"}, "", pick, false, "192.168.1.7", "default, from " + KeyLocalIP},
		{"SPARK_MASTER_HOST wins", RoleMaster, []string{"SPARK_LOCAL_IP=192.168.1.7", "SPARK_MASTER_HOST=m1"}, "", pick, false, "m1", "SPARK_MASTER_HOST (environment)"},
		{"SPARK_LOCAL_HOSTNAME wins", RoleWorker, []string{"SPARK_LOCAL_IP=192.168.1.7", "SPARK_LOCAL_HOSTNAME=w1"}, "", pick, false, "w1", "SPARK_LOCAL_HOSTNAME (environment)"},
		{"--host wins", RoleWorker, []string{"SPARK_LOCAL_IP=192.168.1.7"}, "w2", pick, false, "w2", "flag --host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			var dh func(string) (string, string)
			if tt.defaultHost != nil {
				dh = func(h string) (string, string) {
					asked = true
					assert.Equal(t, hostname(), h)
					return tt.defaultHost(h)
				}
			}
			flags := map[string]FlagValue{KeyMaster: {Value: "spark://m:7077", Flag: "master URL argument"}}
			if tt.host != "" {
				flags[hostKey(tt.role)] = FlagValue{Value: tt.host, Flag: "--host"}
			}
			c, err := Load(Options{Role: tt.role, Home: t.TempDir(), Environ: baseEnv(tt.env...), Flags: flags, DefaultHost: dh})
			require.NoError(t, err)
			v := mustGet(t, c, hostKey(tt.role))
			assert.Equal(t, tt.want, v.Raw)
			assert.Equal(t, tt.from, v.Source.String())
			assert.Equal(t, tt.asked, asked, "DefaultHost is asked only when neither a host nor spark.local.ip is set")
			require.NoError(t, c.Validate())
		})
	}
}

func TestBadLocalIP(t *testing.T) {
	for _, role := range []Role{RoleMaster, RoleWorker} {
		c, err := Load(Options{Role: role, Home: t.TempDir(), Environ: baseEnv("SPARK_LOCAL_IP=10.0.0.1:7077"),
			Flags: map[string]FlagValue{KeyMaster: {Value: "spark://m:7077", Flag: "master URL argument"}}})
		require.NoError(t, err)
		err = c.Validate()
		require.ErrorIs(t, err, ErrInvalid)
		var ke *KeyError
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, KeyLocalIP, ke.Key, role.String())
		assert.Contains(t, err.Error(), "SPARK_LOCAL_IP (environment)")
	}
}

func TestZKEpochFloor(t *testing.T) {
	c, err := Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv()})
	require.NoError(t, err)
	m, err := c.Master()
	require.NoError(t, err)
	assert.Zero(t, m.ZooKeeper.EpochFloor, "no floor by default")

	c, err = Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.zookeeper.epochFloor=8589934592")})
	require.NoError(t, err)
	m, err = c.Master()
	require.NoError(t, err)
	assert.Equal(t, int64(8589934592), m.ZooKeeper.EpochFloor)

	c, err = Load(Options{Role: RoleMaster, Home: t.TempDir(), Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=-Dspark.deploy.zookeeper.epochFloor=-1")})
	require.NoError(t, err)
	_, err = c.Master()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spark.deploy.zookeeper.epochFloor")
}
