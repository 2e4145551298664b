package main

// End-to-end tests of `sparkd submit --tasks`: real ZooKeeper, two masters,
// three workers and the job's executor backends, all separate processes.
// One cluster serves the scenarios in turn (starting one costs seconds on a
// small machine); a scenario that kills a daemon restarts it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

// Short timeouts so that losses are noticed in seconds.
var taskTestConf = []string{
	"--conf", "spark.network.timeout=3s",
	"--conf", "spark.executor.heartbeatInterval=500ms",
	"--executor-memory", "64m",
}

// taskJob is one running `sparkd submit --tasks`.
type taskJob struct {
	t      testing.TB
	cmd    *exec.Cmd
	out    *cluster.SyncBuffer
	errOut *cluster.SyncBuffer
	done   chan struct{}
	start  time.Time
	dir    string // --output
}

var pidRE = regexp.MustCompile(`Registered executor (\S+) on \S+ \(pid (\d+)\)`)
var grantRE = regexp.MustCompile(`Executor (\S+) granted on worker (\S+) `)

// startTaskJob writes cmds as a task file and starts submit on it.
func startTaskJob(t testing.TB, c *cluster.Cluster, out string, cmds []string, args ...string) *taskJob {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tasks.txt")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(cmds, "\n")+"\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	all := append([]string{"submit", "--tasks", file}, taskTestConf...)
	if out != "" {
		all = append(all, "--output", out)
	}
	j := &taskJob{t: t, cmd: c.Command(ctx, append(all, args...)...), out: &cluster.SyncBuffer{}, errOut: &cluster.SyncBuffer{},
		done: make(chan struct{}), start: time.Now(), dir: out}
	j.cmd.Stdout, j.cmd.Stderr = j.out, j.errOut
	require.NoError(t, j.cmd.Start())
	go func() { _ = j.cmd.Wait(); cancel(); close(j.done) }()
	t.Cleanup(func() {
		cancel()
		<-j.done
		for _, pid := range j.pids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() || os.Getenv("SPARKD_TEST_LOG_JOBS") != "" {
			t.Logf("submit stdout:\n%s\nsubmit stderr:\n%s", j.out.String(), j.errOut.String())
		}
	})
	return j
}

// pids are the executors that registered with the job's driver, by key.
func (j *taskJob) pidsByKey() map[string]int {
	m := map[string]int{}
	for _, g := range pidRE.FindAllStringSubmatch(j.errOut.String(), -1) {
		n, _ := strconv.Atoi(g[2])
		m[g[1]] = n
	}
	return m
}

func (j *taskJob) pids() []int {
	var out []int
	for _, p := range j.pidsByKey() {
		out = append(out, p)
	}
	return out
}

// wait waits for the job to end and returns its exit code.
func (j *taskJob) wait(timeout time.Duration) int {
	j.t.Helper()
	select {
	case <-j.done:
	case <-time.After(timeout):
		j.t.Fatalf("submit did not finish within %s", timeout)
	}
	return j.cmd.ProcessState.ExitCode()
}

// committed counts part files.
func committed(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "part-") {
			n++
		}
	}
	return n
}

func (j *taskJob) waitCommitted(n int, timeout time.Duration) {
	j.t.Helper()
	require.Eventually(j.t, func() bool { return committed(j.dir) >= n }, timeout, 20*time.Millisecond,
		"%d outputs committed", n)
}

// checkOutputs checks that dir holds exactly part-00000..part-(n-1), each
// with want(i), and nothing else but the empty _temporary.
func checkOutputs(t *testing.T, dir string, n int, want func(i int) string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		if e.Name() != task.TempDir {
			names = append(names, e.Name())
		}
	}
	require.Len(t, names, n, "one part file per task, nothing else")
	for i := 0; i < n; i++ {
		data, err := os.ReadFile(filepath.Join(dir, task.PartName(i)))
		require.NoError(t, err)
		require.Equal(t, want(i), string(data), "content of %s", task.PartName(i))
	}
	tmp, err := os.ReadDir(filepath.Join(dir, task.TempDir))
	require.NoError(t, err)
	assert.Empty(t, tmp, "no attempt output left behind")
}

var overheadRE = regexp.MustCompile(`median runtime overhead per task (\S+)`)

var summaryRE = regexp.MustCompile(`(\d+) of (\d+) task\(s\) succeeded.* in (\S+); attempts: (\d+) launched, (\d+) failed, (\d+) lost with their executor \(re-run, not counted as failures\), (\d+) killed, (\d+) speculative`)

type jobSummaryLine struct {
	succeeded, total, launched, failed, lost, killed, speculative int
	elapsed                                                       time.Duration
}

func parseSummary(t testing.TB, s string) jobSummaryLine {
	t.Helper()
	m := summaryRE.FindStringSubmatch(s)
	require.NotNil(t, m, "a job summary line in %q", s)
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	d, err := time.ParseDuration(m[3])
	require.NoError(t, err)
	return jobSummaryLine{succeeded: n(1), total: n(2), launched: n(4), failed: n(5), lost: n(6), killed: n(7), speculative: n(8), elapsed: d}
}

func echoTasks(n int, sleep string) []string {
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = fmt.Sprintf("sleep %s; echo task-{{TASK_ID}} $TASK_ID", sleep)
	}
	return cmds
}

func echoWant(i int) string { return fmt.Sprintf("task-%d %d\n", i, i) }

// parentOf reads a process's parent pid from /proc.
func parentOf(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

// dumpExecutorLogs writes the tail of every executor stderr file of the
// cluster's workers to the test log.
func dumpExecutorLogs(t *testing.T, c *cluster.Cluster) {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "work", "*", "*", "*", "stderr"))
	for _, f := range files {
		t.Logf("---- %s ----\n%s", f, cluster.Tail(f, 15))
	}
}

func TestTaskJobsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts ZooKeeper and sparkd processes")
	}
	cluster.RequireDaemons(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 3, ZooKeeper: 1, WorkerCores: 2, WorkerTimeout: 4 * time.Second})
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SPARKD_TEST_LOG_JOBS") != "" {
			dumpExecutorLogs(t, c)
		}
	})

	t.Run("ExecutorKilledMidJob", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		j := startTaskJob(t, c, out, echoTasks(200, "0.05"), "--executor-cores", "2")
		j.waitCommitted(40, 60*time.Second)
		pids := j.pidsByKey()
		require.NotEmpty(t, pids)
		keys := make([]string, 0, len(pids))
		for k := range pids {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		victim := keys[0]
		require.NoError(t, syscall.Kill(pids[victim], syscall.SIGKILL))
		require.Equal(t, 0, j.wait(60*time.Second), "the job succeeds")
		checkOutputs(t, out, 200, echoWant)
		s := parseSummary(t, j.out.String())
		assert.Equal(t, 200, s.succeeded)
		assert.Equal(t, 0, s.failed, "the lost executor's tasks are not failures")
		assert.GreaterOrEqual(t, s.lost, 1, "the killed executor was running tasks")
		assert.Contains(t, j.errOut.String(), "Lost executor "+victim)
		assert.Contains(t, j.out.String(), "re-run after an executor loss: task(s) ")
	})

	t.Run("ApplicationUI", func(t *testing.T) {
		j := startTaskJob(t, c, "", echoTasks(12, "0.4"), "--executor-cores", "1", "--conf", "spark.ui.port=0")
		var base string
		require.Eventually(t, func() bool {
			m := regexp.MustCompile(`started at (http://\S+)`).FindStringSubmatch(j.errOut.String())
			if m != nil {
				base = m[1]
			}
			return m != nil
		}, 20*time.Second, 10*time.Millisecond, "the application UI started")
		type jobJSON struct {
			Status         string `json:"status"`
			NumTasks       int    `json:"numTasks"`
			NumActiveTasks int    `json:"numActiveTasks"`
			Tasks          []struct {
				Status     string `json:"status"`
				ExecutorID string `json:"executorId"`
				Host       string `json:"host"`
			} `json:"tasks"`
		}
		rpc := protocol.NewClient(2*time.Second, "")
		var app string
		var jobs []jobJSON
		require.Eventually(t, func() bool {
			var apps []struct {
				ID string `json:"id"`
			}
			if rpc.Call(context.Background(), http.MethodGet, base, "/api/v1/applications", nil, &apps) != nil || len(apps) == 0 {
				return false
			}
			app = apps[0].ID
			return rpc.Call(context.Background(), http.MethodGet, base, "/api/v1/applications/"+app+"/jobs", nil, &jobs) == nil &&
				len(jobs) == 1 && jobs[0].NumActiveTasks >= 2
		}, 30*time.Second, 20*time.Millisecond, "a running job in the UI")
		assert.Equal(t, "RUNNING", jobs[0].Status)
		assert.Equal(t, 12, jobs[0].NumTasks)
		assert.NotEmpty(t, jobs[0].Tasks[0].ExecutorID)
		assert.Equal(t, "127.0.0.1", jobs[0].Tasks[0].Host)
		var execs []struct {
			ID         string `json:"id"`
			TotalCores int    `json:"totalCores"`
			IsActive   bool   `json:"isActive"`
		}
		require.NoError(t, rpc.Call(context.Background(), http.MethodGet, base, "/api/v1/applications/"+app+"/executors", nil, &execs))
		require.NotEmpty(t, execs)
		assert.Equal(t, 1, execs[0].TotalCores)
		leader, _, err := c.WaitLeader(10 * time.Second)
		require.NoError(t, err)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/app/?appId=%s", c.Masters[leader].UIPort, app))
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(page), `<a href="`+base+`">Application Detail UI</a>`, "the master UI links the application UI")
		resp, err = http.Get(base + "/metrics")
		require.NoError(t, err)
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Regexp(t, `(?m)^sparkd_driver_tasks_started_total [1-9]`, string(metrics))
		require.Equal(t, 0, j.wait(60*time.Second))
	})

	t.Run("MasterKilledMidJob", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		j := startTaskJob(t, c, out, echoTasks(120, "0.1"), "--executor-cores", "1")
		j.waitCommitted(20, 60*time.Second)
		old, _, err := c.Leader()
		require.NoError(t, err)
		c.Masters[old].Kill()
		require.Equal(t, 0, j.wait(60*time.Second), "the job completes")
		checkOutputs(t, out, 120, echoWant)
		s := parseSummary(t, j.out.String())
		assert.Equal(t, 120, s.launched, "no task ran twice because of the failover")
		assert.Equal(t, 0, s.lost)
		assert.Equal(t, 0, s.failed)
		_, _, err = c.WaitNewLeader(old, 0, 30*time.Second)
		require.NoError(t, err)
		c.RestartMaster(old)
	})

	t.Run("TaskAlwaysFails", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		cmds := echoTasks(6, "0")
		cmds[3] = "echo boom-{{ATTEMPT}} >&2; exit 3"
		j := startTaskJob(t, c, out, cmds, "--executor-cores", "1")
		code := j.wait(60 * time.Second)
		assert.Equal(t, 1, code, "non-zero exit")
		e := j.errOut.String()
		assert.Contains(t, e, "Job failed: ")
		assert.Contains(t, e, "task 3: FAILED (spark.task.maxFailures=4) after 4 failed attempt(s); last error: exit status 3; stderr: boom-3")
		assert.NoFileExists(t, filepath.Join(out, task.PartName(3)))
	})

	// no-straggler time, then one executor that hangs on every task, with
	// speculation on.
	var base time.Duration
	const specTasks = 48
	t.Run("SpeculationBaseline", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		j := startTaskJob(t, c, out, echoTasks(specTasks, "0.2"), "--executor-cores", "1")
		require.Equal(t, 0, j.wait(60*time.Second))
		base = parseSummary(t, j.out.String()).elapsed
	})
	t.Run("SpeculationBeatsStraggler", func(t *testing.T) {
		require.NotZero(t, base)
		out := filepath.Join(t.TempDir(), "out")
		cmds := make([]string, specTasks)
		for i := range cmds {
			cmds[i] = `if [ "$SPARK_EXECUTOR_ID" = 1 ]; then sleep 30; fi; sleep 0.2; echo task-{{TASK_ID}} $TASK_ID`
		}
		j := startTaskJob(t, c, out, cmds, "--executor-cores", "1", "--conf", "spark.speculation=true")
		require.Equal(t, 0, j.wait(60*time.Second))
		checkOutputs(t, out, specTasks, echoWant)
		s := parseSummary(t, j.out.String())
		t.Logf("no straggler: %s; one hung executor with speculation: %s (%.2fx)", base, s.elapsed, s.elapsed.Seconds()/base.Seconds())
		assert.GreaterOrEqual(t, s.speculative, 1)
		assert.GreaterOrEqual(t, s.killed, 1, "the straggling attempt is killed")
		assert.LessOrEqual(t, s.elapsed.Seconds(), 1.5*base.Seconds()+1, "within about 1.5x the no-straggler time (the hung executor alone would take 30 s)")
	})

	t.Run("WorkerLostMidJob", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		j := startTaskJob(t, c, out, echoTasks(120, "0.1"), "--executor-cores", "1")
		j.waitCommitted(20, 60*time.Second)
		w := c.Workers[2]
		suffix := "-" + strconv.Itoa(w.Port)
		var victims []int
		pids := j.pidsByKey()
		for _, g := range grantRE.FindAllStringSubmatch(j.errOut.String(), -1) {
			if strings.HasSuffix(g[2], suffix) && pids[g[1]] > 0 {
				victims = append(victims, pids[g[1]])
			}
		}
		require.NotEmpty(t, victims, "executors on %s", w.Name)
		w.Kill()
		for _, p := range victims {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		require.Equal(t, 0, j.wait(60*time.Second), "the job completes")
		checkOutputs(t, out, 120, echoWant)
		s := parseSummary(t, j.out.String())
		assert.Equal(t, 0, s.failed)
		c.RestartWorker(2)
		require.NoError(t, c.WaitWorkers(3, 30*time.Second))
	})

	t.Run("NoTaskOutlivesItsExecutor", func(t *testing.T) {
		pids := t.TempDir()
		cmds := []string{"echo $$ > " + pids + "/{{TASK_ID}}-{{ATTEMPT}}; exec sleep 60"}
		j := startTaskJob(t, c, filepath.Join(t.TempDir(), "out"), cmds, "--executor-cores", "1")
		var taskPid int
		require.Eventually(t, func() bool {
			data, err := os.ReadFile(filepath.Join(pids, "0-0"))
			if err != nil {
				return false
			}
			_, err = fmt.Sscan(string(data), &taskPid)
			return err == nil && taskPid > 0
		}, 30*time.Second, 20*time.Millisecond, "the task started")
		t.Cleanup(func() { _ = syscall.Kill(taskPid, syscall.SIGKILL) })
		var execPid int
		ppid, err := parentOf(taskPid)
		require.NoError(t, err)
		for _, p := range j.pids() {
			if p == ppid {
				execPid = p
			}
		}
		require.NotZero(t, execPid, "the executor running the task")
		require.NoError(t, syscall.Kill(execPid, syscall.SIGKILL))
		require.Eventually(t, func() bool { return syscall.Kill(taskPid, 0) != nil }, 10*time.Second, 20*time.Millisecond,
			"the task (pid %d) died with its SIGKILLed executor (pid %d)", taskPid, execPid)
		require.NoError(t, j.cmd.Process.Signal(os.Interrupt))
		j.wait(30 * time.Second)
	})

	t.Run("InterruptKillsTheApplication", func(t *testing.T) {
		j := startTaskJob(t, c, filepath.Join(t.TempDir(), "out"), echoTasks(20, "30"), "--executor-cores", "1", "--name", "interrupted")
		require.Eventually(t, func() bool { return len(j.pids()) >= 2 }, 30*time.Second, 20*time.Millisecond, "executors registered")
		require.NoError(t, j.cmd.Process.Signal(os.Interrupt))
		assert.Equal(t, 130, j.wait(30*time.Second))
		assert.Contains(t, j.errOut.String(), "interrupted: killing application")
		s := parseSummary(t, j.errOut.String())
		assert.LessOrEqual(t, s.launched, len(j.pids()), "nothing is launched after Ctrl-C: one attempt per executor at most")
		assert.Equal(t, 0, s.lost, "executors told to exit are not lost")
		require.Eventually(t, func() bool {
			i, _, err := c.Leader()
			if err != nil {
				return false
			}
			st, err := c.State(i)
			if err != nil {
				return false
			}
			for _, a := range st.ActiveApps {
				if a.Name == "interrupted" {
					return false
				}
			}
			for _, w := range st.Workers {
				if w.CoresUsed != 0 {
					return false
				}
			}
			return true
		}, 30*time.Second, 50*time.Millisecond, "the application is gone and its cores are free")
		for _, pid := range j.pids() {
			require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 30*time.Second, 50*time.Millisecond, "executor %d exited", pid)
		}
	})

	t.Run("ShellBenchmarkSmoke", func(t *testing.T) {
		r := shellBench(t, c, 50, "true")
		t.Logf("50 tasks: sparkd %s (with --output), %s (without), xargs %s, parallel %s", r.sparkd, r.sparkdNoOut, r.xargs, r.parallel)
		assert.Positive(t, r.overhead)
	})

	t.Run("SubmitKilledThenResumed", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		cmds := echoTasks(80, "0.1")
		j := startTaskJob(t, c, out, cmds, "--executor-cores", "1")
		j.waitCommitted(15, 60*time.Second)
		require.NoError(t, j.cmd.Process.Kill())
		j.wait(10 * time.Second)
		before := committed(out)
		require.Less(t, before, 80, "killed mid-job")
		r := startTaskJob(t, c, out, cmds, "--executor-cores", "1", "--resume")
		require.Equal(t, 0, r.wait(60*time.Second))
		checkOutputs(t, out, 80, echoWant)
		s := parseSummary(t, r.out.String())
		assert.Equal(t, 80-before, s.launched, "only the tasks without a committed output ran")
		assert.Contains(t, r.errOut.String(), fmt.Sprintf("Resuming: %d of 80 task(s) already committed", before))
	})
}

// With spark.authenticate, the driver and its executors sign every request:
// executors find the secret in their worker's spark-defaults.conf (it never
// goes through the master), and the driver refuses unsigned requests.
func TestTaskJobWithAuthentication(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts ZooKeeper and sparkd processes")
	}
	cluster.RequireDaemons(t)
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 1, ZooKeeper: 1, WorkerCores: 2,
		NoWait: true, // the harness probes without the secret; submit waits for the leader itself
		Props:  map[string]string{"spark.authenticate": "true", "spark.authenticate.secret": "task-secret", "spark.master.rest.enabled": "false"}})
	out := filepath.Join(t.TempDir(), "out")
	j := startTaskJob(t, c, out, echoTasks(10, "0.2"), "--executor-cores", "2")
	var driverURL string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`driver at (http://\S+)`).FindStringSubmatch(j.errOut.String())
		if m != nil {
			driverURL = m[1]
		}
		return driverURL != ""
	}, 30*time.Second, 20*time.Millisecond)
	rpc := protocol.NewClient(2*time.Second, "")
	err := rpc.Call(context.Background(), http.MethodPost, driverURL, task.PathRegisterExecutor,
		task.RegisterExecutor{AppID: "x", ExecutorID: "1", Host: "h", Cores: 1}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se, "an unsigned registration")
	assert.Equal(t, http.StatusUnauthorized, se.Code)
	require.Equal(t, 0, j.wait(60*time.Second), "signed executors ran the job")
	checkOutputs(t, out, 10, echoWant)
}
