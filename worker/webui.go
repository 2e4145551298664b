package worker

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sparkd/sparkd/internal/webui"
	"github.com/sparkd/sparkd/protocol"
)

// Log page bounds (Spark's LogPage: the last 100 KiB unless asked otherwise).
const (
	defaultLogBytes = 100 * 1024
	maxLogBytes     = 1 << 20
)

func (w *Worker) uiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.handlePage)
	mux.HandleFunc("GET /json", w.handleJSON)
	mux.HandleFunc("GET /json/", w.handleJSON)
	// Executors' and drivers' output: behind the JWSFilter when configured
	// (spark.ui.filters).
	mux.Handle("GET /logPage", protocol.RequireJWS(w.cfg.UIJWS, http.HandlerFunc(w.handleLogPage)))
	mux.Handle("GET /logPage/", protocol.RequireJWS(w.cfg.UIJWS, http.HandlerFunc(w.handleLogPage)))
	mux.Handle("GET /log", protocol.RequireJWS(w.cfg.UIJWS, http.HandlerFunc(w.handleLogRaw)))
	mux.HandleFunc("GET /metrics/prometheus", w.handleMetrics)
	mux.HandleFunc("GET /metrics/prometheus/", w.handleMetrics)
	mux.Handle("GET /metrics", w.metricsHandler())
	mux.Handle("GET "+webui.Prefix, webui.Static())
	return mux
}

// execView and driverView are what the page and /json show.
type execView struct {
	AppID, AppName, User, State, Memory, Command string
	ExecutorID, Cores, MemoryMB, PID             int
	AppMaxCores                                  int
	ExitCode                                     string
}

type driverView struct {
	ID, MainClass, State, Memory, Notes string
	Cores, MemoryMB                     int
}

type workerView struct {
	ID, URL, WebUIURL, MasterURL, MasterWebUI, State string
	Epoch                                            int64
	Cores, CoresUsed, MemoryMB, MemoryUsedMB         int
	Executors, FinishedExecs                         []execView
	Drivers, FinishedDrivers                         []driverView
	StaleRejections                                  uint64
}

func newExecView(e *executor) execView {
	v := execView{AppID: e.appID, ExecutorID: e.execID, Cores: e.cores, MemoryMB: e.memoryMB, Memory: protocol.MegabytesString(e.memoryMB),
		State: string(e.state), AppName: e.app.Name, User: e.app.User, Command: strings.Join(e.app.Command, " "),
		AppMaxCores: e.app.MaxCores}
	if e.proc != nil {
		v.PID = e.proc.pid
	}
	if e.exitCode != nil {
		v.ExitCode = strconv.Itoa(*e.exitCode)
	}
	return v
}

func newDriverView(d *driver) driverView {
	return driverView{ID: d.id, MainClass: d.desc.MainClass, State: string(d.state), Cores: d.desc.Cores,
		MemoryMB: d.desc.MemoryMB, Memory: protocol.MegabytesString(d.desc.MemoryMB), Notes: d.message}
}

// view snapshots the worker for the UI, /json and metrics.
func (w *Worker) view() workerView {
	epoch, _ := w.guard.Current()
	w.mu.Lock()
	defer w.mu.Unlock()
	v := workerView{ID: w.id, URL: w.url, WebUIURL: w.webUIURL, MasterURL: w.masterURL, MasterWebUI: w.masterWebUI,
		Epoch: epoch, Cores: w.cfg.Cores, MemoryMB: w.cfg.MemoryMB, StaleRejections: w.guard.Rejected()}
	switch {
	case w.decommissioned:
		v.State = string(protocol.WorkerDecommissioned)
	case w.registered:
		v.State = string(protocol.WorkerAlive)
	default:
		v.State = string(protocol.WorkerUnknown)
	}
	for _, e := range w.executors {
		v.Executors = append(v.Executors, newExecView(e))
		v.CoresUsed += e.cores
		v.MemoryUsedMB += e.memoryMB
	}
	for _, d := range w.drivers {
		v.Drivers = append(v.Drivers, newDriverView(d))
		v.CoresUsed += d.desc.Cores
		v.MemoryUsedMB += d.desc.MemoryMB
	}
	for i := len(w.finishedExecs) - 1; i >= 0; i-- {
		v.FinishedExecs = append(v.FinishedExecs, newExecView(w.finishedExecs[i]))
	}
	for i := len(w.finishedDrivers) - 1; i >= 0; i-- {
		v.FinishedDrivers = append(v.FinishedDrivers, newDriverView(w.finishedDrivers[i]))
	}
	sort.Slice(v.Executors, func(i, j int) bool {
		a, b := v.Executors[i], v.Executors[j]
		return a.AppID < b.AppID || a.AppID == b.AppID && a.ExecutorID < b.ExecutorID
	})
	sort.Slice(v.Drivers, func(i, j int) bool { return v.Drivers[i].ID < v.Drivers[j].ID })
	return v
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"mem": protocol.MegabytesString}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Spark Worker at {{.Host}}</title>
<link rel="stylesheet" href="static/sparkd.css"><script src="static/sparkd.js"></script></head>
<body>
<div class="navbar"><span class="brand">sparkd<span class="version">{{.Version}}</span></span>
<span class="title">Spark Worker at {{.Host}}</span><span class="badge {{.V.State}}">{{.V.State}}</span>
<span class="nav">{{if .V.MasterWebUI}}<a href="{{.V.MasterWebUI}}">Master</a>{{end}}<a href="json">JSON</a><a href="metrics">Metrics</a></span></div>
<div class="content">
<h3>Spark Worker at {{.Host}}</h3>
<ul class="unstyled">
<li><strong>ID:</strong> {{.V.ID}}</li>
<li><strong>Master URL:</strong> {{if .V.MasterURL}}{{.V.MasterURL}}{{else}}(not registered){{end}}</li>
<li><strong>Cores:</strong> {{.V.Cores}} ({{.V.CoresUsed}} Used)</li>
<li><strong>Memory:</strong> {{mem .V.MemoryMB}} ({{mem .V.MemoryUsedMB}} Used)</li>
<li><strong>Status:</strong> {{.V.State}}</li>
<li><strong>Epoch:</strong> {{.V.Epoch}}</li>
</ul>
{{if .V.MasterWebUI}}<p><a href="{{.V.MasterWebUI}}">Back to Master</a></p>{{end}}
<h4 data-collapse="running-execs">Running Executors ({{len .V.Executors}})</h4>
<div id="running-execs">{{template "execs" .V.Executors}}</div>
<h4 data-collapse="running-drivers">Running Drivers ({{len .V.Drivers}})</h4>
<div id="running-drivers">{{template "drivers" .V.Drivers}}</div>
<h4 data-collapse="finished-execs">Finished Executors ({{len .V.FinishedExecs}})</h4>
<div id="finished-execs">{{template "execs" .V.FinishedExecs}}</div>
<h4 data-collapse="finished-drivers">Finished Drivers ({{len .V.FinishedDrivers}})</h4>
<div id="finished-drivers">{{template "drivers" .V.FinishedDrivers}}</div>
</div></body></html>
{{define "execs"}}<table class="sortable"><thead><tr><th>ExecutorID</th><th>Cores</th><th>State</th><th>Memory</th><th>Job Details</th><th>Logs</th></tr></thead><tbody>
{{range .}}<tr><td>{{.ExecutorID}}</td><td>{{.Cores}}</td><td>{{.State}}</td><td>{{.Memory}}</td>
<td><ul><li><strong>ID:</strong> {{.AppID}}</li><li><strong>Name:</strong> {{.AppName}}</li>{{if .User}}<li><strong>User:</strong> {{.User}}</li>{{end}}{{if .ExitCode}}<li><strong>Exit code:</strong> {{.ExitCode}}</li>{{end}}</ul></td>
<td><a href="logPage?appId={{.AppID}}&amp;executorId={{.ExecutorID}}&amp;logType=stdout">stdout</a>
<a href="logPage?appId={{.AppID}}&amp;executorId={{.ExecutorID}}&amp;logType=stderr">stderr</a></td></tr>
{{end}}</tbody></table>{{end}}
{{define "drivers"}}<table class="sortable"><thead><tr><th>DriverID</th><th>Main Class</th><th>State</th><th>Cores</th><th>Memory</th><th>Logs</th><th>Notes</th></tr></thead><tbody>
{{range .}}<tr><td>{{.ID}}</td><td>{{.MainClass}}</td><td>{{.State}}</td><td>{{.Cores}}</td><td>{{.Memory}}</td>
<td><a href="logPage?driverId={{.ID}}&amp;logType=stdout">stdout</a>
<a href="logPage?driverId={{.ID}}&amp;logType=stderr">stderr</a></td><td>{{.Notes}}</td></tr>
{{end}}</tbody></table>{{end}}
`))

func (w *Worker) handlePage(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		Host, Version string
		V             workerView
	}{Host: strings.TrimPrefix(w.url, "http://"), Version: webui.Version, V: w.view()}
	if err := pageTmpl.Execute(rw, data); err != nil {
		w.log.WithError(err).Warn("Rendering the worker page failed")
	}
}

// jsonExec is Spark's JsonProtocol.writeExecutorRunner, plus sparkd's state.
type jsonExec struct {
	ID        int            `json:"id"`
	Memory    int            `json:"memory"`
	Resources map[string]any `json:"resources"`
	AppID     string         `json:"appid"`
	AppDesc   jsonAppDesc    `json:"appdesc"`
	State     string         `json:"state"`
}

type jsonAppDesc struct {
	Name              string `json:"name"`
	Cores             int    `json:"cores"`
	MemoryPerExecutor int    `json:"memoryperexecutor"`
	ResourcesPerExec  []any  `json:"resourcesperexecutor"`
	MemoryPerSlave    int    `json:"memoryperslave"`
	ResourcesPerSlave []any  `json:"resourcesperslave"`
	User              string `json:"user"`
	Command           string `json:"command"`
}

type jsonDriver struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Cores  int    `json:"cores"`
	Memory int    `json:"memory"`
}

// jsonWorker is Spark's JsonProtocol.writeWorkerState plus sparkd's fields.
type jsonWorker struct {
	ID               string         `json:"id"`
	MasterURL        string         `json:"masterurl"`
	MasterWebUIURL   string         `json:"masterwebuiurl"`
	Cores            int            `json:"cores"`
	CoresUsed        int            `json:"coresused"`
	Memory           int            `json:"memory"`
	MemoryUsed       int            `json:"memoryused"`
	Resources        map[string]any `json:"resources"`
	ResourcesUsed    map[string]any `json:"resourcesused"`
	Executors        []jsonExec     `json:"executors"`
	FinishedExecs    []jsonExec     `json:"finishedexecutors"`
	Drivers          []jsonDriver   `json:"drivers"`
	FinishedDrivers  []jsonDriver   `json:"finisheddrivers"`
	Epoch            int64          `json:"epoch"`
	State            string         `json:"state"`
	StaleEpochReject uint64         `json:"staleepochrejections"`
}

func toJSONExecs(in []execView) []jsonExec {
	out := make([]jsonExec, 0, len(in))
	for _, e := range in {
		out = append(out, jsonExec{ID: e.ExecutorID, Memory: e.MemoryMB, Resources: map[string]any{}, AppID: e.AppID, State: e.State,
			AppDesc: jsonAppDesc{Name: e.AppName, Cores: e.AppMaxCores, MemoryPerExecutor: e.MemoryMB, MemoryPerSlave: e.MemoryMB,
				ResourcesPerExec: []any{}, ResourcesPerSlave: []any{}, User: e.User, Command: e.Command}})
	}
	return out
}

func toJSONDrivers(in []driverView) []jsonDriver {
	out := make([]jsonDriver, 0, len(in))
	for _, d := range in {
		out = append(out, jsonDriver{ID: d.ID, State: d.State, Cores: d.Cores, Memory: d.MemoryMB})
	}
	return out
}

func (w *Worker) handleJSON(rw http.ResponseWriter, r *http.Request) {
	v := w.view()
	protocol.WriteJSON(rw, http.StatusOK, jsonWorker{
		ID: v.ID, MasterURL: v.MasterURL, MasterWebUIURL: v.MasterWebUI, Cores: v.Cores, CoresUsed: v.CoresUsed,
		Memory: v.MemoryMB, MemoryUsed: v.MemoryUsedMB, Resources: map[string]any{}, ResourcesUsed: map[string]any{},
		Executors: toJSONExecs(v.Executors), FinishedExecs: toJSONExecs(v.FinishedExecs),
		Drivers: toJSONDrivers(v.Drivers), FinishedDrivers: toJSONDrivers(v.FinishedDrivers),
		Epoch: v.Epoch, State: v.State, StaleEpochReject: v.StaleRejections,
	})
}

// handleMetrics writes Spark's PrometheusServlet format for the worker source.
func (w *Worker) handleMetrics(rw http.ResponseWriter, r *http.Request) {
	v := w.view()
	rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	gauges := []struct {
		name string
		val  int
	}{
		{"executors", len(v.Executors)},
		{"coresUsed", v.CoresUsed},
		{"memUsed_MB", v.MemoryUsedMB},
		{"coresFree", v.Cores - v.CoresUsed},
		{"memFree_MB", v.MemoryMB - v.MemoryUsedMB},
		{"drivers", len(v.Drivers)},
		{"epoch", int(v.Epoch)},
	}
	var b strings.Builder
	for _, g := range gauges {
		fmt.Fprintf(&b, "metrics_worker_%s_Number{type=\"gauges\"} %d\n", g.name, g.val)
		fmt.Fprintf(&b, "metrics_worker_%s_Value{type=\"gauges\"} %d\n", g.name, g.val)
	}
	fmt.Fprintf(&b, "metrics_worker_staleEpochRejections_Count{type=\"counters\"} %d\n", v.StaleRejections)
	_, _ = io.WriteString(rw, b.String())
}

// errLogRequest is a bad log page request (400).
var errLogRequest = errors.New("worker: bad log request")

// logChunk is a bounded, offset-based slice of a log file (Spark's getLog).
type logChunk struct {
	Text            string
	Start, End, Len int64
	Path            string
}

// logFile resolves the log file a request names, refusing anything that
// could leave the work dir.
func (w *Worker) logFile(r *http.Request) (string, error) {
	q := r.URL.Query()
	logType := q.Get("logType")
	if logType != "stdout" && logType != "stderr" {
		return "", fmt.Errorf("%w: logType must be stdout or stderr, got %q", errLogRequest, logType)
	}
	var dir string
	switch appID, execID, driverID := q.Get("appId"), q.Get("executorId"), q.Get("driverId"); {
	case appID != "" && execID != "":
		if !safeName(appID) {
			return "", fmt.Errorf("%w: appId %q is not a valid id", errLogRequest, appID)
		}
		n, err := strconv.Atoi(execID)
		if err != nil || n < 0 {
			return "", fmt.Errorf("%w: executorId %q is not a number", errLogRequest, execID)
		}
		dir = filepath.Join(w.cfg.WorkDir, appID, strconv.Itoa(n))
	case driverID != "":
		if !safeName(driverID) {
			return "", fmt.Errorf("%w: driverId %q is not a valid id", errLogRequest, driverID)
		}
		dir = filepath.Join(w.cfg.WorkDir, driverID)
	default:
		return "", fmt.Errorf("%w: give appId and executorId, or driverId", errLogRequest)
	}
	rel, err := filepath.Rel(w.cfg.WorkDir, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: path leaves the work dir", errLogRequest)
	}
	return filepath.Join(dir, logType), nil
}

// readLog reads at most byteLength bytes from offset (default: the last
// byteLength bytes) of a regular file.
func readLog(path string, q map[string][]string) (logChunk, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	byteLength := int64(defaultLogBytes)
	if s := get("byteLength"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return logChunk{}, fmt.Errorf("%w: byteLength %q must be a positive number", errLogRequest, s)
		}
		byteLength = min(n, maxLogBytes)
	}
	st, err := os.Lstat(path)
	if err != nil {
		return logChunk{}, err
	}
	if !st.Mode().IsRegular() {
		return logChunk{}, fmt.Errorf("%w: %s is not a regular file", errLogRequest, filepath.Base(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return logChunk{}, err
	}
	defer f.Close()
	total := st.Size()
	start := max(total-byteLength, 0)
	if s := get("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return logChunk{}, fmt.Errorf("%w: offset %q must be a non-negative number", errLogRequest, s)
		}
		start = min(n, total)
	}
	end := min(start+byteLength, total)
	buf := make([]byte, end-start)
	k, err := f.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return logChunk{}, err
	}
	return logChunk{Text: string(buf[:k]), Start: start, End: start + int64(k), Len: total, Path: path}, nil
}

func (w *Worker) serveLog(rw http.ResponseWriter, r *http.Request) (logChunk, bool) {
	path, err := w.logFile(r)
	if err == nil {
		var c logChunk
		if c, err = readLog(path, r.URL.Query()); err == nil {
			return c, true
		}
	}
	switch {
	case errors.Is(err, errLogRequest):
		http.Error(rw, err.Error(), http.StatusBadRequest)
	case errors.Is(err, os.ErrNotExist):
		http.Error(rw, "log file not found", http.StatusNotFound)
	default:
		w.log.WithError(err).Warn("Reading a log failed")
		http.Error(rw, "could not read the log", http.StatusInternalServerError)
	}
	return logChunk{}, false
}

// handleLogRaw serves the chunk as text, with its range in headers.
func (w *Worker) handleLogRaw(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.serveLog(rw, r)
	if !ok {
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Log-Range", fmt.Sprintf("%d-%d/%d", c.Start, c.End, c.Len))
	_, _ = io.WriteString(rw, c.Text)
}

// handleLogPage renders a chunk with Spark's paging links.
func (w *Worker) handleLogPage(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.serveLog(rw, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	n := c.End - c.Start
	if n == 0 {
		n = defaultLogBytes
	}
	link := func(off int64) string {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set("offset", strconv.FormatInt(off, 10))
		q2.Set("byteLength", strconv.FormatInt(n, 10))
		return "logPage?" + q2.Encode()
	}
	title := "Log page for " + q.Get("driverId")
	if q.Get("appId") != "" {
		title = fmt.Sprintf("Log page for %s/%s", q.Get("appId"), q.Get("executorId"))
	}
	title += " (" + q.Get("logType") + ")"
	data := map[string]any{"Title": title, "C": c, "Back": "/", "Bytes": n}
	if c.Start > 0 {
		data["Prev"] = link(max(c.Start-n, 0))
	}
	if c.End < c.Len {
		data["Next"] = link(c.End)
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := logPageTmpl.Execute(rw, data); err != nil {
		w.log.WithError(err).Warn("Rendering a log page failed")
	}
}

var logPageTmpl = template.Must(template.New("logPage").Funcs(template.FuncMap{
	"minus": func(a, b int64) int64 { return b - a },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><link rel="stylesheet" href="static/sparkd.css"></head><body>
<div class="navbar"><span class="brand">sparkd</span><span class="title">{{.Title}}</span></div>
<div class="content">
<h3>{{.Title}}</h3>
<p><a href="{{.Back}}">Back to Worker</a></p>
<div>Showing {{minus .C.Start .C.End}} Bytes: {{.C.Start}} - {{.C.End}} of {{.C.Len}}</div>
<div>{{with .Prev}}<a href="{{.}}">Previous</a>{{end}} {{with .Next}}<a href="{{.}}">Next</a>{{end}}</div>
<pre>{{.C.Text}}</pre>
</div></body></html>`))
