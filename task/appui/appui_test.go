package appui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/task"
)

// The application UI looks like the master's and the worker's: its copies
// of the stylesheet and script are internal/webui's.
func TestStaticMatchesWebUI(t *testing.T) {
	for _, f := range []struct {
		name string
		data []byte
	}{{"sparkd.css", css}, {"sparkd.js", js}} {
		want, err := os.ReadFile(filepath.Join("..", "..", "internal", "webui", f.name))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(f.data), "task/appui/%s is a copy of internal/webui/%s: copy it again", f.name, f.name)
	}
}

func TestJobsExecutorsAndMetrics(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	u := New(Config{Name: "demo", Now: clock})
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	get := func(path string, v any) int {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if v != nil && resp.StatusCode == 200 {
			require.NoError(t, json.Unmarshal(body, v), "%s", body)
		}
		return resp.StatusCode
	}
	j := u.StartJob("count", 2)
	j.SetApp("app-1")
	ev := func(e task.Event) { e.Time = now; j.Observe(e) }
	ev(task.Event{Kind: task.ExecutorAdded, Executor: "app-1/0", Host: "h1", Cores: 2})
	ev(task.Event{Kind: task.AttemptLaunched, Executor: "app-1/0", Host: "h1", Task: 0, Attempt: 1})
	ev(task.Event{Kind: task.AttemptLaunched, Executor: "app-1/0", Host: "h1", Task: 1, Attempt: 2})
	now = now.Add(time.Second)
	ev(task.Event{Kind: task.AttemptEnded, Attempt: 1, State: task.AttemptFailed, Error: "exit status 1"})
	ev(task.Event{Kind: task.AttemptLaunched, Executor: "app-1/0", Host: "h1", Task: 0, Number: 1, Attempt: 3})
	ev(task.Event{Kind: task.AttemptLaunched, Executor: "app-1/0", Host: "h1", Task: 1, Number: 1, Attempt: 4, Speculative: true})

	var jobs []JobData
	require.Equal(t, 200, get("/api/v1/applications/app-1/jobs", &jobs))
	require.Len(t, jobs, 1)
	assert.Equal(t, "RUNNING", jobs[0].Status)
	assert.Equal(t, 3, jobs[0].NumActiveTasks)
	assert.Equal(t, 1, jobs[0].NumFailedTasks)
	assert.Equal(t, "2026-12-01T10:00:00.000GMT", jobs[0].SubmissionTime)
	require.Len(t, jobs[0].Tasks, 4)
	assert.Equal(t, TaskData{TaskID: 1, Index: 0, Attempt: 0, LaunchTime: "2026-12-01T10:00:00.000GMT", Duration: 1000,
		ExecutorID: "0", Host: "h1", Status: "FAILED", ErrorMessage: "exit status 1"}, jobs[0].Tasks[0])

	ev(task.Event{Kind: task.AttemptEnded, Attempt: 3, State: task.AttemptSuccess})
	ev(task.Event{Kind: task.AttemptEnded, Attempt: 4, State: task.AttemptSuccess})
	ev(task.Event{Kind: task.AttemptEnded, Attempt: 2, State: task.AttemptKilled})
	ev(task.Event{Kind: task.ExecutorLost, Executor: "app-1/0", Error: "worker lost"})
	j.End(true, "")
	require.Equal(t, 200, get("/api/v1/applications/app-1/jobs", &jobs))
	assert.Equal(t, "SUCCEEDED", jobs[0].Status)
	assert.Equal(t, 2, jobs[0].NumCompletedTasks)
	assert.Equal(t, 1, jobs[0].NumKilledTasks)
	var execs []ExecutorSummary
	require.Equal(t, 200, get("/api/v1/applications/app-1/executors", &execs))
	require.Len(t, execs, 1)
	assert.Equal(t, ExecutorSummary{ID: "0", HostPort: "h1", IsActive: false, TotalCores: 2, MaxTasks: 2, FailedTasks: 1,
		CompletedTasks: 2, TotalTasks: 4, TotalDuration: 2000, AddTime: "2026-12-01T10:00:00.000GMT",
		RemoveTime: "2026-12-01T10:00:01.000GMT", RemoveReason: "worker lost"}, execs[0])
	var apps []ApplicationInfo
	require.Equal(t, 200, get("/api/v1/applications", &apps))
	require.Len(t, apps, 1)
	assert.True(t, apps[0].Attempts[0].Completed)
	assert.Equal(t, int64(1000), apps[0].Attempts[0].Duration)
	assert.Equal(t, 404, get("/api/v1/applications/nope/jobs", nil))
	assert.Equal(t, 404, get("/api/v1/applications/nope/executors", nil))

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(body)
	for _, want := range []string{"sparkd_driver_tasks_started_total 4", "sparkd_driver_tasks_succeeded_total 2",
		"sparkd_driver_tasks_failed_total 1", "sparkd_driver_tasks_speculated_total 1", "sparkd_driver_tasks_retried_total 1",
		"sparkd_driver_tasks_killed_total 1", "sparkd_driver_executors_lost_total 1", "sparkd_driver_tasks_running 0"} {
		assert.Contains(t, m, want+"\n")
	}
	resp, err = http.Get(srv.URL + "/jobs/")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.True(t, strings.Contains(string(body), "exit status 1"), "the jobs page shows the failed attempt's error")
}
