package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
)

// Benchmarks of the task runtime against xargs -P 2 and GNU parallel -j 2,
// on a local cluster (1 ZooKeeper, 1 master, 1 worker with 2 cores) of real
// processes. One iteration is one whole job of each tool:
//
//	go test ./cmd/sparkd -run '^$' -bench BenchmarkTasks -benchtime 1x
//
// SPARKD_BENCH_TASKS changes the number of tasks (default 5000).

// shellResult is one workload run by the three tools.
type shellResult struct {
	n                       int
	sparkd, xargs, parallel time.Duration // wall time of each tool's whole run (sparkd: with --output)
	sparkdNoOut             time.Duration // sparkd without --output (task stdout to the executor's log)
	overhead                time.Duration // sparkd's median runtime overhead per task
	sparkdRun               time.Duration // the driver's job time (without application registration)
	parallelMissing         bool
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// shellBench runs n copies of cmd as tasks on c (one executor, 2 cores),
// then with xargs -P 2 and parallel -j 2 here.
func shellBench(tb testing.TB, c *cluster.Cluster, n int, cmd string) shellResult {
	tb.Helper()
	dir := tb.TempDir()
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = cmd
	}
	file := filepath.Join(dir, "tasks.txt")
	require.NoError(tb, os.WriteFile(file, []byte(strings.Join(cmds, "\n")+"\n"), 0o644))
	r := shellResult{n: n}

	start := time.Now()
	j := startTaskJob(tb, c, filepath.Join(dir, "out"), cmds, "--executor-cores", "2", "--total-executor-cores", "2")
	require.Equal(tb, 0, j.wait(10*time.Minute), "sparkd job")
	r.sparkd = time.Since(start)
	s := parseSummary(tb, j.out.String())
	require.Equal(tb, n, s.succeeded)
	r.sparkdRun = s.elapsed
	if m := overheadRE.FindStringSubmatch(j.out.String()); m != nil {
		r.overhead, _ = time.ParseDuration(m[1])
	}

	start = time.Now()
	j = startTaskJob(tb, c, "", cmds, "--executor-cores", "2", "--total-executor-cores", "2")
	require.Equal(tb, 0, j.wait(10*time.Minute), "sparkd job without --output")
	r.sparkdNoOut = time.Since(start)

	run := func(name string, args ...string) (time.Duration, error) {
		in, err := os.Open(file)
		require.NoError(tb, err)
		defer in.Close()
		x := exec.Command(name, args...)
		x.Stdin = in
		start := time.Now()
		err = x.Run()
		return time.Since(start), err
	}
	var err error
	r.xargs, err = run("xargs", "-d", "\n", "-P", "2", "-n", "1", "/bin/sh", "-c")
	require.NoError(tb, err, "xargs")
	if _, lerr := exec.LookPath("parallel"); lerr != nil {
		r.parallelMissing = true
	} else {
		r.parallel, err = run("parallel", "-j", "2")
		require.NoError(tb, err, "parallel")
	}
	return r
}

func (r shellResult) report(b *testing.B) {
	b.ReportMetric(rate(r.n, r.sparkd), "sparkd-tasks/s")
	b.ReportMetric(rate(r.n, r.sparkdNoOut), "sparkd-noout-tasks/s")
	b.ReportMetric(rate(r.n, r.xargs), "xargs-tasks/s")
	b.ReportMetric(r.xargs.Seconds()/r.sparkd.Seconds(), "sparkd/xargs")
	b.ReportMetric(float64(r.overhead.Microseconds()), "overhead-µs/task")
	line := fmt.Sprintf("%d tasks: sparkd --output %.0f tasks/s (%s, job %s, median runtime overhead %s/task), sparkd without --output %.0f tasks/s (%s), xargs -P 2 %.0f tasks/s (%s)",
		r.n, rate(r.n, r.sparkd), r.sparkd.Round(time.Millisecond), r.sparkdRun.Round(time.Millisecond), r.overhead,
		rate(r.n, r.sparkdNoOut), r.sparkdNoOut.Round(time.Millisecond), rate(r.n, r.xargs), r.xargs.Round(time.Millisecond))
	if !r.parallelMissing {
		b.ReportMetric(rate(r.n, r.parallel), "parallel-tasks/s")
		b.ReportMetric(r.parallel.Seconds()/r.sparkd.Seconds(), "sparkd/parallel")
		line += fmt.Sprintf(", parallel -j 2 %.0f tasks/s (%s)", rate(r.n, r.parallel), r.parallel.Round(time.Millisecond))
	}
	b.Log(line)
}

func benchTasks() int {
	if v, err := strconv.Atoi(os.Getenv("SPARKD_BENCH_TASKS")); err == nil && v > 0 {
		return v
	}
	return 5000
}

func BenchmarkTasks(b *testing.B) {
	cluster.RequireDaemons(b)
	c := cluster.Start(b, cluster.Options{Masters: 1, Workers: 1, ZooKeeper: 1, WorkerCores: 2})
	n := benchTasks()
	for _, w := range []struct{ name, cmd string }{{"true", "true"}, {"10ms", "sleep 0.01"}} {
		b.Run(w.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				shellBench(b, c, n, w.cmd).report(b)
			}
		})
	}
	// One executor of two hangs for 10 s on every task: job time with
	// speculation off and on.
	b.Run("straggler", func(b *testing.B) {
		cmds := make([]string, 20)
		for i := range cmds {
			cmds[i] = `if [ "$SPARK_EXECUTOR_ID" = 1 ]; then sleep 10; fi; sleep 0.1; echo {{TASK_ID}}`
		}
		for i := 0; i < b.N; i++ {
			var times [2]time.Duration
			for k, spec := range []string{"false", "true"} {
				j := startTaskJob(b, c, filepath.Join(b.TempDir(), "out"), cmds, "--executor-cores", "1",
					"--conf", "spark.speculation="+spec)
				require.Equal(b, 0, j.wait(5*time.Minute))
				times[k] = parseSummary(b, j.out.String()).elapsed
			}
			b.ReportMetric(times[0].Seconds(), "off-s")
			b.ReportMetric(times[1].Seconds(), "on-s")
			b.Logf("20 tasks of 100 ms on 2 executors, one hanging 10 s per task: speculation off %s, on %s",
				times[0].Round(time.Millisecond), times[1].Round(time.Millisecond))
		}
	})
}
