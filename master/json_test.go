package master

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/sparkd/sparkd/protocol"
)

func decodeJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return m
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedStrings(s ...string) []string {
	sort.Strings(s)
	return s
}

func TestMasterJSONShape(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{})
	code, body, h := get(t, srv.URL+"/json")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, "application/json", h.Get("Content-Type"))
	m := decodeJSON(t, body)

	expectEqual(t, sortedStrings("url", "workers", "aliveworkers", "cores", "coresused", "memory", "memoryused",
		"resources", "resourcesused", "activeapps", "completedapps", "activedrivers", "completeddrivers", "status",
		"epoch", "recovering", "leader", "leaderurl", "leaderwebuiurl"), keys(m))
	expectEqual(t, "spark://m1:7077", m["url"])
	expectEqual(t, float64(2), m["aliveworkers"])
	// Alive workers only; memory in MB.
	expectEqual(t, float64(16), m["cores"])
	expectEqual(t, float64(2), m["coresused"])
	expectEqual(t, float64(32768), m["memory"])
	expectEqual(t, float64(2048), m["memoryused"])
	expectEqual(t, "ALIVE", m["status"])
	expectEqual(t, float64(7), m["epoch"])
	expectEqual(t, "master-1", m["leader"])
	expectEqual(t, "spark://m1:7077", m["leaderurl"])

	workers := m["workers"].([]any)
	expectEqual(t, 3, len(workers))
	w0 := workers[0].(map[string]any)
	expectEqual(t, sortedStrings("id", "host", "port", "webuiaddress", "cores", "coresused", "coresfree", "memory",
		"memoryused", "memoryfree", "resources", "resourcesused", "resourcesfree", "state", "lastheartbeat"), keys(w0))
	expectEqual(t, float64(6), w0["coresfree"])
	expectEqual(t, float64(14336), w0["memoryfree"])
	expectEqual(t, "ALIVE", w0["state"])
	expectEqual(t, float64(testNow.UnixMilli()), w0["lastheartbeat"])
	expectEqual(t, "DEAD", workers[2].(map[string]any)["state"])

	apps := m["activeapps"].([]any)
	a1 := apps[1].(map[string]any)
	expectEqual(t, sortedStrings("id", "starttime", "name", "cores", "user", "memoryperexecutor", "memoryperslave",
		"resourcesperexecutor", "resourcesperslave", "submitdate", "state", "duration", "executors", "waitingreason"), keys(a1))
	expectEqual(t, "WAITING", a1["state"])
	expectEqual(t, "each executor needs 10 cores but the largest worker has 8", a1["waitingreason"])
	expectEqual(t, float64(1024), a1["memoryperslave"])
	a0 := apps[0].(map[string]any)
	expectEqual(t, float64(600000), a0["duration"]) // running: now - start
	expectEqual(t, "Fri Nov 20 22:43:19 UTC 2026", a0["submitdate"])
	done := m["completedapps"].([]any)[0].(map[string]any)
	expectEqual(t, float64(60000), done["duration"]) // completed: end - start

	drivers := m["activedrivers"].([]any)
	d0 := drivers[0].(map[string]any)
	expectEqual(t, sortedStrings("id", "starttime", "state", "cores", "memory", "resources", "submitdate", "worker", "mainclass"), keys(d0))
	expectEqual(t, "worker-20261120224000-w1-35000", d0["worker"])
	_, isString := d0["starttime"].(string)
	expectEqual(t, true, isString, "driver starttime is a string")
	expectEqual(t, "None", drivers[1].(map[string]any)["worker"])
	expectEqual(t, "org.example.Main", d0["mainclass"])
}

func TestMasterJSONStandbyAndEmpty(t *testing.T) {
	srv := startUI(t, newFakeActions(standbyView()), UIOptions{})
	_, body, _ := get(t, srv.URL+"/json")
	m := decodeJSON(t, body)
	expectEqual(t, "STANDBY", m["status"])
	// Empty lists are [] (not null), as Spark renders them.
	for _, k := range []string{"workers", "activeapps", "completedapps", "activedrivers", "completeddrivers", "resources"} {
		expectEqual(t, []any{}, m[k], k)
	}
	expectEqual(t, "spark://m1:7077", m["leaderurl"])
}

func TestMasterJSONField(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{})
	tests := []struct {
		path string
		want map[string]any
	}{
		{"/json/status", map[string]any{"status": "ALIVE"}},
		{"/json/cores", map[string]any{"cores": float64(16)}},
		{"/json/aliveworkers", map[string]any{"aliveworkers": float64(2)}},
		{"/json/epoch", map[string]any{"epoch": float64(7)}},
		{"/json/status/extra", map[string]any{"status": "ALIVE"}}, // Spark's regex ignores the rest
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body, _ := get(t, srv.URL+tt.path)
			expectEqual(t, http.StatusOK, code)
			expectEqual(t, tt.want, decodeJSON(t, body))
		})
	}
	t.Run("/json/nosuchfield", func(t *testing.T) {
		code, body, _ := get(t, srv.URL+"/json/nosuchfield")
		expectEqual(t, http.StatusNotFound, code)
		msg, _ := decodeJSON(t, body)["error"].(string)
		if !strings.Contains(msg, `unknown /json field "nosuchfield"; known fields: `) || !strings.Contains(msg, "aliveworkers") {
			t.Errorf("the 404 must name the field and the known ones, got %q", body)
		}
	})
	t.Run("/json/workers", func(t *testing.T) {
		_, body, _ := get(t, srv.URL+"/json/workers")
		m := decodeJSON(t, body)
		expectEqual(t, []string{"workers"}, keys(m))
		expectEqual(t, 3, len(m["workers"].([]any)))
	})
}

func TestClusterUtilization(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{})
	_, body, _ := get(t, srv.URL+"/json/clusterutilization")
	expectEqual(t, map[string]any{
		"waitingDrivers": float64(1), "cores": float64(16), "coresused": float64(2), "coresutilization": float64(12),
		"memory": float64(32768), "memoryused": float64(2048), "memoryutilization": float64(6),
	}, decodeJSON(t, body))

	empty := startUI(t, newFakeActions(standbyView()), UIOptions{})
	_, body, _ = get(t, empty.URL+"/json/clusterutilization")
	m := decodeJSON(t, body)
	expectEqual(t, float64(100), m["coresutilization"], "no capacity is 100%")
	expectEqual(t, float64(100), m["memoryutilization"])
}

func TestMasterJSONOnlyAliveWorkersCount(t *testing.T) {
	v := sampleView()
	v.Workers[0].State = protocol.WorkerDecommissioned
	doc := buildMasterJSON(v, testNow)
	expectEqual(t, 1, doc.AliveWorkers)
	expectEqual(t, 8, doc.Cores)
	expectEqual(t, 0, doc.CoresUsed)
}
