package master

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/internal/webui"
	"github.com/sparkd/sparkd/protocol"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageFuncs = template.FuncMap{
	"mem":      protocol.MegabytesString,
	"date":     formatDate,
	"duration": formatDuration,
	"seconds":  func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) },
	"join":     strings.Join,
	"appTable": func(p pageData, apps []AppView, completed bool, id string) appTable {
		return appTable{Page: p, Apps: apps, Completed: completed, ID: id}
	},
	"driverTable": func(p pageData, ds []DriverView, completed bool, id string) driverTable {
		return driverTable{Page: p, Drivers: ds, Completed: completed, ID: id}
	},
}

var masterPage = template.Must(template.New("master.html").Funcs(pageFuncs).ParseFS(templateFS, "templates/master.html"))

var appPage = template.Must(template.New("app.html").Funcs(pageFuncs).ParseFS(templateFS, "templates/app.html"))

// webUI serves the master's web UI port.
type webUI struct {
	a    Actions
	opts UIOptions
	log  *logrus.Entry
	now  func() time.Time
	csrf csrfTokens
}

// NewWebUI returns the master's web UI handler: "/", "/json", "/json/{field}",
// "/json/clusterutilization", "/readyz", "/healthz",
// "/metrics/master/prometheus", "/metrics/applications/prometheus" and the
// POST kill forms "/app/kill/" and "/driver/kill/".
func NewWebUI(a Actions, opts UIOptions) http.Handler {
	return newWebUI(a, opts, time.Now)
}

func newWebUI(a Actions, opts UIOptions, now func() time.Time) http.Handler {
	u := &webUI{a: a, opts: opts, log: opts.logger(), now: now, csrf: newCSRFTokens()}
	r := mux.NewRouter()
	r.Handle("/", http.HandlerFunc(u.handlePage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/app/", http.HandlerFunc(u.handleAppPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/app", http.HandlerFunc(u.handleAppPage)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix(webui.Prefix).Handler(webui.Static()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/json", protocol.Handle(u.handleJSON)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/json/", protocol.Handle(u.handleJSON)).Methods(http.MethodGet, http.MethodHead)
	// Spark's MasterPage matches /json/([a-zA-Z]+).* and ignores the rest.
	r.Handle("/json/{field:[a-zA-Z]+}{rest:.*}", protocol.Handle(u.handleJSONField)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", http.HandlerFunc(u.handleReadyz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/healthz", http.HandlerFunc(handleHealthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics/master/prometheus", http.HandlerFunc(u.handleMasterMetrics)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics/applications/prometheus", http.HandlerFunc(u.handleAppMetrics)).Methods(http.MethodGet, http.MethodHead)
	if opts.Metrics != nil {
		r.Handle("/metrics", opts.Metrics).Methods(http.MethodGet, http.MethodHead)
	}
	r.Handle("/app/kill/", protocol.RequireJWS(opts.JWS, u.handleKill(killApp))).Methods(http.MethodPost)
	r.Handle("/app/kill", protocol.RequireJWS(opts.JWS, u.handleKill(killApp))).Methods(http.MethodPost)
	r.Handle("/driver/kill/", protocol.RequireJWS(opts.JWS, u.handleKill(killDriver))).Methods(http.MethodPost)
	r.Handle("/driver/kill", protocol.RequireJWS(opts.JWS, u.handleKill(killDriver))).Methods(http.MethodPost)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
	})
	return r
}

// handleReadyz answers 200 only on the ALIVE master, 503 with the state
// otherwise, so a load balancer in front of all masters finds the leader.
func (u *webUI) handleReadyz(w http.ResponseWriter, r *http.Request) {
	st := u.a.Status() // O(1): a health check must not walk the cluster
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st != protocol.MasterAlive {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "%s\n", st)
}

// handleHealthz answers 200 while the process serves, whatever its role.
func handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

type killKind int

const (
	killApp killKind = iota
	killDriver
)

// handleKill serves Spark's kill forms: POST id=<id>&terminate=true. Like
// Spark it redirects to "/" afterwards and does nothing unless terminate is
// true. It refuses (403) when spark.ui.killEnabled is false and (503) when
// the master is not ALIVE.
func (u *webUI) handleKill(kind killKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !u.opts.KillEnabled {
			http.Error(w, "kill is disabled (spark.ui.killEnabled=false)", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "malformed form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if why := u.csrf.check(r, u.now()); why != "" {
			u.log.Warnf("Refused a kill form from %s: %s", r.RemoteAddr, why)
			http.Error(w, "refused: "+why, http.StatusForbidden)
			return
		}
		id := strings.TrimSpace(r.PostForm.Get("id"))
		if id == "" {
			http.Error(w, "id is required", http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("terminate") != "true" {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if st := u.a.View().Status; st != protocol.MasterAlive {
			http.Error(w, fmt.Sprintf("can only kill in ALIVE state; current state: %s", st), http.StatusServiceUnavailable)
			return
		}
		var err error
		what := "application"
		if kind == killApp {
			err = u.a.KillApp(r.Context(), id)
		} else {
			what = "driver"
			err = u.a.KillDriver(r.Context(), id)
		}
		var na *NotAliveError
		switch {
		case err == nil:
			u.log.WithField("id", id).Infof("Asked to kill %s %s from the web UI", what, id)
			http.Redirect(w, r, "/", http.StatusSeeOther)
		case errors.As(err, &na):
			http.Error(w, fmt.Sprintf("can only kill in ALIVE state; current state: %s", na.State), http.StatusServiceUnavailable)
		case errors.Is(err, ErrNotFound):
			http.Error(w, fmt.Sprintf("%s %s not found", what, id), http.StatusNotFound)
		default:
			u.log.WithError(err).WithField("id", id).Warnf("kill %s failed", what)
			http.Error(w, fmt.Sprintf("kill %s %s: %v", what, id, err), http.StatusInternalServerError)
		}
	}
}

// pageData is what templates/master.html renders.
type pageData struct {
	View
	Version                                      string
	Now                                          time.Time
	AliveWorkers, DeadWorkers                    int
	DecommissionedWorkers, UnknownWorkers        int
	Cores, CoresUsed, MemoryMB, MemoryUsedMB     int
	WaitingDrivers                               int
	KilledDrivers, FailedDrivers, ErrorDrivers   int
	RelaunchingDrivers                           int
	KillEnabled                                  bool   // KillEnabled and ALIVE: render kill forms
	CSRF                                         string // the kill forms' anti-CSRF token
	ShowDrivers                                  bool
	RunningApps, CompletedAppsSorted             []AppView
	RunningDriversSorted, CompletedDriversSorted []DriverView
}

type appTable struct {
	Page      pageData
	Apps      []AppView
	Completed bool
	ID        string // the table's element id
}

type driverTable struct {
	Page      pageData
	Drivers   []DriverView
	Completed bool
	ID        string
}

// appPageData is what templates/app.html renders.
type appPageData struct {
	App         AppView
	Version     string
	CSRF        string // the kill form's anti-CSRF token
	KillEnabled bool
	CoresLeft   int
	LimitSet    bool
	Limit       int
}

// handleAppPage serves Spark's application page, /app/?appId=<id>: the
// application, its executors with their workers and log links, and its
// Application Detail UI.
func (u *webUI) handleAppPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("appId")
	v := u.a.View()
	var app *AppView
	for _, list := range [][]AppView{v.ActiveApps, v.CompletedApps} {
		for i := range list {
			if list[i].ID == id {
				app = &list[i]
			}
		}
	}
	if app == nil {
		http.Error(w, fmt.Sprintf("no application %q on this master (it may have been retained no more, or this master is %s)", id, v.Status), http.StatusNotFound)
		return
	}
	d := appPageData{App: *app, Version: webui.Version, CSRF: u.csrf.token(u.now()), KillEnabled: u.opts.KillEnabled && v.Status == protocol.MasterAlive,
		CoresLeft: max(app.MaxCores-app.Cores, 0), LimitSet: app.ExecutorLimit >= 0, Limit: app.ExecutorLimit}
	var buf bytes.Buffer
	if err := appPage.Execute(&buf, d); err != nil {
		u.log.WithError(err).Error("render application page")
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (u *webUI) handlePage(w http.ResponseWriter, r *http.Request) {
	v := u.a.View()
	d := pageData{View: v, Version: webui.Version, Now: u.now()}
	for _, wk := range v.Workers {
		switch wk.State {
		case protocol.WorkerAlive:
			d.AliveWorkers++
		case protocol.WorkerDead:
			d.DeadWorkers++
		case protocol.WorkerDecommissioned:
			d.DecommissionedWorkers++
		default:
			d.UnknownWorkers++
		}
	}
	_, d.Cores, d.CoresUsed, d.MemoryMB, d.MemoryUsedMB = aliveTotals(v)
	for _, dr := range v.ActiveDrivers {
		switch dr.State {
		case protocol.DriverSubmitted:
			d.WaitingDrivers++
		case protocol.DriverRelaunching:
			d.RelaunchingDrivers++
		}
	}
	for _, dr := range v.CompletedDrivers {
		switch dr.State {
		case protocol.DriverKilled:
			d.KilledDrivers++
		case protocol.DriverFailed:
			d.FailedDrivers++
		case protocol.DriverError:
			d.ErrorDrivers++
		case protocol.DriverRelaunching:
			d.RelaunchingDrivers++
		}
	}
	d.KillEnabled = u.opts.KillEnabled && v.Status == protocol.MasterAlive
	d.CSRF = u.csrf.token(u.now())
	d.ShowDrivers = len(v.ActiveDrivers)+len(v.CompletedDrivers) > 0
	// Spark: running apps newest first, completed apps by end time (newest first).
	d.RunningApps = sortedApps(v.ActiveApps, func(a AppView) time.Time { return a.SubmitTime })
	d.CompletedAppsSorted = sortedApps(v.CompletedApps, func(a AppView) time.Time { return a.EndTime })
	d.RunningDriversSorted = sortedDrivers(v.ActiveDrivers)
	d.CompletedDriversSorted = sortedDrivers(v.CompletedDrivers)

	var buf bytes.Buffer
	if err := masterPage.Execute(&buf, d); err != nil {
		u.log.WithError(err).Error("render master page")
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func sortedApps(in []AppView, key func(AppView) time.Time) []AppView {
	out := append([]AppView(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]).After(key(out[j])) })
	return out
}

func sortedDrivers(in []DriverView) []DriverView {
	out := append([]DriverView(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].SubmitTime.After(out[j].SubmitTime) })
	return out
}

// Killable reports whether Spark offers a kill link for the application.
func (a AppView) Killable() bool {
	return a.State == protocol.AppRunning || a.State == protocol.AppWaiting
}

// Killable reports whether Spark offers a kill link for the driver.
func (d DriverView) Killable() bool {
	return d.State == protocol.DriverRunning || d.State == protocol.DriverSubmitted
}

// Duration is the application's run time at now (Spark's duration column).
func (d pageData) Duration(a AppView) time.Duration { return appDuration(a, d.Now) }

// formatDate renders a time like Spark's UIUtils.formatDate.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006/01/02 15:04:05")
}

// formatDuration renders like Spark's UIUtils.formatDuration.
func formatDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 100 {
		return fmt.Sprintf("%d ms", ms)
	}
	sec := float64(ms) / 1000
	switch min := sec / 60; {
	case sec < 1:
		return fmt.Sprintf("%.1f s", sec)
	case sec < 60:
		return fmt.Sprintf("%.0f s", sec)
	case min < 10:
		return fmt.Sprintf("%.1f min", min)
	case min < 60:
		return fmt.Sprintf("%.0f min", min)
	default:
		return fmt.Sprintf("%.1f h", min/60)
	}
}
