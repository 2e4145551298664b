package master

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// Metrics in Spark's PrometheusServlet text format: the key is
// metrics_<source>_<name>_ with every non-alphanumeric replaced by "_"; a
// gauge yields <key>Number{type="gauges"} v and <key>Value{type="gauges"} v,
// a counter <key>Count{type="counters"} v.
//
// /metrics/master/prometheus (Spark's MasterSource, same names on a standby,
// where workers = 0):
//
//	metrics_master_workers_*        all workers the master knows
//	metrics_master_aliveWorkers_*   ALIVE workers
//	metrics_master_apps_*           active (not completed) applications
//	metrics_master_waitingApps_*    applications in state WAITING
//
// plus sparkd's HA metrics:
//
//	metrics_master_ha_leader_*                     1 while this master holds leadership (RECOVERING, COMPLETING_RECOVERY or ALIVE), else 0
//	metrics_master_ha_alive_*                      1 while this master is ALIVE, else 0
//	metrics_master_ha_state_*{...,state="S"}       1 for the current RecoveryState S
//	metrics_master_ha_epoch_*                      the fencing epoch this master last saw
//	metrics_master_ha_leaderTransitions_Count      times this master took office
//	metrics_master_ha_fencedWrites_Count           writes refused because a newer epoch exists
//	metrics_master_ha_secondsSinceZooKeeperContact_*  seconds since the last ZooKeeper reply (-1 without ZooKeeper or before the first reply)
//	metrics_master_ha_lastFailoverSeconds_*        duration of the last election-to-ALIVE recovery, seconds (0 if none)
//
// /metrics/applications/prometheus (Spark's ApplicationSource, one source
// per active application named application.<name>.<start ms>):
//
//	metrics_application_<name>_<start>_cores_*       cores granted
//	metrics_application_<name>_<start>_runtime_ms_*  ms since submission
//	metrics_application_<name>_<start>_status_Value{type="gauges",status="RUNNING",app_id="..."} 1
//
// Spark's servlet skips string gauges such as status; sparkd renders it as a
// labelled 1 so that it can be scraped.

var nonAlnum = regexp.MustCompile(`[^a-zA-Z0-9]`)

func metricKey(source, name string) string {
	return "metrics_" + nonAlnum.ReplaceAllString(source+"."+name, "_") + "_"
}

type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *promWriter) gauge(source, name string, v any) {
	k := metricKey(source, name)
	p.printf("%sNumber{type=\"gauges\"} %v\n%sValue{type=\"gauges\"} %v\n", k, v, k, v)
}

func (p *promWriter) counter(source, name string, v uint64) {
	p.printf("%sCount{type=\"counters\"} %d\n", metricKey(source, name), v)
}

func boolGauge(b bool) int {
	if b {
		return 1
	}
	return 0
}

func writeMasterMetrics(w io.Writer, v View, now time.Time) error {
	p := &promWriter{w: w}
	alive, waiting := 0, 0
	for _, wk := range v.Workers {
		if wk.State == protocol.WorkerAlive {
			alive++
		}
	}
	for _, a := range v.ActiveApps {
		if a.State == protocol.AppWaiting {
			waiting++
		}
	}
	p.gauge("master", "aliveWorkers", alive)
	p.gauge("master", "apps", len(v.ActiveApps))
	p.gauge("master", "waitingApps", waiting)
	p.gauge("master", "workers", len(v.Workers))

	leader := v.Status == protocol.MasterAlive || v.Status == protocol.MasterRecovering || v.Status == protocol.MasterCompletingRecovery
	p.gauge("master", "ha.alive", boolGauge(v.Status == protocol.MasterAlive))
	p.gauge("master", "ha.epoch", v.Epoch)
	p.counter("master", "ha.fencedWrites", v.HA.FencedWrites)
	p.gauge("master", "ha.lastFailoverSeconds", strconv.FormatFloat(v.HA.LastFailover.Seconds(), 'f', 3, 64))
	p.gauge("master", "ha.leader", boolGauge(leader))
	p.counter("master", "ha.leaderTransitions", v.HA.LeaderTransitions)
	since := "-1"
	if v.HA.ZKEnabled && !v.HA.LastZKContact.IsZero() {
		since = strconv.FormatFloat(max(now.Sub(v.HA.LastZKContact).Seconds(), 0), 'f', 3, 64)
	}
	p.gauge("master", "ha.secondsSinceZooKeeperContact", since)
	for _, st := range []protocol.MasterState{protocol.MasterAlive, protocol.MasterCompletingRecovery, protocol.MasterRecovering, protocol.MasterStandby} {
		p.printf("%sValue{type=\"gauges\",state=\"%s\"} %d\n", metricKey("master", "ha.state"), st, boolGauge(v.Status == st))
	}
	return p.err
}

func writeAppMetrics(w io.Writer, v View, now time.Time) error {
	p := &promWriter{w: w}
	for _, a := range v.ActiveApps {
		source := fmt.Sprintf("application.%s.%d", a.Name, msOf(a.SubmitTime))
		p.gauge(source, "cores", a.Cores)
		p.gauge(source, "runtime_ms", appDuration(a, now).Milliseconds())
		p.printf("%sValue{type=\"gauges\",status=\"%s\",app_id=\"%s\"} 1\n",
			metricKey(source, "status"), a.State, promLabel(a.ID))
	}
	return p.err
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func promLabel(s string) string { return labelEscaper.Replace(s) }

func (u *webUI) handleMasterMetrics(w http.ResponseWriter, r *http.Request) {
	u.serveMetrics(w, writeMasterMetrics)
}

func (u *webUI) handleAppMetrics(w http.ResponseWriter, r *http.Request) {
	u.serveMetrics(w, writeAppMetrics)
}

func (u *webUI) serveMetrics(w http.ResponseWriter, write func(io.Writer, View, time.Time) error) {
	var b strings.Builder
	if err := write(&b, u.a.View(), u.now()); err != nil {
		http.Error(w, "metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}
