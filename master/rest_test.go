package master

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

func startREST(t *testing.T, a Actions) *httptest.Server {
	t.Helper()
	env := map[string]string{"SERVER_HOME": "/opt/sparkd"}
	srv := httptest.NewServer(newRESTServer(a, UIOptions{}, func(k string) string { return env[k] }))
	t.Cleanup(srv.Close)
	return srv
}

// restDo sends body (raw JSON, "" for none) and decodes the JSON answer.
func restDo(t *testing.T, method, u, body string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, u, raw)
	}
	if m["serverSparkVersion"] == nil {
		t.Errorf("%s %s: answer lacks serverSparkVersion: %q", method, u, raw)
	}
	return resp.StatusCode, m
}

const goodCreate = `{
  "action": "CreateSubmissionRequest",
  "appArgs": ["10", "--flag"],
  "appResource": "/opt/apps/pi.sh",
  "clientSparkVersion": "3.5.1",
  "mainClass": "org.apache.spark.examples.SparkPi",
  "environmentVariables": {"SPARK_ENV_LOADED": "1", "SPARK_LOCAL_IP": "10.0.0.9", "HOME_DIR": "{{SERVER_HOME}}/work"},
  "sparkProperties": {
    "spark.app.name": "SparkPi",
    "spark.driver.cores": "2",
    "spark.driver.memory": "2g",
    "spark.driver.supervise": "true",
    "spark.master": "spark://m1:6066,m2:6066"
  },
  "extraField": 1
}`

func TestRESTCreate(t *testing.T) {
	fa := newFakeActions(sampleView())
	srv := startREST(t, fa)
	code, m := restDo(t, http.MethodPost, srv.URL+"/v1/submissions/create", goodCreate)
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, "CreateSubmissionResponse", m["action"])
	expectEqual(t, true, m["success"])
	expectEqual(t, "driver-20261120225319-0000", m["submissionId"])
	expectEqual(t, "Driver successfully submitted as driver-20261120225319-0000", m["message"])
	expectEqual(t, []any{"extraField"}, m["unknownFields"])

	if len(fa.submitted) != 1 {
		t.Fatalf("submitted %d drivers, want 1", len(fa.submitted))
	}
	spec := fa.submitted[0]
	expectEqual(t, "SparkPi", spec.Name)
	expectEqual(t, []string{"/opt/apps/pi.sh", "10", "--flag"}, spec.Command)
	expectEqual(t, 2, spec.Cores)
	expectEqual(t, 2048, spec.MemoryMB)
	expectEqual(t, true, spec.Supervise)
	expectEqual(t, "org.apache.spark.examples.SparkPi", spec.MainClass)
	// The REST port is rewritten to the RPC port: the driver gets every master.
	expectEqual(t, "spark://m1:7077,m2:7077", spec.Masters)
	expectEqual(t, map[string]string{"SPARK_ENV_LOADED": "1", "HOME_DIR": "/opt/sparkd/work"}, spec.Env)
	expectEqual(t, "2g", spec.Properties["spark.driver.memory"])
}

func TestRESTCreateDefaults(t *testing.T) {
	fa := newFakeActions(sampleView())
	srv := startREST(t, fa)
	body := `{"action":"CreateSubmissionRequest","clientSparkVersion":"4.0.0","appResource":"/bin/true","sparkProperties":{"spark.app.name":"x"}}`
	code, m := restDo(t, http.MethodPost, srv.URL+"/v1/submissions/create", body)
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, true, m["success"])
	expectEqual(t, nil, m["unknownFields"])
	spec := fa.submitted[0]
	expectEqual(t, 1, spec.Cores)
	expectEqual(t, 1024, spec.MemoryMB)
	expectEqual(t, false, spec.Supervise)
	expectEqual(t, "spark://m1:7077", spec.Masters)
	expectEqual(t, []string{"/bin/true"}, spec.Command)
}

func TestRESTCreateMalformed(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty body", ``, "not a JSON object"},
		{"not JSON", `{"action":`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"missing action", `{"clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x"}}`, "The action field is missing."},
		{"wrong action", `{"action":"KillSubmissionRequest"}`, "Unexpected action 'KillSubmissionRequest'"},
		{"missing clientSparkVersion", `{"action":"CreateSubmissionRequest","appResource":"a","sparkProperties":{"spark.app.name":"x"}}`, "'clientSparkVersion' is missing"},
		{"missing appResource", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","sparkProperties":{"spark.app.name":"x"}}`, "'appResource' is missing"},
		{"missing sparkProperties", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a"}`, "'sparkProperties' is missing"},
		{"missing app name", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{}}`, "'spark.app.name' is missing"},
		{"appArgs wrong type", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","appArgs":"x","sparkProperties":{"spark.app.name":"x"}}`, "field 'appArgs' has the wrong type"},
		{"property wrong type", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":1}}`, "field 'sparkProperties' has the wrong type"},
		{"bad supervise", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.driver.supervise":"yes please"}}`, "Property 'spark.driver.supervise' expected boolean value: actual value 'yes please'."},
		{"bad cores", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.driver.cores":"two"}}`, "Property 'spark.driver.cores' expected numeric value"},
		{"zero cores", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.driver.cores":"0"}}`, "Property 'spark.driver.cores' expected numeric value"},
		{"bad cores.max", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.cores.max":"lots"}}`, "Property 'spark.cores.max' expected numeric value"},
		{"bad memory", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.driver.memory":"2 zettabytes"}}`, "Property 'spark.driver.memory' expected memory value"},
		{"bad executor memory", `{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x","spark.executor.memory":"-1g"}}`, "Property 'spark.executor.memory' expected memory value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFakeActions(sampleView())
			srv := startREST(t, fa)
			code, m := restDo(t, http.MethodPost, srv.URL+"/v1/submissions/create", tt.body)
			expectEqual(t, http.StatusBadRequest, code)
			expectEqual(t, "ErrorResponse", m["action"])
			expectEqual(t, false, m["success"])
			msg, _ := m["message"].(string)
			if !strings.HasPrefix(msg, "Malformed request: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("message %q: want prefix \"Malformed request: \" and %q", msg, tt.want)
			}
			expectEqual(t, 0, len(fa.submitted))
		})
	}
}

func TestRESTNotAlive(t *testing.T) {
	fa := newFakeActions(standbyView())
	srv := startREST(t, fa)
	hint := map[string]any{"state": "STANDBY", "leaderUrl": "spark://m1:7077", "leaderWebUiUrl": "http://m1:8080", "epoch": float64(7)}
	tests := []struct {
		method, path, body, action, msg string
	}{
		{http.MethodPost, "/v1/submissions/create", goodCreate, "CreateSubmissionResponse", "Can only accept driver submissions in ALIVE state. Current state: STANDBY."},
		{http.MethodPost, "/v1/submissions/kill/driver-1", "", "KillSubmissionResponse", "Can only kill drivers in ALIVE state. Current state: STANDBY."},
		{http.MethodGet, "/v1/submissions/status/driver-1", "", "SubmissionStatusResponse", "Can only request driver status in ALIVE state. Current state: STANDBY."},
		{http.MethodPost, "/v1/submissions/killall", "", "KillAllSubmissionResponse", "Can only kill drivers in ALIVE state. Current state: STANDBY."},
		{http.MethodPost, "/v1/submissions/clear", "", "ClearResponse", "Can only clear completed drivers and applications in ALIVE state. Current state: STANDBY."},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, m := restDo(t, tt.method, srv.URL+tt.path, tt.body)
			expectEqual(t, http.StatusOK, code)
			expectEqual(t, tt.action, m["action"])
			expectEqual(t, false, m["success"])
			expectEqual(t, tt.msg, m["message"])
			expectEqual(t, hint, m["leaderHint"])
		})
	}
	code, m := restDo(t, http.MethodGet, srv.URL+"/v1/submissions/readyz", "")
	expectEqual(t, http.StatusServiceUnavailable, code)
	expectEqual(t, "ErrorResponse", m["action"])
	expectEqual(t, "Master is not ready.", m["message"])
	expectEqual(t, "spark://m1:7077", m["leaderHint"].(map[string]any)["leaderUrl"])
	expectEqual(t, 0, len(fa.submitted))
}

func TestRESTStatusKill(t *testing.T) {
	fa := newFakeActions(sampleView())
	fa.statuses["driver-20261120224500-0000"] = protocol.DriverStatus{
		DriverID: "driver-20261120224500-0000", Found: true, State: protocol.DriverRunning,
		WorkerID: "worker-20261120224000-w1-35000", WorkerHostPort: "w1:35000",
	}
	fa.statuses["driver-20261120224000-0000"] = protocol.DriverStatus{
		DriverID: "driver-20261120224000-0000", Found: true, State: protocol.DriverFailed, Exception: "exit code 3",
	}
	srv := startREST(t, fa)

	code, m := restDo(t, http.MethodGet, srv.URL+"/v1/submissions/status/driver-20261120224500-0000", "")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, map[string]any{
		"action": "SubmissionStatusResponse", "driverState": "RUNNING", "serverSparkVersion": restServerSparkVersion,
		"submissionId": "driver-20261120224500-0000", "success": true,
		"workerHostPort": "w1:35000", "workerId": "worker-20261120224000-w1-35000",
	}, m)

	_, m = restDo(t, http.MethodGet, srv.URL+"/v1/submissions/status/driver-20261120224000-0000", "")
	expectEqual(t, "FAILED", m["driverState"])
	expectEqual(t, "Exception from the cluster:\nexit code 3", m["message"])

	_, m = restDo(t, http.MethodGet, srv.URL+"/v1/submissions/status/driver-nope", "")
	expectEqual(t, false, m["success"])
	expectEqual(t, "driver-nope", m["submissionId"])

	code, m = restDo(t, http.MethodPost, srv.URL+"/v1/submissions/kill/driver-20261120224500-0000", "")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, "KillSubmissionResponse", m["action"])
	expectEqual(t, true, m["success"])
	expectEqual(t, "Kill request for driver-20261120224500-0000 submitted", m["message"])

	_, m = restDo(t, http.MethodPost, srv.URL+"/v1/submissions/kill/driver-nope", "")
	expectEqual(t, false, m["success"])
	expectEqual(t, "Driver driver-nope has already finished or does not exist", m["message"])

	_, m = restDo(t, http.MethodPost, srv.URL+"/v1/submissions/killall", "")
	expectEqual(t, "KillAllSubmissionResponse", m["action"])
	expectEqual(t, true, m["success"])
	_, m = restDo(t, http.MethodPost, srv.URL+"/v1/submissions/clear", "")
	expectEqual(t, "ClearResponse", m["action"])
	expectEqual(t, true, m["success"])
	expectEqual(t, []string{"driver:driver-20261120224500-0000", "all", "clear"}, fa.kills())

	code, m = restDo(t, http.MethodGet, srv.URL+"/v1/submissions/readyz", "")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, "ReadyzResponse", m["action"])
	expectEqual(t, true, m["success"])
}

func TestRESTPaths(t *testing.T) {
	srv := startREST(t, newFakeActions(sampleView()))
	const tail = " Please submit requests through http://[host]:[port]/v1/submissions/..."
	tests := []struct {
		method, path string
		code         int
		msg          string
	}{
		{http.MethodPost, "/", 400, "Missing protocol version." + tail},
		{http.MethodPost, "/v1", 400, "Missing the /submissions prefix." + tail},
		{http.MethodPost, "/v1/submissions", 400, "Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz." + tail},
		{http.MethodPost, "/v1/submissions/launch", 400, "Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz." + tail},
		{http.MethodPost, "/v2/submissions/create", 468, "Unknown protocol version 'v2'." + tail},
		{http.MethodPost, "/v1/submissions/kill/", 400, "Submission ID is missing in kill request."},
		{http.MethodGet, "/v1/submissions/status/", 400, "Submission ID is missing in status request."},
		{http.MethodGet, "/v1/submissions/create", 405, "HTTP method GET is not supported by /v1/submissions/create."},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, m := restDo(t, tt.method, srv.URL+tt.path, "")
			expectEqual(t, tt.code, code)
			expectEqual(t, "ErrorResponse", m["action"])
			expectEqual(t, tt.msg, m["message"])
			if tt.code == 468 {
				expectEqual(t, "v1", m["highestProtocolVersion"])
			}
		})
	}
}

func TestRESTInternalError(t *testing.T) {
	fa := newFakeActions(sampleView())
	fa.failWith = errors.New("master: store unavailable")
	srv := startREST(t, fa)
	code, m := restDo(t, http.MethodPost, srv.URL+"/v1/submissions/create", goodCreate)
	expectEqual(t, http.StatusInternalServerError, code)
	expectEqual(t, "ErrorResponse", m["action"])
	if msg, _ := m["message"].(string); !strings.Contains(msg, "store unavailable") {
		t.Errorf("message %q does not carry the cause", msg)
	}
	code, _ = restDo(t, http.MethodPost, srv.URL+"/v1/submissions/kill/driver-1", "")
	expectEqual(t, http.StatusInternalServerError, code)
}

func TestParseMemoryMB(t *testing.T) {
	good := map[string]int{"1024": 1024, "512m": 512, "512M": 512, "2g": 2048, "2gb": 2048, "1t": 1 << 20, "1048576k": 1024, " 4G ": 4096}
	for in, want := range good {
		got, err := parseMemoryMB(in)
		if err != nil {
			t.Errorf("parseMemoryMB(%q): %v", in, err)
		}
		expectEqual(t, want, got, "parseMemoryMB(%q)", in)
	}
	for _, in := range []string{"", "g", "-1g", "1.5g", "100b", "12x", "99999999999999999999", "9999999999p"} {
		if _, err := parseMemoryMB(in); err == nil {
			t.Errorf("parseMemoryMB(%q) accepted", in)
		}
	}
}

// FuzzDecodeCreateRequest: no body makes the create decoder or the spec
// builder panic, and whatever they accept is a valid DriverSpec.
func FuzzDecodeCreateRequest(f *testing.F) {
	f.Add([]byte(goodCreate))
	f.Add([]byte(`{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","sparkProperties":{"spark.app.name":"x"}}`))
	f.Add([]byte(`{"action":"CreateSubmissionRequest","clientSparkVersion":"1","appResource":"a","appArgs":null,"sparkProperties":{"spark.app.name":"x","spark.driver.memory":"99999999999999p"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"sparkProperties":{"spark.app.name":{}}}`))
	f.Add([]byte("\xff\x00{"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := decodeCreateRequest(body)
		if err != nil {
			if !errors.Is(err, errRESTMalformed) {
				t.Fatalf("error %v does not wrap errRESTMalformed", err)
			}
			return
		}
		spec, err := driverSpec(req, "spark://m1:7077", "spark://m1:6066", func(string) string { return "" })
		if err != nil {
			if !errors.Is(err, errRESTMalformed) {
				t.Fatalf("error %v does not wrap errRESTMalformed", err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted an invalid spec: %v", err)
		}
		if spec.Cores <= 0 || spec.MemoryMB <= 0 {
			t.Fatalf("accepted cores %d memory %d", spec.Cores, spec.MemoryMB)
		}
	})
}

// spark-submit users give the REST port (spark://m1:6066,m2:6066) in
// cluster mode; sparkd's clients find the leader with protocol.PathLeader,
// so the REST server answers it too. Before the fix it answered 400
// "Missing the /submissions prefix" and `sparkd submit --deploy-mode
// cluster --master spark://m1:6066` waited a minute and failed.
func TestRESTAnswersLeaderProbe(t *testing.T) {
	v := sampleView()
	v.Status = protocol.MasterStandby
	v.ID, v.URL = "master-2", "spark://m2:7077"
	v.LeaderRESTURL = "spark://m1:6066"
	srv := startREST(t, newFakeActions(v))
	var li protocol.LeaderInfo
	err := protocol.NewClient(5*time.Second, "").Call(t.Context(), http.MethodGet, strings.TrimPrefix(srv.URL, "http://"), protocol.PathLeader, nil, &li)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, protocol.MasterStandby, li.State)
	expectEqual(t, "spark://m2:7077", li.URL)
	expectEqual(t, "spark://m1:7077", li.LeaderURL)
	expectEqual(t, "spark://m1:6066", li.LeaderREST)
	expectEqual(t, int64(7), li.Epoch)
	expectEqual(t, v.LeaderSince.UTC().Format(time.RFC3339), li.LeaderSince)
	// Other unknown paths keep Spark's answer.
	code, m := restDo(t, http.MethodGet, srv.URL+"/v1/nope", "")
	expectEqual(t, http.StatusBadRequest, code)
	expectEqual(t, "ErrorResponse", m["action"])
}

// The real master fills the leader's REST URL in its View, as leader and
// as standby (from the election data).
func TestViewNamesLeaderRESTURL(t *testing.T) {
	cfg := testConfig()
	cfg.RESTEnabled, cfg.RESTPort = true, 0
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	v := tm.View()
	if v.RESTURL == "" {
		t.Fatal("no REST URL")
	}
	expectEqual(t, v.RESTURL, v.LeaderRESTURL)

	standby := startMaster(t, testConfig(), nil)
	standby.el.otherLeader(t, "spark://m1:7077", 3)
	standby.el.mu.Lock()
	l := standby.el.leader
	standby.el.mu.Unlock()
	l.Candidate.RESTURL = "spark://m1:6066"
	standby.el.cb.OnLeaderChanged(l, true)
	expectEqual(t, "spark://m1:6066", standby.View().LeaderRESTURL)
}
