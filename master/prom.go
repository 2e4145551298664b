package master

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sparkd/sparkd/protocol"
)

// Standard metrics (prometheus/client_golang) on the web UI's /metrics,
// beside the Spark-named /metrics/master/prometheus: the Go runtime and
// process (goroutines, memory, open fds), and the HA signals.
//
//	sparkd_master_leader                 1 while this master holds a term (and is not self-fenced)
//	sparkd_master_state{state}           1 for the current RecoveryState
//	sparkd_master_epoch                  the epoch this master last saw
//	sparkd_master_leader_transitions_total, sparkd_master_fenced_writes_total
//	sparkd_master_failover_seconds       histogram: from "no leader" (or election) to ALIVE, per term
//	sparkd_master_zookeeper_seconds_since_contact
//	sparkd_master_outbox_depth, sparkd_master_persist_depth   queued or in flight in the current term
//	sparkd_master_persist_retries_total  store writes that failed and were retried
//	sparkd_master_reconciled_total{action}  launch_refused, marked_lost, killed_unknown, report_refused, ended_while_leaderless
//	sparkd_zookeeper_call_seconds{op}    histogram of ZooKeeper call latency (when cmd/sparkd wires it)
//
// Every value is read in O(1) under the state lock at scrape time.
type promMetrics struct {
	reg      *prometheus.Registry
	failover prometheus.Histogram
	retries  uint64 // persist retries of ended terms
}

var (
	descLeader      = prometheus.NewDesc("sparkd_master_leader", "1 while this master holds a term of leadership.", nil, nil)
	descState       = prometheus.NewDesc("sparkd_master_state", "1 for the master's current recovery state.", []string{"state"}, nil)
	descEpoch       = prometheus.NewDesc("sparkd_master_epoch", "The fencing epoch this master last saw.", nil, nil)
	descTransitions = prometheus.NewDesc("sparkd_master_leader_transitions_total", "Terms this master took office.", nil, nil)
	descFenced      = prometheus.NewDesc("sparkd_master_fenced_writes_total", "Writes refused because a newer epoch exists.", nil, nil)
	descContact     = prometheus.NewDesc("sparkd_master_zookeeper_seconds_since_contact", "Seconds since the last ZooKeeper reply (-1: none).", nil, nil)
	descOutbox      = prometheus.NewDesc("sparkd_master_outbox_depth", "Messages to workers and drivers queued or in flight.", nil, nil)
	descPersist     = prometheus.NewDesc("sparkd_master_persist_depth", "Store writes queued or in flight.", nil, nil)
	descRetries     = prometheus.NewDesc("sparkd_master_persist_retries_total", "Store writes that failed and were retried.", nil, nil)
	descReconciled  = prometheus.NewDesc("sparkd_master_reconciled_total", "Reconciliation actions with the fleet.", []string{"action"}, nil)
	descWorkers     = prometheus.NewDesc("sparkd_master_workers", "Workers by state.", []string{"state"}, nil)
	descApps        = prometheus.NewDesc("sparkd_master_apps", "Active applications.", nil, nil)
)

func newPromMetrics(m *Master) *promMetrics {
	pm := &promMetrics{reg: prometheus.NewRegistry()}
	pm.failover = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sparkd_master_failover_seconds",
		Help:    "Time from no leader (or this master's election) to ALIVE, per term this master led.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 30, 60, 120},
	})
	pm.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		pm.failover, masterCollector{m})
	return pm
}

// Registry is the registry behind /metrics; cmd/sparkd adds the ZooKeeper
// call latency to it.
func (m *Master) Registry() *prometheus.Registry { return m.prom.reg }

// MetricsHandler serves the registry in Prometheus' text format.
func (m *Master) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.prom.reg, promhttp.HandlerOpts{})
}

type masterCollector struct{ m *Master }

func (c masterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descState, descEpoch, descTransitions, descFenced, descContact,
		descOutbox, descPersist, descRetries, descReconciled, descWorkers, descApps} {
		ch <- d
	}
}

func (c masterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	lc := m.elector.LastContact()
	m.mu.Lock()
	status := m.statusLocked()
	epoch := int64(0)
	if m.leaderKnown {
		epoch = m.leader.Epoch
	}
	var outbox, persist int64
	retries := m.prom.retries
	if t := m.term; t != nil {
		epoch = t.epoch
		outbox, persist = t.out.depth.Load(), t.persist.Depth()
		retries += t.persist.failures.Load()
	}
	ha := m.ha
	workers := map[protocol.WorkerState]int{}
	for _, w := range m.st.workers {
		workers[w.state]++
	}
	apps := len(m.st.apps)
	m.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descLeader, float64(boolGauge(status != protocol.MasterStandby)))
	for _, s := range []protocol.MasterState{protocol.MasterStandby, protocol.MasterRecovering, protocol.MasterCompletingRecovery, protocol.MasterAlive} {
		gauge(descState, float64(boolGauge(s == status)), string(s))
	}
	gauge(descEpoch, float64(epoch))
	counter(descTransitions, ha.LeaderTransitions)
	counter(descFenced, ha.FencedWrites)
	since := -1.0
	if !lc.IsZero() {
		since = time.Since(lc).Seconds()
	}
	gauge(descContact, since)
	gauge(descOutbox, float64(outbox))
	gauge(descPersist, float64(persist))
	counter(descRetries, retries)
	r := ha.Reconciled
	counter(descReconciled, r.LaunchRefused, "launch_refused")
	counter(descReconciled, r.MarkedLost, "marked_lost")
	counter(descReconciled, r.KilledUnknown, "killed_unknown")
	counter(descReconciled, r.ReportsRefused, "report_refused")
	counter(descReconciled, r.EndedWhileLeaderless, "ended_while_leaderless")
	for _, s := range []protocol.WorkerState{protocol.WorkerAlive, protocol.WorkerDead, protocol.WorkerDecommissioned, protocol.WorkerUnknown} {
		gauge(descWorkers, float64(workers[s]), string(s))
	}
	gauge(descApps, float64(apps))
}
