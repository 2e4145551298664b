package chaos

import (
	"context"
	"fmt"
	"os"
	exec2 "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

func requireZK(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos: needs ZooKeeper and real processes")
	}
	if _, _, err := zktest.Classpath(); err != nil {
		t.Skipf("ZooKeeper not installed: %v", err)
	}
}

// logWriter writes each line to the test log.
type logWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// smokeSeed's plan (logged by TestPlanDeterministic) is a leader SIGKILL, a
// ZooKeeper server kill, a worker SIGKILL and a leader cut from ZooKeeper.
const smokeSeed = 12

// TestChaosSmoke is a short chaos run inside `go test ./...`: a few faults
// against the real processes, every invariant checked. `make chaos` runs
// many more.
func TestChaosSmoke(t *testing.T) {
	requireZK(t)
	start := time.Now()
	res := Run(context.Background(), t, Config{Seed: smokeSeed, Steps: 4, MaxGap: 2 * time.Second, DrainBound: 20 * time.Second,
		Out: &logWriter{t: t}})
	t.Logf("smoke run: %s wall time", time.Since(start).Round(time.Second))
	for _, v := range res.Violations {
		t.Errorf("%s", v)
	}
	for _, e := range res.HarnessErrors {
		t.Errorf("harness: %s", e)
	}
	if res.Failed() {
		t.Errorf("replay: %s (logs kept in %s)", res.Replay, res.KeptLogs)
	}
}

func TestPlanDeterministic(t *testing.T) {
	p := planParams{Steps: 30, Workers: 4, ZooKeeper: 3, SessionTimeout: 2 * time.Second, WorkerTimeout: 6 * time.Second}
	a, b := Plan(42, p), Plan(42, p)
	if len(a) != 30 {
		t.Fatalf("got %d steps", len(a))
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			t.Fatalf("step %d differs: %s vs %s", i, a[i], b[i])
		}
	}
	if Plan(43, p)[0].String() == a[0].String() && Plan(43, p)[1].String() == a[1].String() {
		t.Errorf("seeds 42 and 43 start alike")
	}
	seen := map[Kind]bool{}
	for _, s := range Plan(1, planParams{Steps: 200, Workers: 4, ZooKeeper: 3, SessionTimeout: 2 * time.Second, WorkerTimeout: 6 * time.Second}) {
		for _, f := range s.Faults {
			seen[f.Kind] = true
			if f.Kind == LeaderStop && f.Hold <= 2*time.Second {
				t.Errorf("%s: a leader pause must outlast the 2s session", s)
			}
		}
		if len(s.Faults) == 2 && s.Faults[0].Kind.leader() && s.Faults[1].Kind.leader() {
			t.Errorf("%s: two leader faults at once", s)
		}
	}
	for k := Kind(0); k < Double; k++ {
		if !seen[k] {
			t.Errorf("200 steps never drew %s", k)
		}
	}
	smoke := Plan(smokeSeed, planParams{Steps: 4, Workers: 4, ZooKeeper: 3, SessionTimeout: 2 * time.Second, WorkerTimeout: 6 * time.Second, MaxGap: 2 * time.Second})
	for _, s := range smoke {
		t.Logf("smoke %s", s)
	}
	if smoke[0].Faults[0].Kind != LeaderKill {
		t.Errorf("the smoke run should start with a leader SIGKILL: %s", smoke[0])
	}
}

func TestCheckAlive(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := func(m int, sent, recv int, state string, epoch int64) Sample {
		return Sample{Master: m, Sent: at(sent), Recv: at(recv), OK: true, State: protoState(state), Epoch: epoch}
	}
	good := []Sample{s(0, 0, 5, "ALIVE", 1), s(1, 0, 5, "STANDBY", 1), s(0, 100, 105, "STANDBY", 1), s(1, 100, 105, "ALIVE", 2),
		s(0, 150, 300, "ALIVE", 1)} // overlaps the first ALIVE of epoch 2 within the slack: not provable
	if vs := checkAlive(good, 100*time.Millisecond); len(vs) != 0 {
		t.Errorf("good history: %v", vs)
	}
	bad := append(good, s(0, 400, 405, "ALIVE", 1))
	vs := checkAlive(bad, 100*time.Millisecond)
	if len(vs) != 1 || vs[0].Invariant != InvAliveEpochsGrow {
		t.Errorf("stale ALIVE: %v", vs)
	}
	two := []Sample{s(0, 0, 5, "ALIVE", 3), s(1, 1000, 1005, "ALIVE", 3)}
	vs = checkAlive(two, 100*time.Millisecond)
	if len(vs) != 1 || vs[0].Invariant != InvOneAlivePerEpoch {
		t.Errorf("two masters ALIVE for one epoch: %v", vs)
	}
}

func protoState(s string) protocol.MasterState { return protocol.MasterState(s) }

// The executor script's O_EXCL marker: a second launch of the same
// application executor is recorded as a duplicate (and exits 0 at once).
func TestExecScriptDetectsSecondLaunch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "markers")
	wl, err := newWorkload(&cluster.Cluster{}, newHistory(1), dir, 1, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	run := func(exec string) {
		cmd := exec2.Command("/bin/sh", wl.script, dir, "0")
		cmd.Env = append(os.Environ(), "SPARK_APP_ID=app-1", "SPARK_EXECUTOR_ID="+exec, "SPARK_WORKER_ID=w")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	run("0")
	run("1")
	if d := wl.duplicates(); len(d) != 0 {
		t.Fatalf("no duplicate yet: %v", d)
	}
	started, finished := wl.markers("app-1")
	if fmt.Sprint(started) != "[0 1]" || fmt.Sprint(finished) != "[0 1]" {
		t.Errorf("markers: started %v finished %v", started, finished)
	}
	run("1")
	d := wl.duplicates()
	if len(d) != 1 || d["app-1-1"] == "" {
		t.Fatalf("duplicates: %v", d)
	}
	t.Logf("app-1-1: %s", d["app-1-1"])
}

func TestClockTimes(t *testing.T) {
	ref := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ts := clockTimes("first launch: 10:13:37.859 pid 1 worker w; again: 10:13:38.876 pid 2 worker w", ref)
	if len(ts) != 2 || !ts[0].Equal(time.Date(2026, 12, 1, 10, 13, 37, 859e6, time.UTC)) || !ts[1].Equal(time.Date(2026, 12, 1, 10, 13, 38, 876e6, time.UTC)) {
		t.Errorf("got %v", ts)
	}
	late := time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)
	if ts := clockTimes("00:00:01.000", late); len(ts) != 1 || ts[0].Day() != 2 {
		t.Errorf("past midnight: %v", ts)
	}
}
