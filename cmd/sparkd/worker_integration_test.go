package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
)

// workerJSON is the part of a worker's /json this test reads.
type workerJSON struct {
	ID        string `json:"id"`
	MasterURL string `json:"masterurl"`
	Epoch     int64  `json:"epoch"`
	State     string `json:"state"`
	Executors []struct {
		ID    int    `json:"id"`
		AppID string `json:"appid"`
		State string `json:"state"`
	} `json:"executors"`
	Finished []struct {
		ID    int    `json:"id"`
		AppID string `json:"appid"`
		State string `json:"state"`
	} `json:"finishedexecutors"`
}

func getWorkerJSON(uiPort int) (workerJSON, error) {
	var doc workerJSON
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/json", uiPort))
	if err != nil {
		return doc, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&doc)
	return doc, err
}

func pidAlive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// TestWorkerAgainstRealMasters runs a real worker process against two real
// masters in ZOOKEEPER mode and a real application client:
//   - the worker's master list names the STANDBY first and still registers
//     with the leader;
//   - executor output lands in stdout/stderr files, served by the log page;
//   - an executor exiting non-zero is reported FAILED and the master
//     launches a replacement;
//   - when the leader is killed, the worker is re-attached to the new leader
//     and its executors keep running with the same pids;
//   - a command stamped with the old epoch is refused with 409.
func TestWorkerAgainstRealMasters(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	cluster.RequireDaemons(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: -1, ZooKeeper: 1, WorkerTimeout: 8 * time.Second})
	leader, li, err := c.WaitLeader(60 * time.Second)
	require.NoError(t, err)
	standby := 1 - leader

	// Our own worker, with the STANDBY first in its master list.
	ports, err := cluster.FreePorts(2)
	require.NoError(t, err)
	work := filepath.Join(c.Dir, "work", "w")
	pidDir := filepath.Join(c.Dir, "pids")
	require.NoError(t, os.MkdirAll(pidDir, 0o755))
	c.TrackPids(pidDir)
	masters := "spark://" + c.Masters[standby].Addr() + "," + c.Masters[leader].Addr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wcmd := c.Command(ctx, "worker", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
		"--webui-port", strconv.Itoa(ports[1]), "--cores", "2", "--memory", "1g", "--work-dir", work, masters)
	logPath := filepath.Join(c.Dir, "logs", "it-worker.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	wcmd.Stdout, wcmd.Stderr = logf, logf
	require.NoError(t, wcmd.Start())
	wdone := make(chan error, 1)
	go func() { wdone <- wcmd.Wait() }()
	t.Cleanup(func() {
		_ = wcmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-wdone:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-wcmd.Process.Pid, syscall.SIGKILL)
			<-wdone
		}
		if t.Failed() {
			t.Logf("---- worker log ----\n%s", cluster.Tail(logPath, 120))
		}
	})

	var doc workerJSON
	waitFor(t, 30*time.Second, func() bool {
		doc, err = getWorkerJSON(ports[1])
		return err == nil && doc.State == "ALIVE"
	}, "worker never registered")
	assert.Equal(t, c.Masters[leader].URL(), doc.MasterURL)
	assert.Equal(t, li.Epoch, doc.Epoch)
	require.NoError(t, c.WaitWorkers(1, 30*time.Second))

	// An application whose executor 0 fails; the others run until killed.
	script := fmt.Sprintf(`echo $$ > %s/$SPARK_APP_ID-$SPARK_EXECUTOR_ID; echo "hello from $SPARK_EXECUTOR_ID"; echo "err $SPARK_EXECUTOR_ID" >&2; `+
		`if [ "$SPARK_EXECUTOR_ID" = 0 ]; then exit 3; fi; exec sleep 600`, pidDir)
	app, err := client.New(client.Config{Masters: strings.Split(strings.TrimPrefix(c.MasterURLs(), "spark://"), ","),
		App:    protocol.AppDescription{Name: "worker-it", Command: []string{"sh", "-c", script}, ExecutorCores: 1, ExecutorMemMB: 128},
		Logger: testEntry(t)}, func(client.Event) {})
	require.NoError(t, err)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	appID, err := app.Register(rctx)
	rcancel()
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_ = app.Kill(cctx)
		_ = app.Close(cctx)
	})

	waitFor(t, 60*time.Second, func() bool {
		doc, err = getWorkerJSON(ports[1])
		if err != nil || len(doc.Executors) != 2 {
			return false
		}
		for _, f := range doc.Finished {
			if f.AppID == appID && f.ID == 0 && f.State == "FAILED" {
				return true
			}
		}
		return false
	}, "executor 0 not FAILED with 2 replacements running")
	for _, e := range doc.Executors {
		assert.NotEqual(t, 0, e.ID)
		assert.Equal(t, "RUNNING", e.State)
	}

	// Output files and the log page.
	out, err := os.ReadFile(filepath.Join(work, appID, "0", "stdout"))
	require.NoError(t, err)
	assert.Equal(t, "hello from 0\n", string(out))
	errOut, err := os.ReadFile(filepath.Join(work, appID, "0", "stderr"))
	require.NoError(t, err)
	assert.Equal(t, "err 0\n", string(errOut))
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/logPage?appId=%s&executorId=0&logType=stdout", ports[1], appID))
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(page), "hello from 0")

	pids := map[int]int{}
	for _, e := range doc.Executors {
		// The executor writes its pid file itself: wait until it is complete.
		var pid int
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(filepath.Join(pidDir, fmt.Sprintf("%s-%d", appID, e.ID)))
			if err != nil {
				return false
			}
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "pid file of executor %d", e.ID)
		pids[e.ID] = pid
	}

	// Kill the leader: the worker follows the new one; executors survive.
	killed := time.Now()
	c.Masters[leader].Kill()
	newLeader, nli, err := c.WaitNewLeader(leader, li.Epoch, 60*time.Second)
	require.NoError(t, err)
	require.Equal(t, standby, newLeader)
	waitFor(t, 30*time.Second, func() bool {
		doc, err = getWorkerJSON(ports[1])
		return err == nil && doc.State == "ALIVE" && doc.MasterURL == c.Masters[newLeader].URL() && doc.Epoch == nli.Epoch
	}, "worker not re-attached to the new leader")
	t.Logf("leader SIGKILLed -> worker attached to the new leader (epoch %d) in %v", nli.Epoch, time.Since(killed).Round(time.Millisecond))
	require.NoError(t, c.WaitWorkers(1, 30*time.Second))
	for id, pid := range pids {
		assert.True(t, pidAlive(pid), "executor %d (pid %d) died in the failover", id, pid)
	}
	running := 0
	for _, e := range doc.Executors {
		if _, ok := pids[e.ID]; ok && e.State == "RUNNING" {
			running++
		}
	}
	assert.Equal(t, len(pids), running, "the same executors still run: %+v", doc.Executors)

	// A command stamped with the old leader's epoch is refused.
	rpc := protocol.NewClient(5*time.Second, "")
	err = rpc.Call(context.Background(), http.MethodPost, fmt.Sprintf("127.0.0.1:%d", ports[0]), protocol.PathKillExecutor,
		protocol.KillExecutor{Stamp: protocol.Stamp{Epoch: li.Epoch, MasterURL: c.Masters[leader].URL()}, AppID: appID, ExecutorID: 1}, nil)
	var se *protocol.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Code)
	for id, pid := range pids {
		assert.True(t, pidAlive(pid), "executor %d (pid %d) must not be killed by a stale command", id, pid)
	}
}

// testEntry logs into the test log.
func testEntry(t *testing.T) *logrus.Entry {
	return newWorkerLogger(testLogWriter{t}, logrus.InfoLevel, "AppClient")
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
