package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

func TestTaskSubmitFlagErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tasks")
	require.NoError(t, os.WriteFile(file, []byte("true\n"), 0o644))
	m := []string{"--master", "spark://a:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tasks", file, "--exec"}, "--tasks and --exec are exclusive"},
		{[]string{"--tasks", file, "--deploy-mode", "cluster"}, "cannot be combined with --deploy-mode cluster"},
		{[]string{"--tasks", file, "app.sh"}, "--tasks takes no application"},
		{[]string{"--tasks", file, "--resume"}, "--resume needs --output DIR"},
		{[]string{"--output", "x", "app.sh"}, "--output and --resume go with --tasks FILE"},
		{[]string{"--tasks", file, "--conf", "spark.task.maxFailures=0"}, `spark.task.maxFailures="0": want a positive integer`},
		{[]string{"--tasks", file, "--conf", "spark.speculation=maybe"}, `spark.speculation="maybe": want true or false`},
		{[]string{"--tasks", file, "--conf", "spark.speculation.quantile=2"}, "spark.speculation.quantile"},
		{[]string{"--tasks", file, "--conf", "spark.locality.wait=soon"}, "spark.locality.wait"},
		{[]string{"--tasks", file, "--conf", "spark.network.timeout=1s"}, "must be positive and less than spark.network.timeout"},
		{[]string{"--tasks", file, "--executor-cores", "1", "--conf", "spark.task.cpus=2"}, "spark.task.cpus=2 is more than spark.executor.cores=1"},
	} {
		_, code, done := parseSubmit(append(append([]string{}, m...), tc.args...), &bytes.Buffer{}, func(string) string { return "" })
		require.True(t, done, "%v", tc.args)
		assert.Equal(t, 2, code, "%v", tc.args)
		var stderr bytes.Buffer
		parseSubmit(append(append([]string{}, m...), tc.args...), &stderr, func(string) string { return "" })
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}

func TestTaskSubmitKeys(t *testing.T) {
	o, _, done := parseSubmit([]string{"--master", "spark://a:1", "--tasks", "-", "--conf", "spark.speculation=true",
		"--conf", "spark.locality.wait=0", "--conf", "spark.task.maxFailures=2", "--conf", "spark.speculation.multiplier=3",
		"--conf", "spark.network.timeout=30"}, &bytes.Buffer{}, func(string) string { return "" })
	require.False(t, done)
	c := o.taskCfg
	assert.True(t, c.sched.Speculation)
	assert.Equal(t, 2, c.sched.MaxFailures)
	assert.Equal(t, 3.0, c.sched.SpeculationMultiplier)
	assert.Equal(t, 30*time.Second, c.networkTimeout, "a bare number is seconds for spark.network.timeout")
	assert.Negative(t, c.sched.LocalityWait, "0 means no waiting, not the default")
	o, _, _ = parseSubmit([]string{"--master", "spark://a:1", "--tasks", "-"}, &bytes.Buffer{}, func(string) string { return "" })
	assert.Equal(t, task.DefaultConfig(), o.taskCfg.sched, "Spark's defaults")
	assert.Equal(t, 10*time.Second, o.taskCfg.heartbeatInterval)
}

func TestReadTasks(t *testing.T) {
	cmds, prefs, err := readTasks("-", strings.NewReader("echo a\r\n\n  # a comment\n#@prefer h1, h2\necho b\n   \necho c"))
	require.NoError(t, err)
	assert.Equal(t, []string{"echo a", "echo b", "echo c"}, cmds)
	assert.Equal(t, map[int][]string{1: {"h1", "h2"}}, prefs, "#@prefer applies to the next task")

	for _, tc := range []struct{ in, want string }{
		{"\n# only comments\n", "no tasks"},
		{"true\n" + strings.Repeat("x", 2<<20) + "\n", "line 2 is longer than"},
		{"true\necho \x00\n", "line 2 holds a NUL byte"},
		{"#@prefer\ntrue\n", "line 1: #@prefer needs host names"},
		{"#@prefer a\n#@prefer b\ntrue\n", "line 2: a second #@prefer before a task (line 1)"},
		{"true\n#@prefer a\n", "line 2: #@prefer is not followed by a task"},
	} {
		_, _, err := readTasks("-", strings.NewReader(tc.in))
		assert.ErrorContains(t, err, tc.want)
	}
	_, _, err = readTasks(filepath.Join(t.TempDir(), "missing"), nil)
	assert.ErrorContains(t, err, "--tasks")
}

func TestTaskProgressText(t *testing.T) {
	s := progressText(task.Counts{Total: 100, Succeeded: 40, Skipped: 10, Running: 4, FailedAttempts: 2, Speculated: 1}, 4*time.Second)
	assert.Equal(t, "[50/100] done 50, running 4, failed 2, speculated 1, 10.0 tasks/s, ETA 5s", s)
}

func TestExecutorFlagErrors(t *testing.T) {
	env := map[string]string{"SPARK_DRIVER_URL": "http://127.0.0.1:1", "SPARK_APP_ID": "app-1", "SPARK_EXECUTOR_ID": "0", "SPARK_EXECUTOR_CORES": "2"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cores", "zero"}, `--cores "zero": want a positive integer`},
		{[]string{"--network-timeout", "-1s"}, "--network-timeout"},
		{[]string{"--app-id", ""}, "no application id"},
		{[]string{"--driver-url", ""}, "no driver URL"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stderr bytes.Buffer
		code := runExecutorEnv(tc.args, &bytes.Buffer{}, &stderr, getenv)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
	// Nobody listens at the driver URL: the executor gives up after the
	// network timeout, as Spark's does.
	var stderr bytes.Buffer
	code := runExecutorEnv([]string{"--network-timeout", "300ms"}, &bytes.Buffer{}, &stderr, getenv)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "Driver http://127.0.0.1:1 disassociated! Shutting down.")
}

func TestExecutorSecretFromConf(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "spark-defaults.conf"), []byte("spark.authenticate.secret  from-conf\n"), 0o644))
	env := map[string]string{"SPARK_CONF_DIR": dir}
	s, err := executorSecret(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "from-conf", s)
	env[envAuthSecret] = "from-env"
	s, err = executorSecret(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "from-env", s, "the environment wins")
}

// A job whose application gets no executor says so every
// spark.starvation.timeout; interrupting it kills the application.
func TestTaskJobStarvationWarningAndKill(t *testing.T) {
	f := newFakeCluster(t, protocol.MasterAlive, 1)
	o, _, done := parseSubmit([]string{"--master", f.url, "--tasks", "-", "--conf", "spark.starvation.timeout=300ms"},
		&bytes.Buffer{}, func(string) string { return "" })
	require.False(t, done)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runTaskJob(ctx, o, strings.NewReader("true\ntrue\n"), &stdout, &stderr, newCLILogger(&stderr, false))
	assert.Equal(t, 130, code)
	assert.Contains(t, stderr.String(), "Initial job has not accepted any resources; check your cluster UI")
	assert.Contains(t, stderr.String(), "interrupted: killing application app-0")
	assert.Contains(t, stderr.String(), "Job cancelled: 0 of 2 task(s) succeeded")
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, []string{"app-0"}, f.killed, "the application was killed on the master")
}

func TestTaskProgressOnTerminalAndLog(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, term: true, start: time.Now()}
	p.update(task.Counts{Total: 4, Succeeded: 1, Running: 2})
	p.line("Lost executor app/1")
	p.update(task.Counts{Total: 4, Succeeded: 2})
	p.finish()
	out := buf.String()
	assert.True(t, strings.HasPrefix(out, "\r\033[K[1/4] done 1, running 2"), "one live line, redrawn in place: %q", out)
	assert.Contains(t, out, "\r\033[K", "the live line is cleared before a log line")
	assert.Regexp(t, `running 2, failed 0, speculated 0.*\r\033\[K\d\d:\d\d:\d\d\.\d{3} Lost executor app/1\n\r\033\[K\[2/4\]`, out)
	assert.True(t, strings.HasSuffix(out, "\r\033[K"), "finish leaves a clean line")

	buf.Reset()
	p = &progress{w: &buf, start: time.Now()}
	p.update(task.Counts{Total: 4, Succeeded: 1})
	p.line("Lost executor app/1")
	assert.NotContains(t, buf.String(), "\r")
	assert.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3} \[1/4\] done 1.*\n\d\d:\d\d:\d\d\.\d{3} Lost executor app/1\n$`, buf.String())
}
