package master

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sparkd/sparkd/protocol"
)

func TestMasterMetrics(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{})
	code, body, h := get(t, srv.URL+"/metrics/master/prometheus")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, true, strings.HasPrefix(h.Get("Content-Type"), "text/plain"))
	expectContains(t, body,
		"metrics_master_workers_Number{type=\"gauges\"} 3\n",
		"metrics_master_workers_Value{type=\"gauges\"} 3\n",
		"metrics_master_aliveWorkers_Number{type=\"gauges\"} 2\n",
		"metrics_master_aliveWorkers_Value{type=\"gauges\"} 2\n",
		"metrics_master_apps_Value{type=\"gauges\"} 2\n",
		"metrics_master_waitingApps_Value{type=\"gauges\"} 1\n",
		"metrics_master_ha_epoch_Value{type=\"gauges\"} 7\n",
		"metrics_master_ha_leader_Value{type=\"gauges\"} 1\n",
		"metrics_master_ha_alive_Value{type=\"gauges\"} 1\n",
		"metrics_master_ha_state_Value{type=\"gauges\",state=\"ALIVE\"} 1\n",
		"metrics_master_ha_state_Value{type=\"gauges\",state=\"STANDBY\"} 0\n",
		"metrics_master_ha_leaderTransitions_Count{type=\"counters\"} 3\n",
		"metrics_master_ha_fencedWrites_Count{type=\"counters\"} 1\n",
		"metrics_master_ha_secondsSinceZooKeeperContact_Value{type=\"gauges\"} 2.000\n",
		"metrics_master_ha_lastFailoverSeconds_Value{type=\"gauges\"} 1.500\n",
	)
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if !strings.HasPrefix(line, "metrics_master_") || strings.Count(line, " ") != 1 {
			t.Errorf("malformed line %q", line)
		}
	}
}

func TestMasterMetricsStandby(t *testing.T) {
	v := standbyView()
	srv := startUI(t, newFakeActions(v), UIOptions{})
	_, body, _ := get(t, srv.URL+"/metrics/master/prometheus")
	expectContains(t, body,
		"metrics_master_workers_Value{type=\"gauges\"} 0\n",
		"metrics_master_ha_leader_Value{type=\"gauges\"} 0\n",
		"metrics_master_ha_state_Value{type=\"gauges\",state=\"STANDBY\"} 1\n",
		"metrics_master_ha_secondsSinceZooKeeperContact_Value{type=\"gauges\"} -1\n",
	)
	v.Status = protocol.MasterRecovering
	var b strings.Builder
	if err := writeMasterMetrics(&b, v, testNow); err != nil {
		t.Fatal(err)
	}
	expectContains(t, b.String(), "metrics_master_ha_leader_Value{type=\"gauges\"} 1\n", "metrics_master_ha_alive_Value{type=\"gauges\"} 0\n")
}

func TestApplicationMetrics(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{})
	code, body, _ := get(t, srv.URL+"/metrics/applications/prometheus")
	expectEqual(t, http.StatusOK, code)
	start := sampleView().ActiveApps[0].SubmitTime.UnixMilli()
	k := "metrics_application_Spark_Pi_" + strconv.FormatInt(start, 10) + "_"
	expectContains(t, body,
		k+"cores_Number{type=\"gauges\"} 2\n",
		k+"cores_Value{type=\"gauges\"} 2\n",
		k+"runtime_ms_Value{type=\"gauges\"} 600000\n",
		k+"status_Value{type=\"gauges\",status=\"RUNNING\",app_id=\"app-20261120224500-0000\"} 1\n",
		"status=\"WAITING\"",
	)
	expectNotContains(t, body, "done") // completed apps have no source
}
