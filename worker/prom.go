package worker

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Standard metrics (prometheus/client_golang) on the web UI's /metrics,
// beside Spark's /metrics/prometheus: the Go runtime and process
// (goroutines, memory, open fds) and
//
//	sparkd_worker_executors, sparkd_worker_drivers   running now
//	sparkd_worker_cores_used, sparkd_worker_memory_used_mb
//	sparkd_worker_epoch                              highest master epoch seen
//	sparkd_worker_stale_epoch_rejections_total       commands refused for a lower epoch
//	sparkd_worker_pending_reports                    state changes not yet acknowledged by a master
//	sparkd_worker_registered                         1 while registered with a master
var (
	descWExecutors = prometheus.NewDesc("sparkd_worker_executors", "Executors running.", nil, nil)
	descWDrivers   = prometheus.NewDesc("sparkd_worker_drivers", "Drivers running.", nil, nil)
	descWCores     = prometheus.NewDesc("sparkd_worker_cores_used", "Cores used by executors and drivers.", nil, nil)
	descWMem       = prometheus.NewDesc("sparkd_worker_memory_used_mb", "Memory used by executors and drivers, MB.", nil, nil)
	descWEpoch     = prometheus.NewDesc("sparkd_worker_epoch", "Highest master epoch seen.", nil, nil)
	descWStale     = prometheus.NewDesc("sparkd_worker_stale_epoch_rejections_total", "Commands refused for a lower epoch.", nil, nil)
	descWPending   = prometheus.NewDesc("sparkd_worker_pending_reports", "State changes not yet acknowledged by a master.", nil, nil)
	descWReg       = prometheus.NewDesc("sparkd_worker_registered", "1 while registered with a master.", nil, nil)
)

type workerCollector struct{ w *Worker }

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWExecutors, descWDrivers, descWCores, descWMem, descWEpoch, descWStale, descWPending, descWReg} {
		ch <- d
	}
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	w.mu.Lock()
	execs, drivers, pending, registered := len(w.executors), len(w.drivers), len(w.reports), w.registered
	cores, mem := 0, 0
	for _, e := range w.executors {
		cores += e.cores
		mem += e.memoryMB
	}
	for _, d := range w.drivers {
		cores += d.desc.Cores
		mem += d.desc.MemoryMB
	}
	w.mu.Unlock()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(descWExecutors, float64(execs))
	g(descWDrivers, float64(drivers))
	g(descWCores, float64(cores))
	g(descWMem, float64(mem))
	g(descWEpoch, float64(w.Epoch()))
	ch <- prometheus.MustNewConstMetric(descWStale, prometheus.CounterValue, float64(w.StaleEpochRejections()))
	g(descWPending, float64(pending))
	reg := 0.0
	if registered {
		reg = 1
	}
	g(descWReg, reg)
}

func (w *Worker) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), workerCollector{w})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
