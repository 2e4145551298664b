package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

func status(args []string, out, errb *bytes.Buffer) int { return runStatus(args, out, errb) }

const sampleState = `{"url":"spark://x:7077","status":"ALIVE","epoch":4,"aliveworkers":1,"cores":8,"coresused":2,
 "memory":4096,"memoryused":1024,
 "workers":[{"id":"worker-1","host":"127.0.0.1","port":4000,"cores":8,"coresused":2,"memory":4096,"memoryused":1024,"state":"ALIVE"},
            {"id":"worker-0","host":"127.0.0.1","port":4001,"cores":8,"coresused":0,"memory":4096,"memoryused":0,"state":"DEAD"}],
 "activeapps":[{"id":"app-1","name":"pi","cores":2,"state":"RUNNING","starttime":1700000000000}],
 "completedapps":[{"id":"app-0"}],"activedrivers":[],"completeddrivers":[]}`

func TestStatusShowsLeaderAndCluster(t *testing.T) {
	standby := newFakeCluster(t, protocol.MasterStandby, 4)
	leader := newFakeCluster(t, protocol.MasterAlive, 4)
	leader.stateDoc = sampleState
	masters := "spark://" + standby.addr() + "," + leader.addr() + ",127.0.0.1:1"
	code, stdout, stderr := runCmd(t, status, "--master", masters)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "Leader:  "+leader.url+"  ALIVE  epoch 4, since 2026-01-02T03:04:05Z")
	assert.Contains(t, stdout, standby.url)
	assert.Contains(t, stdout, "STANDBY")
	assert.Contains(t, stdout, "UNREACHABLE")
	assert.Contains(t, stdout, "connection refused")
	assert.Contains(t, stdout, "Workers: 1 alive of 2; cores 2 used of 8; memory 1024 MB used of 4096 MB")
	assert.Contains(t, stdout, "app-1")
	assert.Contains(t, stdout, "Applications: 1 running, 1 completed")

	code, stdout, _ = runCmd(t, status, "--master", masters, "--json")
	require.Equal(t, 0, code)
	var rep statusReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.NotNil(t, rep.Leader)
	assert.Equal(t, leader.url, rep.Leader.URL)
	assert.Equal(t, int64(4), rep.Leader.Epoch)
	require.Len(t, rep.Masters, 3)
	assert.Equal(t, "STANDBY", rep.Masters[0].State)
	assert.Equal(t, "UNREACHABLE", rep.Masters[2].State)
	require.NotNil(t, rep.Cluster)
	assert.Equal(t, 1, rep.Cluster.AliveWorkers)
	assert.Len(t, rep.Cluster.ActiveApps, 1)
}

// Asking one standby is enough: it names the leader, which is probed too.
func TestStatusFollowsStandbyHint(t *testing.T) {
	leader := newFakeCluster(t, protocol.MasterAlive, 5)
	leader.stateDoc = sampleState
	standby := newFakeCluster(t, protocol.MasterStandby, 5)
	standby.hint = leader.url
	code, stdout, stderr := runCmd(t, status, "--master", standby.url, "--json")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	var rep statusReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.NotNil(t, rep.Leader)
	assert.Equal(t, leader.url, rep.Leader.URL)
	assert.Len(t, rep.Masters, 2, "the hinted leader is listed")
	// --json uses camelCase field names throughout.
	assert.Contains(t, stdout, `"workerList": [`)
	assert.Contains(t, stdout, `"coresUsed": 2`)
	assert.NotContains(t, stdout, `"CoresUsed"`)
}

func TestStatusWithoutLeaderExits1(t *testing.T) {
	standby := newFakeCluster(t, protocol.MasterStandby, 0)
	code, stdout, _ := runCmd(t, status, "--master", standby.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "Leader:  none")
	assert.Contains(t, stdout, "Problem: no master is ALIVE")
}

func TestStatusUsage(t *testing.T) {
	t.Setenv("SPARK_MASTER", "")
	code, _, stderr := runCmd(t, status)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "no master given")
	code, _, stderr = runCmd(t, status, "--master", "spark://a:1,,b")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "empty host")
	code, _, stderr = runCmd(t, status, "--master", "spark://a:1", "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unexpected argument")
}

// TestStatusFromZooKeeper finds the masters from the candidate nodes under
// <dir>/leader_election in a real ZooKeeper and reads <dir>/epoch.
func TestStatusFromZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper")
	}
	zk := zktest.Start(t, 1)
	leader := newFakeCluster(t, protocol.MasterAlive, 7)
	leader.stateDoc = sampleState
	standby := newFakeCluster(t, protocol.MasterStandby, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := zkutil.Connect(ctx, zkutil.Config{Connect: zk.Connect()})
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.EnsurePath(ctx, "/sp/leader_election"))
	for i, m := range []*fakeCluster{standby, leader} {
		data, _ := json.Marshal(recovery.Candidate{ID: fmt.Sprint("m", i), RPCURL: m.url})
		_, err := conn.Create(ctx, fmt.Sprintf("/sp/leader_election/latch-%010d", i), data, 0)
		require.NoError(t, err)
	}
	// A candidate node whose data is not readable is reported; a node that is
	// not a candidate at all is ignored.
	_, err = conn.Create(ctx, "/sp/leader_election/latch-0000000009", []byte("{not json"), 0)
	require.NoError(t, err)
	_, err = conn.Create(ctx, "/sp/leader_election/garbage", []byte("{not json"), 0)
	require.NoError(t, err)
	_, err = conn.Create(ctx, "/sp/epoch", []byte(`{"epoch":7,"leader":"m1"}`), 0)
	require.NoError(t, err)

	code, stdout, stderr := runCmd(t, status, "--zk", zk.Connect(), "--zk-dir", "/sp")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "Leader:  "+leader.url+"  ALIVE  epoch 7")
	assert.Contains(t, stdout, "ZooKeeper epoch: 7 (leader m1)")
	assert.Contains(t, stdout, standby.url)
	assert.Contains(t, stdout, "Problem: zookeeper: candidate node(s) latch-0000000009")
	assert.NotContains(t, stdout, "garbage")

	code, stdout, _ = runCmd(t, status, "--zk", zk.Connect(), "--zk-dir", "/nothing-here")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "Problem: no master candidates registered in ZooKeeper under /nothing-here/leader_election")

	// ACLs turned on later: applied to the existing directory, which
	// status then reads only with the credentials.
	owner, err := zkutil.Connect(ctx, zkutil.Config{Connect: zk.Connect(), Auth: "ops:pw"})
	require.NoError(t, err)
	defer owner.Close()
	changed, err := owner.ApplyACL(ctx, "/sp")
	require.NoError(t, err)
	assert.Len(t, changed, 7, "the directory, epoch, leader_election, its 3 latches and garbage: %v", changed)
	code, stdout, _ = runCmd(t, status, "--zk", zk.Connect(), "--zk-dir", "/sp")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "ACL-protected; give its credentials with --zk-auth")
	code, stdout, stderr = runCmd(t, status, "--zk", zk.Connect(), "--zk-dir", "/sp", "--zk-auth", "ops:pw")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "Leader:  "+leader.url+"  ALIVE  epoch 7")
}

// A 401 is an authentication failure, not an unreachable master.
func TestStatusNamesAnAuthenticationFailure(t *testing.T) {
	leader := newFakeClusterAuth(t, protocol.MasterAlive, 3, "right")
	code, stdout, _ := runCmd(t, status, "--master", leader.url, "--secret", "wrong")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "AUTH FAILED")
	assert.Contains(t, stdout, "authentication failed: spark.authenticate.secret (--secret, SPARK_AUTHENTICATE_SECRET) does not match the master's")
	assert.NotContains(t, stdout, "UNREACHABLE")
}

// With ZooKeeper down, status says so once (not also "no candidates
// registered" and "no master is ALIVE").
func TestStatusZooKeeperDownIsOneProblem(t *testing.T) {
	code, stdout, _ := runCmd(t, status, "--zk", closedTCPAddr(t), "--timeout", "300ms")
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(stdout, "Problem: "), stdout)
	assert.Contains(t, stdout, "is unreachable, so no master could be found there")
	assert.Contains(t, stdout, "Leader:  none")
}

func closedTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
