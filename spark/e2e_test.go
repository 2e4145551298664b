package spark_test

// End-to-end tests of Go drivers: real ZooKeeper, masters and workers as
// processes, and this test binary as the driver program, which the
// executors fetch from it and run (TestMain serves the registered
// functions when it is started as an executor).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/spark"
	"github.com/sparkd/sparkd/task/appui"
)

// gate is where the "slow" tasks of the test wait: they return once the
// file named by their input exists.
func slow(ctx context.Context, input []byte) ([]byte, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(string(input)); err == nil {
			return []byte("released"), nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func init() {
	spark.Register("test.upper", func(ctx context.Context, in []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(in))), nil
	})
	spark.Register("test.slow", slow)
	spark.Register("test.fail", func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "bad" {
			return nil, errors.New("bad input, as planned")
		}
		return in, nil
	})
	spark.Register("test.panic", func(ctx context.Context, in []byte) ([]byte, error) { panic("planned panic") })
	// Fails its first attempt on each task, succeeds on the retry: the
	// attempt number is not visible to a function, so it keeps a marker
	// file per input.
	spark.Register("test.flaky", func(ctx context.Context, in []byte) ([]byte, error) {
		marker := string(in)
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			return nil, errors.New("first attempt fails")
		}
		return []byte("ok"), nil
	})
}

func TestMain(m *testing.M) {
	spark.ServeIfExecutor()
	os.Exit(m.Run())
}

func conf() map[string]string {
	return map[string]string{
		"spark.executor.memory":            "64m",
		"spark.executor.cores":             "1",
		"spark.network.timeout":            "5s",
		"spark.executor.heartbeatInterval": "500ms",
		"spark.ui.port":                    "0",
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	require.NoError(t, json.Unmarshal(body, v), "GET %s: %s", url, body)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

func TestGoDriverEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 2, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m"})
	log := &cluster.SyncBuffer{}
	cf := conf()
	cf["spark.task.maxFailures"] = "2"
	sc, err := spark.NewContext(spark.Config{Master: c.MasterURLs(), AppName: "go-driver-test", Conf: cf, Log: log})
	require.NoError(t, err)
	t.Cleanup(func() {
		sc.Close()
		if t.Failed() {
			t.Logf("driver log:\n%s", log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	t.Run("results in order", func(t *testing.T) {
		var in [][]byte
		for i := 0; i < 20; i++ {
			in = append(in, []byte(fmt.Sprintf("word-%02d", i)))
		}
		out, err := sc.Run(ctx, "test.upper", in)
		require.NoError(t, err)
		require.Len(t, out, 20)
		for i := range in {
			assert.Equal(t, strings.ToUpper(string(in[i])), string(out[i]))
		}
		red, err := sc.MapReduce(ctx, "test.upper", in[:3], func(a, b []byte) ([]byte, error) { return append(append(a, '+'), b...), nil })
		require.NoError(t, err)
		assert.Equal(t, "WORD-00+WORD-01+WORD-02", string(red))
	})

	t.Run("a failing task fails the job after maxFailures with its error", func(t *testing.T) {
		_, err := sc.Run(ctx, "test.fail", [][]byte{[]byte("good"), []byte("bad")})
		var te *spark.TaskError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, 1, te.Task)
		assert.Equal(t, 2, te.Failures)
		assert.Contains(t, te.LastError, "bad input, as planned")
		_, err = sc.Run(ctx, "test.panic", [][]byte{[]byte("x")})
		require.ErrorAs(t, err, &te)
		assert.Contains(t, te.LastError, "panic: planned panic")
	})

	t.Run("a failed attempt is retried", func(t *testing.T) {
		dir := t.TempDir()
		out, err := sc.Run(ctx, "test.flaky", [][]byte{[]byte(dir + "/a"), []byte(dir + "/b")})
		require.NoError(t, err)
		assert.Equal(t, []string{"ok", "ok"}, []string{string(out[0]), string(out[1])})
	})

	t.Run("bad input is refused with a clear error", func(t *testing.T) {
		_, err := sc.Run(ctx, "no.such", [][]byte{nil})
		require.ErrorContains(t, err, `no task function "no.such" is registered`)
		_, err = sc.Run(ctx, "test.upper", [][]byte{make([]byte, spark.MaxTaskInput+1)})
		require.ErrorContains(t, err, "more than the")
		_, err = spark.NewContext(spark.Config{Master: c.MasterURLs(), Conf: map[string]string{"spark.executor.cors": "1"}})
		require.ErrorContains(t, err, "unknown property spark.executor.cors")
		_, err = spark.NewContext(spark.Config{Master: "http://x:1"})
		require.ErrorContains(t, err, "want spark://host:port")
		_, err = spark.NewContext(spark.Config{Master: c.MasterURLs(), Conf: map[string]string{"spark.executor.memory": "lots"}})
		require.ErrorContains(t, err, "spark.executor.memory")
		_, err = spark.NewContext(spark.Config{Master: "local[0]"})
		require.ErrorContains(t, err, "N at least 1")
		_, err = spark.NewContext(spark.Config{Master: ""})
		if os.Getenv("SPARK_MASTER") == "" {
			require.ErrorContains(t, err, "no master")
		}
		closed, err := spark.NewContext(spark.Config{Master: "local", Log: io.Discard, Conf: map[string]string{"spark.ui.port": "0"}})
		require.NoError(t, err)
		require.NoError(t, closed.Close())
		_, err = closed.Run(ctx, "test.upper", [][]byte{nil})
		require.ErrorContains(t, err, "closed Context")
	})

	t.Run("a corrupted download fails its executors with a clear error, and nothing runs", func(t *testing.T) {
		data := t.TempDir() + "/data.txt"
		require.NoError(t, os.WriteFile(data, []byte("the shipped file"), 0o644))
		log2 := &cluster.SyncBuffer{}
		cf := conf()
		sc2, err := spark.NewContext(spark.Config{Master: c.MasterURLs(), AppName: "corrupt", Conf: cf, Files: []string{data}, Log: log2})
		require.NoError(t, err)
		defer sc2.Close()
		// Changed in place after it was hashed: what the driver serves no
		// longer has the sha256 it announces.
		require.NoError(t, os.WriteFile(data, []byte("THE SHIPPED FILE"), 0o644))
		jctx, jcancel := context.WithTimeout(ctx, 40*time.Second)
		defer jcancel()
		_, err = sc2.Run(jctx, "test.upper", [][]byte{[]byte("x")})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "10 executors in a row failed to start; the last: executor: checksum mismatch: data.txt from http://")
		assert.Contains(t, log2.String(), "failed to start: executor: checksum mismatch: data.txt")
		assert.NotContains(t, log2.String(), "Registered executor", "no executor ran")
		logs, _ := filepath.Glob(filepath.Join(c.Dir, "work", "*", "*", "*", "stderr"))
		mismatch := 0
		for _, l := range logs {
			if b, _ := os.ReadFile(l); strings.Contains(string(b), "checksum mismatch: data.txt from http://") {
				mismatch++
			}
		}
		assert.Positive(t, mismatch, "an executor log names the mismatch")
	})

	t.Run("application UI, its JSON and metrics with a running and a finished job", func(t *testing.T) {
		gate := t.TempDir() + "/release"
		var wg sync.WaitGroup
		var runErr error
		var outs [][]byte
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs, runErr = sc.Run(ctx, "test.slow", [][]byte{[]byte(gate), []byte(gate), []byte(gate)})
		}()
		t.Cleanup(func() { _ = os.WriteFile(gate, nil, 0o644); wg.Wait() })
		base := sc.UIURL()
		var running appui.JobData
		var app string
		require.Eventually(t, func() bool {
			var apps []appui.ApplicationInfo
			getJSON(t, base+"/api/v1/applications", &apps)
			for _, a := range apps {
				if a.Attempts[0].Completed {
					continue
				}
				var jobs []appui.JobData
				getJSON(t, base+"/api/v1/applications/"+a.ID+"/jobs", &jobs)
				if len(jobs) == 1 && jobs[0].Status == "RUNNING" && jobs[0].NumActiveTasks >= 2 {
					running, app = jobs[0], a.ID
					return true
				}
			}
			return false
		}, 20*time.Second, 50*time.Millisecond, "a running job with running tasks")
		assert.Equal(t, "test.slow", running.Name)
		assert.Equal(t, 3, running.NumTasks)
		for _, tk := range running.Tasks {
			assert.Equal(t, "RUNNING", tk.Status)
			assert.NotEmpty(t, tk.ExecutorID)
			assert.Equal(t, "127.0.0.1", tk.Host)
		}
		var execs []appui.ExecutorSummary
		getJSON(t, base+"/api/v1/applications/"+app+"/executors", &execs)
		require.NotEmpty(t, execs)
		active := 0
		for _, x := range execs {
			assert.True(t, x.IsActive)
			assert.Equal(t, 1, x.TotalCores)
			active += x.ActiveTasks
		}
		assert.Equal(t, len(running.Tasks), active)

		// The master UI links the application to this UI.
		page := get(t, fmt.Sprintf("http://127.0.0.1:%d/app/?appId=%s", c.Masters[0].UIPort, app))
		assert.Contains(t, page, `href="`+base+`"`)
		assert.Contains(t, page, "Application Detail UI")

		html := get(t, base+"/jobs/")
		assert.Contains(t, html, "test.slow")
		assert.Contains(t, html, "RUNNING")
		assert.Contains(t, get(t, base+"/executors/"), app)

		require.NoError(t, os.WriteFile(gate, nil, 0o644))
		wg.Wait()
		require.NoError(t, runErr)
		assert.Equal(t, "released", string(outs[2]))
		var jobs []appui.JobData
		getJSON(t, base+"/api/v1/applications/"+app+"/jobs", &jobs)
		require.Len(t, jobs, 1)
		assert.Equal(t, "SUCCEEDED", jobs[0].Status)
		assert.Equal(t, 3, jobs[0].NumCompletedTasks)
		assert.Equal(t, 0, jobs[0].NumActiveTasks)
		assert.NotEmpty(t, jobs[0].CompletionTime)
		var apps []appui.ApplicationInfo
		getJSON(t, base+"/api/v1/applications", &apps)
		assert.GreaterOrEqual(t, len(apps), 5, "one application per job")
		for _, a := range apps {
			assert.True(t, a.Attempts[0].Completed, "application %s completed", a.ID)
		}
		resp, err := http.Get(base + "/api/v1/applications/app-nope/jobs")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)

		metrics := get(t, base+"/metrics")
		for _, name := range []string{"tasks_started_total", "tasks_succeeded_total", "tasks_failed_total", "tasks_speculated_total",
			"tasks_retried_total", "executors_lost_total"} {
			assert.Contains(t, metrics, "sparkd_driver_"+name, "metric %s", name)
		}
		// The failing jobs above: 1 + 2 failed attempts and 1 retried on
		// test.fail, 2 on test.panic (1 retry), 2 failed first attempts of test.flaky.
		assert.Regexp(t, `(?m)^sparkd_driver_tasks_failed_total [6-9]`, metrics)
		assert.Regexp(t, `(?m)^sparkd_driver_tasks_retried_total [4-9]`, metrics)
		assert.Regexp(t, `(?m)^sparkd_driver_tasks_succeeded_total (2[89]|[3-9][0-9])$`, metrics)
	})
}

// With spark.authenticate.secret, the executors fetch the program with a
// signed request (an unsigned one is refused) and sign everything they
// send the driver; the secret never goes through the master.
func TestGoDriverWithAuthentication(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cluster.RequireDaemons(t)
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 1, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m",
		NoWait: true, // the harness probes without the secret
		Props:  map[string]string{"spark.authenticate": "true", "spark.authenticate.secret": "go-secret", "spark.master.rest.enabled": "false"}})
	cf := conf()
	cf["spark.authenticate.secret"] = "go-secret"
	log := &cluster.SyncBuffer{}
	sc, err := spark.NewContext(spark.Config{Master: c.MasterURLs(), Conf: cf, Log: log})
	require.NoError(t, err)
	defer sc.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("driver log:\n%s", log.String())
		}
	})
	exe, err := os.Executable()
	require.NoError(t, err)
	resp, err := http.Get(sc.UIURL() + "/files/" + filepath.Base(exe))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an unsigned fetch of the program is refused")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := sc.Run(ctx, "test.upper", [][]byte{[]byte("a"), []byte("b")})
	require.NoError(t, err)
	assert.Equal(t, "A B", string(out[0])+" "+string(out[1]))
}
