package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/protocol"
)

// fakeCluster is one scripted master (RPC + REST) for command tests.
type fakeCluster struct {
	t        *testing.T
	rpcSrv   *httptest.Server
	restSrv  *httptest.Server
	url      string
	mu       sync.Mutex
	state    protocol.MasterState
	epoch    int64
	hint     string
	apps     map[string]protocol.RegisterApplication
	killed   []string
	unreg    []string
	creates  []restCreateRequest
	onReg    func(id, clientURL string)
	regCalls int
	limits   []int
	stateDoc string
	// createStatus, when set, is the REST create answer's HTTP status,
	// with createMessage.
	createStatus  int
	createMessage string
	createCalls   int
}

func newFakeCluster(t *testing.T, state protocol.MasterState, epoch int64) *fakeCluster {
	return newFakeClusterAuth(t, state, epoch, "")
}

// newFakeClusterAuth is newFakeCluster whose RPC server wants requests
// signed with secret (spark.authenticate.secret; "" for none).
func newFakeClusterAuth(t *testing.T, state protocol.MasterState, epoch int64, secret string) *fakeCluster {
	f := &fakeCluster{t: t, state: state, epoch: epoch, apps: map[string]protocol.RegisterApplication{}}
	r := mux.NewRouter()
	r.Handle(protocol.PathLeader, protocol.Handle(func(*http.Request) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		li := protocol.LeaderInfo{ID: "m-" + f.url, URL: f.url, State: f.state, Epoch: f.epoch, LeaderURL: f.hint,
			LeaderSince: "2026-01-02T03:04:05Z"}
		if f.state == protocol.MasterAlive {
			li.LeaderURL = f.url
			li.LeaderREST = "spark://" + strings.TrimPrefix(f.restSrv.URL, "http://")
		}
		return li, nil
	})).Methods(http.MethodGet)
	r.Handle(protocol.PathMasterStateJSON, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, f.stateDoc)
	}))
	notAlive := func() error {
		if f.state == protocol.MasterAlive {
			return nil
		}
		return &protocol.StatusError{Code: 503, Message: "standby", Hint: &protocol.LeaderHint{State: f.state, LeaderURL: f.hint, Epoch: f.epoch}}
	}
	r.Handle(protocol.PathRegisterApp, protocol.Handle(func(r *http.Request) (any, error) {
		var m protocol.RegisterApplication
		if err := protocol.DecodeBody(r, &m); err != nil {
			return nil, err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.regCalls++
		if err := notAlive(); err != nil {
			return nil, err
		}
		id := fmt.Sprintf("app-%d", len(f.apps))
		f.apps[id] = m
		if f.onReg != nil {
			go f.onReg(id, m.ClientURL)
		}
		return protocol.RegisteredApplication{Stamp: protocol.Stamp{Epoch: f.epoch, MasterURL: f.url}, AppID: id}, nil
	})).Methods(http.MethodPost)
	r.Handle(protocol.PathAppHeartbeat, protocol.Handle(func(r *http.Request) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := notAlive(); err != nil {
			return nil, err
		}
		_, ok := f.apps[mux.Vars(r)["id"]]
		return protocol.AppHeartbeatResponse{Stamp: protocol.Stamp{Epoch: f.epoch, MasterURL: f.url}, State: protocol.AppRunning, Reregister: !ok}, nil
	})).Methods(http.MethodPost)
	r.Handle(protocol.PathKillApp, protocol.Handle(func(r *http.Request) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.killed = append(f.killed, mux.Vars(r)["id"])
		return nil, nil
	})).Methods(http.MethodPost)
	r.Handle(protocol.PathRequestExecutors, protocol.Handle(func(r *http.Request) (any, error) {
		var req protocol.RequestExecutors
		if err := protocol.DecodeBody(r, &req); err != nil {
			return nil, err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := notAlive(); err != nil {
			return nil, err
		}
		f.limits = append(f.limits, req.Total)
		return nil, nil
	})).Methods(http.MethodPost)
	r.Handle(protocol.PathUnregisterApp, protocol.Handle(func(r *http.Request) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.unreg = append(f.unreg, mux.Vars(r)["id"])
		return nil, nil
	})).Methods(http.MethodPost)
	f.rpcSrv = httptest.NewServer(protocol.AuthenticateRoles(protocol.ClusterCredentials(secret, protocol.Identity{Role: protocol.RoleMaster}), protocol.VerifyOptions{}, nil, r))
	f.url = "spark://" + strings.TrimPrefix(f.rpcSrv.URL, "http://")
	t.Cleanup(f.rpcSrv.Close)

	rest := mux.NewRouter()
	yes := true
	rest.HandleFunc("/v1/submissions/create", func(w http.ResponseWriter, r *http.Request) {
		var req restCreateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.createCalls++
		if f.createStatus != 0 {
			no := false
			protocol.WriteJSON(w, f.createStatus, restResponse{Action: "ErrorResponse", Success: &no, Message: f.createMessage})
			return
		}
		if f.state != protocol.MasterAlive {
			no := false
			protocol.WriteJSON(w, 200, restResponse{Action: "CreateSubmissionResponse", Success: &no,
				Message: "Can only accept driver submissions in ALIVE state. Current state: " + string(f.state) + "."})
			return
		}
		f.creates = append(f.creates, req)
		protocol.WriteJSON(w, 200, restResponse{Action: "CreateSubmissionResponse", Success: &yes,
			SubmissionID: "driver-1", Message: "Driver successfully submitted as driver-1"})
	}).Methods(http.MethodPost)
	rest.HandleFunc("/v1/submissions/status/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		if id != "driver-1" {
			no := false
			protocol.WriteJSON(w, 200, restResponse{Action: "SubmissionStatusResponse", Success: &no, SubmissionID: id, Message: "Driver " + id + " not found"})
			return
		}
		protocol.WriteJSON(w, 200, restResponse{Action: "SubmissionStatusResponse", Success: &yes, SubmissionID: id,
			DriverState: "RUNNING", WorkerID: "worker-1", WorkerHostPort: "127.0.0.1:1"})
	}).Methods(http.MethodGet)
	rest.HandleFunc("/v1/submissions/kill/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		protocol.WriteJSON(w, 200, restResponse{Action: "KillSubmissionResponse", Success: &yes, SubmissionID: id, Message: "Kill request for " + id + " submitted"})
	}).Methods(http.MethodPost)
	f.restSrv = httptest.NewServer(rest)
	t.Cleanup(f.restSrv.Close)
	return f
}

func (f *fakeCluster) addr() string { return strings.TrimPrefix(f.url, "spark://") }

func (f *fakeCluster) push(clientURL, path string, msg any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return protocol.NewClient(3*time.Second, "").Call(ctx, http.MethodPost, clientURL, path, msg, nil)
}

func (f *fakeCluster) stamp() protocol.Stamp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return protocol.Stamp{Epoch: f.epoch, MasterURL: f.url}
}

func runCmd(t *testing.T, f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func submit(args []string, out, errb *bytes.Buffer) int { return runSubmit(args, out, errb) }

func TestSubmitFlagErrors(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "spark-defaults.conf")
	require.NoError(t, os.WriteFile(props, []byte("spark.master spark://h1:7077\nspark.executor.memory lots\n"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app"}, "no master given"},
		{[]string{"--master", "spark://a:1", "--deploy-mode", "yarn", "app"}, "--deploy-mode \"yarn\""},
		{[]string{"--master", "spark://a:1", "--executor-cores", "two", "app"}, "--executor-cores (spark.executor.cores) must be a positive integer, got \"two\""},
		{[]string{"--master", "spark://a:1", "--executor-memory", "0", "--exec", "--", "true"}, "--executor-memory (spark.executor.memory) must be positive, got 0"},
		{[]string{"--master", "spark://a:1", "--conf", "spark.executor.memory=0", "--exec", "--", "true"}, "spark.executor.memory must be positive, got 0"},
		{[]string{"--master", "spark://a:1", "--driver-memory", "0m", "--deploy-mode", "cluster", "app"}, "--driver-memory (spark.driver.memory) must be positive, got 0m"},
		{[]string{"--master", "spark://a:1", "--conf", "spark.driver.port=x", "app"}, "spark.driver.port=\"x\""},
		{[]string{"--master", "spark://a:1", "--conf", "spark.port.maxRetries=-1", "app"}, "spark.port.maxRetries=\"-1\""},
		{[]string{"--master", "spark://a:1", "--executor-memory", "1x", "app"}, "--executor-memory"},
		{[]string{"--master", "spark://a:1", "--conf", "novalue", "app"}, "want key=value"},
		{[]string{"--master", "spark://a:1"}, "missing the application"},
		{[]string{"--master", "spark://a:1", "--exec"}, "--exec needs a command"},
		{[]string{"--master", "spark://a:1,,b", "app"}, "empty host"},
		{[]string{"--properties-file", props, "app"}, "spark.executor.memory: memory size \"lots\""},
		{[]string{"--properties-file", filepath.Join(dir, "missing.conf"), "app"}, "--properties-file"},
		{[]string{"--master", "spark://a:1", "--kill", "x", "--status", "y"}, "exclusive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("SPARK_MASTER", "")
			t.Setenv("SPARK_CONF_DIR", dir+"/none")
			code, _, stderr := runCmd(t, submit, tc.args...)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr, tc.want)
			assert.NotContains(t, stderr, "executorMemoryMb", "no internal field names")
		})
	}
}

func TestSubmitPropertiesPrecedence(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "p.conf")
	require.NoError(t, os.WriteFile(props, []byte("# comment\nspark.master=spark://from-file:7077\nspark.executor.cores 3\nspark.app.name file\n"), 0o644))
	env := func(string) string { return "" }
	o, code, done := parseSubmit([]string{"--properties-file", props, "--conf", "spark.executor.cores=4", "--conf", "spark.app.name=conf",
		"--name", "flag", "prog", "a1"}, &bytes.Buffer{}, env)
	require.False(t, done, code)
	assert.Equal(t, "4", o.props["spark.executor.cores"], "--conf beats the file")
	assert.Equal(t, "flag", o.appName(), "--name beats --conf")
	assert.Equal(t, "spark://from-file:7077", o.masterList)
	assert.Equal(t, []string{"prog", "a1"}, o.positional)
}

func TestSubmitClientModeEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env.txt")
	script := filepath.Join(dir, "driver.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nenv > \"$1\"\nexit 3\n"), 0o755))
	t.Setenv("SPARK_CONF_DIR", dir)
	code, _, stderr := runCmd(t, submit, "--master", "spark://h1:7077,h2:7078", "--name", "pi", "--executor-cores", "2",
		"--executor-memory", "2g", "--total-executor-cores", "6", script, out)
	assert.Equal(t, 3, code, stderr)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	env := string(data)
	for _, want := range []string{"SPARK_MASTER=spark://h1:7077,h2:7078", "SPARK_APP_NAME=pi", "SPARK_EXECUTOR_CORES=2",
		"SPARK_EXECUTOR_MEMORY=2g", "SPARKD_EXECUTOR_MEMORY_MB=2048", "SPARK_TOTAL_EXECUTOR_CORES=6"} {
		assert.Contains(t, env, want+"\n")
	}
}

func TestSubmitClusterModeFindsLeaderREST(t *testing.T) {
	standby := newFakeCluster(t, protocol.MasterStandby, 2)
	leader := newFakeCluster(t, protocol.MasterAlive, 2)
	masters := "spark://" + standby.addr() + "," + leader.addr()
	code, stdout, stderr := runCmd(t, submit, "--master", masters, "--deploy-mode", "cluster", "--supervise",
		"--class", "org.example.Pi", "--driver-memory", "512m", "--conf", "spark.x=y", "/opt/app.jar", "10")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "driver-1\n", stdout)
	require.Len(t, leader.creates, 1)
	req := leader.creates[0]
	assert.Equal(t, "CreateSubmissionRequest", req.Action)
	assert.Equal(t, "/opt/app.jar", req.AppResource)
	assert.Equal(t, "org.example.Pi", req.MainClass)
	assert.Equal(t, []string{"10"}, req.AppArgs)
	assert.Equal(t, masters, req.SparkProperties["spark.master"], "the full master list goes to the driver")
	assert.Equal(t, "true", req.SparkProperties["spark.driver.supervise"])
	assert.Equal(t, "512m", req.SparkProperties["spark.driver.memory"])
	assert.Equal(t, "y", req.SparkProperties["spark.x"])

	code, stdout, _ = runCmd(t, submit, "--master", masters, "--status", "driver-1")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "driverState: RUNNING")
	code, _, stderr = runCmd(t, submit, "--master", masters, "--status", "driver-9")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "not found")
	code, stdout, _ = runCmd(t, submit, "--master", masters, "--kill", "driver-1")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "Kill request for driver-1 submitted")
}

func TestSubmitClusterModeNoLeader(t *testing.T) {
	standby := newFakeCluster(t, protocol.MasterStandby, 1)
	code, _, stderr := runCmd(t, submit, "--master", standby.url, "--deploy-mode", "cluster", "--wait", "300ms", "app")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no leading master found")
}

func TestSubmitExecSucceedsThroughFailover(t *testing.T) {
	a := newFakeCluster(t, protocol.MasterAlive, 1)
	b := newFakeCluster(t, protocol.MasterStandby, 1)
	zero := 0
	a.onReg = func(id, clientURL string) {
		// The client registers with both masters at once: let b refuse
		// (it is a standby) before it takes office.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			b.mu.Lock()
			n := b.regCalls
			b.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		st := a.stamp()
		for i := 0; i < 2; i++ {
			assert.NoError(t, a.push(clientURL, protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: st, ExecutorID: i, WorkerID: "worker-1", HostPort: "127.0.0.1:9", Cores: 1, MemoryMB: 64}))
			assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: i, State: protocol.ExecutorRunning}))
		}
		// Failover: b takes office with the app recovered and re-attaches it.
		b.mu.Lock()
		b.state, b.epoch = protocol.MasterAlive, 2
		b.apps[id] = protocol.RegisterApplication{ClientURL: clientURL}
		b.mu.Unlock()
		a.mu.Lock()
		a.state, a.hint = protocol.MasterStandby, b.url
		a.mu.Unlock()
		sb := b.stamp()
		assert.NoError(t, b.push(clientURL, protocol.PathAppMasterChanged, protocol.MasterChanged{Stamp: sb}))
		// A late command from the old leader is refused.
		assert.Error(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 0, State: protocol.ExecutorKilled}))
		// Both executors were granted: the client asks for no replacements,
		// and asks the new leader again after the failover.
		assert.Eventually(t, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.limits) > 0
		}, 5*time.Second, time.Millisecond)
		for i := 0; i < 2; i++ {
			assert.NoError(t, b.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: sb, ExecutorID: i, State: protocol.ExecutorExited, ExitCode: &zero}))
		}
	}
	code, stdout, stderr := runCmd(t, submit, "--master", "spark://"+a.addr()+","+b.addr(), "--name", "sleepy",
		"--executors", "2", "--executor-cores", "1", "--executor-memory", "64m", "--exec", "--", "/bin/sleep", "1")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "executor 0 added on worker worker-1")
	assert.Contains(t, stdout, "master changed: "+b.url+" (epoch 2)")
	assert.Contains(t, stdout, "executor 1 EXITED (exit code 0)")
	assert.Contains(t, stdout, "2 executor(s): 2 exited 0, 0 failed")
	// The client library's warning about the stale command is in submit's
	// format on stderr, not logrus's key=value one.
	assert.Regexp(t, `(?m)^\d\d:\d\d:\d\d\.\d{3} warning: refused a command from a stale master \(error: .*epoch 1.*\)$`, stderr)
	assert.NotContains(t, stderr, "level=")
	assert.NotContains(t, stdout, "level=")
	b.mu.Lock()
	assert.Equal(t, []string{"app-0"}, b.unreg, "unregistered with the new leader; a got %v; stdout %s stderr %s", a.unreg, stdout, stderr)
	b.mu.Unlock()
	a.mu.Lock()
	b.mu.Lock()
	assert.NotEmpty(t, b.limits, "the new leader is told: no replacement executors")
	for _, n := range append(a.limits, b.limits...) {
		assert.Equal(t, 0, n, "executor target once 2 were granted")
	}
	b.mu.Unlock()
	a.mu.Unlock()
	assert.Equal(t, 2, a.apps["app-0"].App.InitialLimit)
	assert.Equal(t, "sleepy", a.apps["app-0"].App.Name)
	assert.Equal(t, []string{"/bin/sleep", "1"}, a.apps["app-0"].App.Command)
	assert.Equal(t, 64, a.apps["app-0"].App.ExecutorMemMB)
}

func TestSubmitExecFailureSummary(t *testing.T) {
	a := newFakeCluster(t, protocol.MasterAlive, 1)
	one := 1
	a.onReg = func(_, clientURL string) {
		st := a.stamp()
		assert.NoError(t, a.push(clientURL, protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: st, ExecutorID: 0, WorkerID: "w", Cores: 1}))
		assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 0, State: protocol.ExecutorExited, ExitCode: &one, Message: "Command exited with code 1"}))
	}
	code, _, stderr := runCmd(t, submit, "--master", a.url, "--exec", "--", "/bin/false")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "executor 0 EXITED with exit code 1")
}

func TestExecTrackerDoneRule(t *testing.T) {
	zero, two := 0, 2
	tr := newExecTracker(2)
	tr.handle(evAdded(0))
	over, _ := tr.done()
	assert.False(t, over, "fewer executors than --executors")
	tr.handle(evUpdated(0, protocol.ExecutorExited, &zero))
	over, _ = tr.done()
	assert.False(t, over, "still waiting for the second executor")
	tr.handle(evAdded(1))
	tr.handle(evUpdated(1, protocol.ExecutorRunning, nil))
	over, _ = tr.done()
	assert.False(t, over)
	tr.handle(evUpdated(1, protocol.ExecutorExited, &zero))
	over, ok := tr.done()
	assert.True(t, over)
	assert.True(t, ok)

	tr = newExecTracker(0)
	tr.handle(evAdded(0))
	tr.handle(evUpdated(0, protocol.ExecutorFailed, &two))
	over, ok = tr.done()
	assert.True(t, over)
	assert.False(t, ok)
	assert.Contains(t, tr.summary(), "executor 0 FAILED with exit code 2")
}

// A decommissioned worker lets its executors finish: DECOMMISSIONED is news,
// not the end, and the executor's later EXITED decides.
func TestExecTrackerWaitsThroughDecommission(t *testing.T) {
	zero := 0
	tr := newExecTracker(1)
	tr.handle(evAdded(0))
	tr.handle(evUpdated(0, protocol.ExecutorRunning, nil))
	line := tr.handle(evUpdated(0, protocol.ExecutorDecommissioned, nil))
	assert.Contains(t, line, "executor 0 DECOMMISSIONED")
	over, _ := tr.done()
	assert.False(t, over, "the executor still runs")
	tr.handle(evUpdated(0, protocol.ExecutorExited, &zero))
	over, ok := tr.done()
	assert.True(t, over)
	assert.True(t, ok, tr.summary())
}

func evAdded(id int) client.Event {
	return client.Event{Kind: client.EventExecutorAdded, At: time.Now(), ExecutorID: id, WorkerID: "w"}
}

func evUpdated(id int, st protocol.ExecutorState, code *int) client.Event {
	return client.Event{Kind: client.EventExecutorUpdated, At: time.Now(), ExecutorID: id, State: st, ExitCode: code}
}

// waitLimits waits until the master was asked for exactly want executor
// limits, in this order.
func (f *fakeCluster) waitLimits(t *testing.T, want ...int) bool {
	t.Helper()
	return assert.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return fmt.Sprint(f.limits) == fmt.Sprint(want)
	}, 10*time.Second, time.Millisecond, "executor limits asked for: want %v", want)
}

// An executor lost with its worker never finished its command: submit asks
// for a replacement (limit = executors running + 1), freezes again once it is
// granted, and the application succeeds when the replacement exits 0.
func TestSubmitExecReplacesExecutorLostWithWorker(t *testing.T) {
	a := newFakeCluster(t, protocol.MasterAlive, 1)
	zero := 0
	a.onReg = func(_, clientURL string) {
		st := a.stamp()
		for i := 0; i < 2; i++ {
			assert.NoError(t, a.push(clientURL, protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: st, ExecutorID: i, WorkerID: fmt.Sprintf("worker-%d", i), HostPort: "127.0.0.1:9", Cores: 1, MemoryMB: 64}))
			assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: i, State: protocol.ExecutorRunning}))
		}
		if !a.waitLimits(t, 0) {
			return
		}
		// worker-0 dies: the master reports its executor LOST, then the worker removed.
		assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 0, State: protocol.ExecutorLost, Message: "worker lost: heartbeat timed out", WorkerLost: true}))
		assert.NoError(t, a.push(clientURL, protocol.PathWorkerRemoved, protocol.WorkerRemoved{Stamp: st, WorkerID: "worker-0", Host: "127.0.0.1", Message: "heartbeat timed out"}))
		if !a.waitLimits(t, 0, 2) {
			return
		}
		assert.NoError(t, a.push(clientURL, protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: st, ExecutorID: 2, WorkerID: "worker-2", HostPort: "127.0.0.1:9", Cores: 1, MemoryMB: 64}))
		assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: 2, State: protocol.ExecutorRunning}))
		if !a.waitLimits(t, 0, 2, 0) {
			return
		}
		for _, i := range []int{1, 2} {
			assert.NoError(t, a.push(clientURL, protocol.PathExecutorUpdated, protocol.ExecutorUpdated{Stamp: st, ExecutorID: i, State: protocol.ExecutorExited, ExitCode: &zero}))
		}
	}
	code, stdout, stderr := a.runSubmit(t, 30*time.Second, "--master", a.url, "--executors", "2", "--executor-cores", "1",
		"--wait", "20s", "--exec", "--", "/bin/true")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "executor 0 LOST: worker lost: heartbeat timed out (lost with its worker before its command finished; replacing it, 1 of at most 10)")
	assert.Contains(t, stdout, "executor 2 added on worker worker-2 (127.0.0.1:9): 1 core(s), 64 MB (a replacement)")
	assert.Contains(t, stdout, "3 executor(s): 2 exited 0, 0 failed, 1 lost with their worker and replaced, 0 still running")
}

// runSubmit runs `sparkd submit` against f; if it has not finished within
// timeout, f ends its applications (so that submit returns) and the test fails.
func (f *fakeCluster) runSubmit(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, stdout, stderr = runCmd(t, submit, args...)
	}()
	select {
	case <-done:
		return code, stdout, stderr
	case <-time.After(timeout):
	}
	f.mu.Lock()
	limits := fmt.Sprint(f.limits)
	var clients []string
	for _, m := range f.apps {
		clients = append(clients, m.ClientURL)
	}
	f.mu.Unlock()
	for _, u := range clients {
		_ = f.push(u, protocol.PathApplicationRemoved, protocol.ApplicationRemoved{Stamp: f.stamp(), State: protocol.AppKilled, Message: "test timed out"})
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	t.Fatalf("submit did not finish within %s; limits asked for: %s\nstdout:\n%s\nstderr:\n%s", timeout, limits, stdout, stderr)
	return
}

// Replacements are bounded: past maxReplace, an executor lost with its
// worker is a failure, and the application ends once nothing runs. A worker
// removed without a LOST report for its executors loses them too.
func TestExecTrackerBoundsReplacements(t *testing.T) {
	zero := 0
	tr := newExecTracker(1)
	tr.maxReplace = 2
	tr.handle(evAdded(0))
	n, changed := tr.nextLimit()
	assert.True(t, changed)
	assert.Equal(t, 0, n, "frozen once the target is granted")

	line := tr.handle(client.Event{Kind: client.EventWorkerRemoved, At: time.Now(), WorkerID: "w", Message: "worker shut down"})
	assert.Contains(t, line, "executor 0 was on it")
	n, changed = tr.nextLimit()
	assert.True(t, changed)
	assert.Equal(t, 1, n, "one replacement, nothing else running")
	assert.Equal(t, "", tr.handle(evUpdated(0, protocol.ExecutorLost, nil)), "a LOST after the worker removal is not news")
	over, _ := tr.done()
	assert.False(t, over, "waiting for the replacement")

	tr.handle(evAdded(1))
	n, _ = tr.nextLimit()
	assert.Equal(t, 0, n, "frozen again once the replacement is granted")
	tr.handle(client.Event{Kind: client.EventExecutorRemoved, At: time.Now(), ExecutorID: 1, State: protocol.ExecutorLost, WorkerLost: true})
	tr.handle(evAdded(2))
	over, _ = tr.done()
	assert.False(t, over)
	tr.handle(evUpdated(2, protocol.ExecutorLost, nil))
	over, ok := tr.done()
	assert.True(t, over, "a third loss is past the bound")
	assert.False(t, ok)
	s := tr.summary()
	assert.Contains(t, s, "3 executor(s): 0 exited 0, 1 failed, 2 lost with their worker and replaced, 0 still running")
	assert.Contains(t, s, "executor 2 LOST: lost with its worker and not replaced; 2 executors were already lost")

	// Lost before the target is granted: the master, below the initial
	// limit, replaces it by itself; no limit is asked for.
	tr = newExecTracker(2)
	tr.handle(evAdded(0))
	tr.handle(evUpdated(0, protocol.ExecutorLost, nil))
	tr.handle(evAdded(1))
	_, changed = tr.nextLimit()
	assert.False(t, changed, "one executor held, two wanted")
	tr.handle(evAdded(2))
	n, changed = tr.nextLimit()
	assert.True(t, changed)
	assert.Equal(t, 0, n)
	tr.handle(evUpdated(1, protocol.ExecutorExited, &zero))
	tr.handle(evUpdated(2, protocol.ExecutorExited, &zero))
	over, ok = tr.done()
	assert.True(t, over)
	assert.True(t, ok, tr.summary())
}

// A refusal that retrying cannot change (a wrong secret, a bad field) ends
// submit at once with the master's message instead of retrying for --wait.
func TestSubmitRefusalFailsAtOnce(t *testing.T) {
	leader := newFakeClusterAuth(t, protocol.MasterAlive, 1, "right")
	for _, mode := range [][]string{
		{"--exec", "--", "/bin/true"},
		{"--deploy-mode", "cluster", "/opt/app.jar"},
		{"--status", "driver-1"},
		{"--kill", "driver-1"},
	} {
		t.Run(mode[0], func(t *testing.T) {
			start := time.Now()
			args := append([]string{"--master", leader.url, "--conf", "spark.authenticate.secret=wrong", "--wait", "20s"}, mode...)
			code, _, stderr := leader.runSubmit(t, 30*time.Second, args...)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, "http 401: authentication failed: spark.authenticate.secret does not match")
			assert.Contains(t, stderr, leader.addr(), "names the master that refused")
			assert.Less(t, time.Since(start), 10*time.Second, "a wrong secret is not retried for --wait")
		})
	}

	// The REST server refuses the submission with a 400 naming the field:
	// it fails at once, even though the message mentions ALIVE (which, on
	// a success:false answer, means a master not ALIVE yet: retried).
	rest := newFakeCluster(t, protocol.MasterAlive, 1)
	rest.createStatus, rest.createMessage = http.StatusBadRequest, "Malformed request: spark.driver.memory \"lots\": want a size like 512m or 2g; the master is ALIVE"
	start := time.Now()
	code, _, stderr := rest.runSubmit(t, 30*time.Second, "--master", rest.url, "--deploy-mode", "cluster", "--wait", "20s", "/opt/app.jar")
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "http 400: Malformed request: spark.driver.memory")
	assert.Less(t, time.Since(start), 10*time.Second, "a 400 is not retried for --wait")
	rest.mu.Lock()
	assert.Equal(t, 1, rest.createCalls)
	rest.mu.Unlock()
}

// The logger submit hands the client library writes submit's format:
// timestamped, readable, warnings and above unless --verbose; never
// logrus's "time=... level=... msg=..." text.
func TestCLILoggerFormat(t *testing.T) {
	var quiet, verbose bytes.Buffer
	for _, l := range []*logrus.Entry{newCLILogger(&quiet, false), newCLILogger(&verbose, true)} {
		c := l.WithField("component", "client")
		c.WithError(errors.New("connection refused")).Warnf("Disconnected from Spark cluster (master %s)! Waiting for reconnection...", "m1:7077")
		c.WithFields(logrus.Fields{"appId": "app-1", "epoch": 2}).Info("Connected to Spark cluster with app ID app-1")
		c.WithField("attempt", 3).Debug("registration attempt failed")
	}
	line := `^\d\d:\d\d:\d\d\.\d{3} `
	assert.Regexp(t, line+`warning: Disconnected from Spark cluster \(master m1:7077\)! Waiting for reconnection\.\.\. \(error: connection refused\)\n$`, quiet.String(),
		"only warnings and above without --verbose")
	lines := strings.Split(strings.TrimSpace(verbose.String()), "\n")
	require.Len(t, lines, 3, verbose.String())
	assert.Regexp(t, line+`info: Connected to Spark cluster with app ID app-1 \[appId: app-1 epoch: 2\]$`, lines[1])
	assert.Regexp(t, line+`debug: registration attempt failed \[attempt: 3\]$`, lines[2])
	for _, out := range []string{quiet.String(), verbose.String()} {
		assert.NotContains(t, out, "level=")
		assert.NotContains(t, out, "msg=")
		assert.NotContains(t, out, "component")
	}
}
