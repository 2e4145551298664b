// Package appui is a task driver's application UI (Spark's driver UI on
// spark.ui.port): its jobs with their tasks' attempts, its executors, the
// same as JSON under Spark's monitoring REST API (/api/v1/applications,
// .../<app-id>/jobs, .../<app-id>/executors, with Spark's field names), and
// the driver's metrics in Prometheus format (/metrics).
//
// It learns everything from the driver's events (task.DriverConfig.Observe,
// through Job.Observe), which are called under the driver's lock: it keeps
// its own lock and never calls back into the driver.
//
// The stylesheet and script are copies of internal/webui's (the master's and
// worker's look), which this package may not import; a test keeps them equal.
package appui

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sparkd/sparkd/task"
)

//go:embed sparkd.css
var css []byte

//go:embed sparkd.js
var js []byte

// Config configures a UI.
type Config struct {
	Name    string           // the application's name
	Version string           // shown in the header and as appSparkVersion
	Now     func() time.Time // default time.Now
}

// UI holds what the application UI shows. Create it with New.
type UI struct {
	cfg     Config
	started time.Time
	user    string
	reg     *prometheus.Registry
	m       metrics

	mu   sync.Mutex
	jobs []*Job
	apps []string // application ids, in registration order
	// executors by key (appId/executorId)
	execs map[string]*execRec
}

type metrics struct {
	started, succeeded, failed, killed, speculated, retried, lost, execLost prometheus.Counter
	running, executors                                                      prometheus.Gauge
}

// New returns an empty UI.
func New(cfg Config) *UI {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	u := &UI{cfg: cfg, started: cfg.Now(), reg: prometheus.NewRegistry(), execs: map[string]*execRec{}}
	if cu, err := user.Current(); err == nil {
		u.user = cu.Username
	}
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sparkd", Subsystem: "driver", Name: name, Help: help})
		u.reg.MustRegister(x)
		return x
	}
	g := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sparkd", Subsystem: "driver", Name: name, Help: help})
		u.reg.MustRegister(x)
		return x
	}
	u.m = metrics{
		started:    c("tasks_started_total", "Task attempts launched on executors (retries and speculative copies included)."),
		succeeded:  c("tasks_succeeded_total", "Task attempts that succeeded and whose result was taken."),
		failed:     c("tasks_failed_total", "Task attempts that failed (counted against spark.task.maxFailures)."),
		killed:     c("tasks_killed_total", "Task attempts killed by the driver (speculative losers, job-end kills)."),
		speculated: c("tasks_speculated_total", "Speculative copies launched (spark.speculation)."),
		retried:    c("tasks_retried_total", "Attempts launched again after a failed, lost or killed attempt (not speculative copies)."),
		lost:       c("tasks_lost_total", "Task attempts lost with their executor (re-run, not counted as failures)."),
		execLost:   c("executors_lost_total", "Executors lost (process exit, worker lost, heartbeat timeout)."),
		running:    g("tasks_running", "Task attempts running now."),
		executors:  g("executors_active", "Executors registered and not lost."),
	}
	return u
}

// Registry is the UI's Prometheus registry (served on /metrics).
func (u *UI) Registry() *prometheus.Registry { return u.reg }

// Job is one job's record. Its methods may be called from any goroutine.
type Job struct {
	u          *UI
	id         int
	name       string
	app        string
	submitted  time.Time
	completed  time.Time
	status     string // RUNNING, SUCCEEDED, FAILED
	message    string
	tasks      [][]*attemptRec // by task index
	byAttempt  map[task.AttemptID]*attemptRec
	numTasks   int
	succeeded  map[int]bool
	failedTask map[int]bool
}

type attemptRec struct {
	task, number  int
	attempt       task.AttemptID
	executor      string
	host          string
	speculative   bool
	state         string // RUNNING, SUCCESS, FAILED, KILLED, LOST
	launch, ended time.Time
	err           string
}

type execRec struct {
	key, app, id, host    string
	cores                 int
	added, removed        time.Time
	active                bool
	reason                string
	running, done, failed int
	total                 int
	totalDuration         time.Duration
}

// StartJob records a job of n tasks, RUNNING from now.
func (u *UI) StartJob(name string, n int) *Job {
	u.mu.Lock()
	defer u.mu.Unlock()
	j := &Job{u: u, id: len(u.jobs), name: name, submitted: u.cfg.Now(), status: "RUNNING", tasks: make([][]*attemptRec, n),
		byAttempt: map[task.AttemptID]*attemptRec{}, numTasks: n, succeeded: map[int]bool{}, failedTask: map[int]bool{}}
	u.jobs = append(u.jobs, j)
	return j
}

// SetApp records the application the job runs as (its id on the master).
func (j *Job) SetApp(id string) {
	u := j.u
	u.mu.Lock()
	defer u.mu.Unlock()
	j.app = id
	for _, a := range u.apps {
		if a == id {
			return
		}
	}
	u.apps = append(u.apps, id)
}

// End records how the job ended.
func (j *Job) End(ok bool, message string) {
	u := j.u
	u.mu.Lock()
	defer u.mu.Unlock()
	j.completed = u.cfg.Now()
	j.status, j.message = "SUCCEEDED", message
	if !ok {
		j.status = "FAILED"
	}
	for _, a := range j.byAttempt {
		if a.state == "RUNNING" {
			a.state, a.ended = "KILLED", j.completed
			u.m.running.Dec()
			if x, ok := u.execs[a.executor]; ok {
				x.running--
			}
		}
	}
}

// Observe records a driver event (task.DriverConfig.Observe).
func (j *Job) Observe(e task.Event) {
	u := j.u
	u.mu.Lock()
	defer u.mu.Unlock()
	switch e.Kind {
	case task.ExecutorAdded:
		app, id, _ := strings.Cut(e.Executor, "/")
		u.execs[e.Executor] = &execRec{key: e.Executor, app: app, id: id, host: e.Host, cores: e.Cores, added: e.Time, active: true}
		u.m.executors.Inc()
	case task.ExecutorLost:
		if x, ok := u.execs[e.Executor]; ok && x.active {
			x.active, x.removed, x.reason = false, e.Time, e.Error
			u.m.executors.Dec()
		}
		u.m.execLost.Inc()
	case task.AttemptLaunched:
		if e.Task < 0 || e.Task >= len(j.tasks) {
			return
		}
		a := &attemptRec{task: e.Task, number: e.Number, attempt: e.Attempt, executor: e.Executor, host: e.Host,
			speculative: e.Speculative, state: "RUNNING", launch: e.Time}
		j.tasks[e.Task] = append(j.tasks[e.Task], a)
		j.byAttempt[e.Attempt] = a
		u.m.started.Inc()
		u.m.running.Inc()
		if e.Speculative {
			u.m.speculated.Inc()
		} else if e.Number > 0 {
			u.m.retried.Inc()
		}
		if x, ok := u.execs[e.Executor]; ok {
			x.running++
			x.total++
		}
	case task.AttemptEnded:
		a, ok := j.byAttempt[e.Attempt]
		if !ok || a.state != "RUNNING" {
			return
		}
		a.state, a.ended, a.err = e.State, e.Time, e.Error
		u.m.running.Dec()
		x := u.execs[a.executor]
		if x != nil {
			x.running--
			x.totalDuration += a.ended.Sub(a.launch)
		}
		switch e.State {
		case task.AttemptSuccess:
			j.succeeded[a.task] = true
			u.m.succeeded.Inc()
			if x != nil {
				x.done++
			}
		case task.AttemptFailed:
			u.m.failed.Inc()
			if x != nil {
				x.failed++
			}
		case task.AttemptLost:
			u.m.lost.Inc()
		default:
			u.m.killed.Inc()
		}
	}
}

// Handler serves the UI: /jobs/, /executors/, /api/v1/..., /metrics and
// /static/.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static := func(name, ctype string, body []byte) {
		mux.HandleFunc("GET /static/"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			http.ServeContent(w, r, name, u.started, bytes.NewReader(body))
		})
	}
	static("sparkd.css", "text/css; charset=utf-8", css)
	static("sparkd.js", "text/javascript; charset=utf-8", js)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/jobs/", http.StatusFound) })
	mux.HandleFunc("GET /jobs/{$}", u.page("jobs"))
	mux.HandleFunc("GET /executors/{$}", u.page("executors"))
	mux.HandleFunc("GET /api/v1/applications", u.api(func(*http.Request) (any, error) { return u.applications(), nil }))
	mux.HandleFunc("GET /api/v1/applications/{app}", u.api(func(r *http.Request) (any, error) {
		for _, a := range u.applications() {
			if a.ID == r.PathValue("app") {
				return a, nil
			}
		}
		return nil, notFound(r.PathValue("app"))
	}))
	mux.HandleFunc("GET /api/v1/applications/{app}/jobs", u.api(func(r *http.Request) (any, error) { return u.jobsJSON(r.PathValue("app")) }))
	mux.HandleFunc("GET /api/v1/applications/{app}/executors", u.api(func(r *http.Request) (any, error) {
		return u.executorsJSON(r.PathValue("app"))
	}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(u.reg, promhttp.HandlerOpts{}))
	return mux
}

type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func notFound(app string) error {
	return &apiError{code: http.StatusNotFound, msg: fmt.Sprintf("unknown app: %s", app)}
}

func (u *UI) api(f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			code := http.StatusInternalServerError
			var ae *apiError
			if errors.As(err, &ae) {
				code = ae.code
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
}

// sparkTime is Spark's REST API time format.
func sparkTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000GMT")
}

// ApplicationInfo is Spark's /api/v1/applications entry.
type ApplicationInfo struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Attempts []AttemptInfo `json:"attempts"`
}

// AttemptInfo is one attempt of an application.
type AttemptInfo struct {
	StartTime       string `json:"startTime"`
	EndTime         string `json:"endTime"`
	LastUpdated     string `json:"lastUpdated"`
	Duration        int64  `json:"duration"`
	SparkUser       string `json:"sparkUser"`
	Completed       bool   `json:"completed"`
	AppSparkVersion string `json:"appSparkVersion"`
}

func (u *UI) applications() []ApplicationInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.cfg.Now()
	out := []ApplicationInfo{}
	for _, app := range u.apps {
		var start, end time.Time
		completed := true
		for _, j := range u.jobs {
			if j.app != app {
				continue
			}
			if start.IsZero() || j.submitted.Before(start) {
				start = j.submitted
			}
			if j.completed.IsZero() {
				completed = false
			} else if j.completed.After(end) {
				end = j.completed
			}
		}
		a := AttemptInfo{StartTime: sparkTime(start), SparkUser: u.user, Completed: completed, AppSparkVersion: u.cfg.Version,
			LastUpdated: sparkTime(now)}
		if completed {
			a.EndTime, a.Duration = sparkTime(end), end.Sub(start).Milliseconds()
		} else {
			a.EndTime, a.Duration = "1969-12-31T23:59:59.999GMT", now.Sub(start).Milliseconds() // Spark's "not ended"
		}
		out = append(out, ApplicationInfo{ID: app, Name: u.cfg.Name, Attempts: []AttemptInfo{a}})
	}
	return out
}

// JobData is Spark's /api/v1/applications/<id>/jobs entry, plus sparkd's
// tasks (Spark's TaskData names).
type JobData struct {
	JobID             int        `json:"jobId"`
	Name              string     `json:"name"`
	SubmissionTime    string     `json:"submissionTime"`
	CompletionTime    string     `json:"completionTime,omitempty"`
	Status            string     `json:"status"`
	NumTasks          int        `json:"numTasks"`
	NumActiveTasks    int        `json:"numActiveTasks"`
	NumCompletedTasks int        `json:"numCompletedTasks"`
	NumFailedTasks    int        `json:"numFailedTasks"`
	NumKilledTasks    int        `json:"numKilledTasks"`
	Message           string     `json:"failureReason,omitempty"`
	Tasks             []TaskData `json:"tasks"`
}

// TaskData is one attempt of a task.
type TaskData struct {
	TaskID       int64  `json:"taskId"`
	Index        int    `json:"index"`
	Attempt      int    `json:"attempt"`
	LaunchTime   string `json:"launchTime"`
	Duration     int64  `json:"duration"`
	ExecutorID   string `json:"executorId"`
	Host         string `json:"host"`
	Status       string `json:"status"`
	Speculative  bool   `json:"speculative"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

func (u *UI) knownLocked(app string) bool {
	for _, a := range u.apps {
		if a == app {
			return true
		}
	}
	return false
}

func (u *UI) jobsJSON(app string) ([]JobData, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.knownLocked(app) {
		return nil, notFound(app)
	}
	out := []JobData{}
	for i := len(u.jobs) - 1; i >= 0; i-- { // newest first, as Spark lists them
		if j := u.jobs[i]; j.app == app {
			out = append(out, u.jobLocked(j))
		}
	}
	return out, nil
}

func (u *UI) jobLocked(j *Job) JobData {
	now := u.cfg.Now()
	d := JobData{JobID: j.id, Name: j.name, SubmissionTime: sparkTime(j.submitted), CompletionTime: sparkTime(j.completed),
		Status: j.status, NumTasks: j.numTasks, NumCompletedTasks: len(j.succeeded), Message: j.message, Tasks: []TaskData{}}
	for _, as := range j.tasks {
		for _, a := range as {
			switch a.state {
			case "RUNNING":
				d.NumActiveTasks++
			case task.AttemptFailed:
				d.NumFailedTasks++
			case task.AttemptKilled:
				d.NumKilledTasks++
			}
			end := a.ended
			if end.IsZero() {
				end = now
			}
			_, id, _ := strings.Cut(a.executor, "/")
			d.Tasks = append(d.Tasks, TaskData{TaskID: int64(a.attempt), Index: a.task, Attempt: a.number, LaunchTime: sparkTime(a.launch),
				Duration: end.Sub(a.launch).Milliseconds(), ExecutorID: id, Host: a.host, Status: a.state, Speculative: a.speculative,
				ErrorMessage: a.err})
		}
	}
	sort.Slice(d.Tasks, func(a, b int) bool { return d.Tasks[a].TaskID < d.Tasks[b].TaskID })
	return d
}

// ExecutorSummary is Spark's /api/v1/applications/<id>/executors entry.
type ExecutorSummary struct {
	ID             string `json:"id"`
	HostPort       string `json:"hostPort"`
	IsActive       bool   `json:"isActive"`
	TotalCores     int    `json:"totalCores"`
	MaxTasks       int    `json:"maxTasks"`
	ActiveTasks    int    `json:"activeTasks"`
	FailedTasks    int    `json:"failedTasks"`
	CompletedTasks int    `json:"completedTasks"`
	TotalTasks     int    `json:"totalTasks"`
	TotalDuration  int64  `json:"totalDuration"`
	AddTime        string `json:"addTime"`
	RemoveTime     string `json:"removeTime,omitempty"`
	RemoveReason   string `json:"removeReason,omitempty"`
}

func (u *UI) executorsJSON(app string) ([]ExecutorSummary, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.knownLocked(app) {
		return nil, notFound(app)
	}
	out := []ExecutorSummary{}
	for _, x := range u.sortedExecsLocked() {
		if x.app != app {
			continue
		}
		out = append(out, ExecutorSummary{ID: x.id, HostPort: x.host, IsActive: x.active, TotalCores: x.cores, MaxTasks: x.cores,
			ActiveTasks: x.running, FailedTasks: x.failed, CompletedTasks: x.done, TotalTasks: x.total,
			TotalDuration: x.totalDuration.Milliseconds(), AddTime: sparkTime(x.added), RemoveTime: sparkTime(x.removed), RemoveReason: x.reason})
	}
	return out, nil
}

func (u *UI) sortedExecsLocked() []*execRec {
	xs := make([]*execRec, 0, len(u.execs))
	for _, x := range u.execs {
		xs = append(xs, x)
	}
	sort.Slice(xs, func(a, b int) bool {
		if xs[a].app != xs[b].app {
			return xs[a].added.Before(xs[b].added)
		}
		na, _ := strconv.Atoi(xs[a].id)
		nb, _ := strconv.Atoi(xs[b].id)
		return na < nb
	})
	return xs
}

type pageData struct {
	Name, Version, Page, User string
	Uptime                    string
	Jobs                      []JobData
	Apps                      []string
	Executors                 []execRow
}

type execRow struct {
	App string
	ExecutorSummary
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms": func(ms int64) string { return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String() },
}).Parse(pageHTML))

func (u *UI) page(which string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		d := pageData{Name: u.cfg.Name, Version: u.cfg.Version, Page: which, User: u.user, Apps: append([]string(nil), u.apps...),
			Uptime: u.cfg.Now().Sub(u.started).Round(time.Second).String()}
		for i := len(u.jobs) - 1; i >= 0; i-- {
			d.Jobs = append(d.Jobs, u.jobLocked(u.jobs[i]))
		}
		for _, x := range u.sortedExecsLocked() {
			d.Executors = append(d.Executors, execRow{App: x.app, ExecutorSummary: ExecutorSummary{ID: x.id, HostPort: x.host, IsActive: x.active,
				TotalCores: x.cores, ActiveTasks: x.running, FailedTasks: x.failed, CompletedTasks: x.done, TotalTasks: x.total,
				TotalDuration: x.totalDuration.Milliseconds(), AddTime: sparkTime(x.added), RemoveReason: x.reason}})
		}
		u.mu.Unlock()
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, d); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	}
}

const pageHTML = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{{.Name}} - Spark {{if eq .Page "jobs"}}Jobs{{else}}Executors{{end}}</title>
<link rel="stylesheet" href="/static/sparkd.css">
<script src="/static/sparkd.js"></script>
</head>
<body>
<div class="navbar">
  <span class="brand">sparkd<span class="version">{{.Version}}</span></span>
  <span class="title">{{.Name}} application UI</span>
  <span class="nav"><a href="/jobs/">Jobs</a> <a href="/executors/">Executors</a> <a href="/metrics">Metrics</a></span>
</div>
<div class="content">
<ul class="unstyled">
  <li><strong>User:</strong> {{.User}}</li>
  <li><strong>Total Uptime:</strong> {{.Uptime}}</li>
  <li><strong>Applications:</strong> {{range .Apps}}<a href="/api/v1/applications/{{.}}">{{.}}</a> {{end}}</li>
</ul>
{{- if eq .Page "jobs"}}
<h4 data-collapse="jobs-table">Jobs ({{len .Jobs}})</h4>
<table class="sortable" id="jobs-table">
<thead><tr><th>Job Id</th><th>Description</th><th>Submitted</th><th>Status</th><th>Tasks: Succeeded/Total</th><th>Running</th><th>Failed</th><th>Killed</th></tr></thead>
<tbody>
{{- range .Jobs}}
<tr><td>{{.JobID}}</td><td>{{.Name}}</td><td>{{.SubmissionTime}}</td><td><span class="badge {{.Status}}">{{.Status}}</span>{{if .Message}} {{.Message}}{{end}}</td>
<td>{{.NumCompletedTasks}}/{{.NumTasks}}</td><td>{{.NumActiveTasks}}</td><td>{{.NumFailedTasks}}</td><td>{{.NumKilledTasks}}</td></tr>
{{- end}}
</tbody>
</table>
{{- range .Jobs}}
<h4 data-collapse="tasks-{{.JobID}}">Tasks of job {{.JobID}} ({{.Name}}): {{len .Tasks}} attempt(s)</h4>
<table class="sortable tasks" id="tasks-{{.JobID}}">
<thead><tr><th>Index</th><th>Task ID</th><th>Attempt</th><th>Status</th><th>Executor ID</th><th>Host</th><th>Launch Time</th><th>Duration</th><th>Speculative</th><th>Errors</th></tr></thead>
<tbody>
{{- range .Tasks}}
<tr><td>{{.Index}}</td><td>{{.TaskID}}</td><td>{{.Attempt}}</td><td>{{.Status}}</td><td>{{.ExecutorID}}</td><td>{{.Host}}</td><td>{{.LaunchTime}}</td><td data-sort="{{.Duration}}">{{ms .Duration}}</td><td>{{.Speculative}}</td><td>{{.ErrorMessage}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- else}}
<h4 data-collapse="executors-table">Executors ({{len .Executors}})</h4>
<table class="sortable" id="executors-table">
<thead><tr><th>Application</th><th>Executor ID</th><th>Address</th><th>Status</th><th>Cores</th><th>Active Tasks</th><th>Failed Tasks</th><th>Complete Tasks</th><th>Total Tasks</th><th>Task Time</th><th>Added</th><th>Removed because</th></tr></thead>
<tbody>
{{- range .Executors}}
<tr><td>{{.App}}</td><td>{{.ID}}</td><td>{{.HostPort}}</td><td>{{if .IsActive}}Active{{else}}Dead{{end}}</td><td>{{.TotalCores}}</td><td>{{.ActiveTasks}}</td><td>{{.FailedTasks}}</td><td>{{.CompletedTasks}}</td><td>{{.TotalTasks}}</td><td data-sort="{{.TotalDuration}}">{{ms .TotalDuration}}</td><td>{{.AddTime}}</td><td>{{.RemoveReason}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</div>
</body>
</html>
`
