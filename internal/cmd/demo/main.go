// Command demo is `make demo`: on loopback it starts a 3-node ZooKeeper
// ensemble, two masters in ZOOKEEPER recovery mode (configured through a
// generated conf/spark-env.sh) and three workers, submits an application
// with `sparkd submit --exec`, kills the leading master with SIGKILL, and
// prints a timeline: who leads, when the standby took over, when each
// worker re-registered, and that the application completed. Then it runs
// the wordcount example (a Go driver whose program the executors fetch
// from it) through a SIGKILL of one executor and of the leading master,
// and checks that its output equals the coreutils pipeline's. It stops
// everything it started, also on Ctrl-C or failure.
//
// It needs bin/sparkd ($SPARKD_BIN), bin/wordcount (-wordcount) and an
// installed ZooKeeper (hack/deps.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

var start = time.Now()

func say(format string, a ...any) {
	fmt.Printf("[%7.3fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
}

func main() {
	session := flag.Duration("session-timeout", 2*time.Second, "masters' ZooKeeper session timeout")
	verbose := flag.Bool("v", false, "show harness details")
	wordcount := flag.String("wordcount", "bin/wordcount", "the wordcount example driver")
	flag.Parse()
	tb := cluster.NewTB("demo", os.Stdout, *verbose)
	code := run(tb, *session, *wordcount)
	if code != 0 {
		tb.Errorf("demo failed")
	}
	say("stopping everything the demo started")
	tb.RunCleanups()
	if code == 0 {
		say("done")
	}
	os.Exit(code)
}

func run(tb *cluster.TB, session time.Duration, wordcount string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Println("\ninterrupted: stopping everything")
		tb.Fatalf("interrupted")
	}()

	say("starting a 3-node ZooKeeper ensemble on 127.0.0.1")
	zk := zktest.Start(tb, 3)
	say("ZooKeeper is up: %s", zk.Connect())

	say("starting 2 masters (recoveryMode=ZOOKEEPER, session timeout %s) and 3 workers", session)
	c := cluster.Start(tb, cluster.Options{Ensemble: zk, Masters: 2, Workers: 3, SessionTimeout: session,
		WorkerTimeout: 10 * time.Second, WorkerCores: 2, WorkerMemory: "512m"})
	env, _ := os.ReadFile(filepath.Join(c.ConfDir, "spark-env.sh"))
	for _, l := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		if strings.HasPrefix(l, "SPARK_DAEMON_JAVA_OPTS=") {
			say("conf/spark-env.sh: %s", l)
		}
	}
	leader, info, err := c.WaitLeader(30 * time.Second)
	if err != nil {
		tb.Errorf("%v", err)
		return 1
	}
	for i, m := range c.Masters {
		li, err := c.LeaderInfo(i)
		if err == nil {
			say("%s %s is %s (epoch %d, pid %d)", m.Name, m.URL(), li.State, li.Epoch, m.Pid())
		}
	}
	say("leader: %s, epoch %d; all 3 workers registered with it", c.Masters[leader].Name, info.Epoch)

	// The application: three long-running executors.
	dir := tb.TempDir()
	job, err := cluster.NewJob(dir)
	if err != nil {
		tb.Errorf("%v", err)
		return 1
	}
	c.TrackPids(job.PidDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"submit", "--master", c.MasterURLs(), "--name", "demo-app", "--executor-cores", "1",
		"--total-executor-cores", "3", "--executors", "3", "--executor-memory", "64m", "--exec", "--"}
	args = append(args, job.Argv()...)
	say("sparkd %s", strings.Join(args, " "))
	sub := c.Command(ctx, args...)
	out, errOut := &cluster.SyncBuffer{}, &cluster.SyncBuffer{}
	sub.Stdout, sub.Stderr = out, errOut
	if err := sub.Start(); err != nil {
		tb.Errorf("start sparkd submit: %v", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	tb.Cleanup(func() { _ = syscall.Kill(-sub.Process.Pid, syscall.SIGKILL) })
	fail := func(format string, a ...any) int {
		tb.Errorf(format, a...)
		fmt.Printf("---- sparkd submit output ----\n%s%s", out, errOut)
		c.DumpLogs(40)
		return 1
	}
	var pids []int
	if !cluster.WaitFor(60*time.Second, func() bool { pids = cluster.ReadPids(job.PidDir); return len(pids) >= 3 }) {
		return fail("3 executors did not start")
	}
	sort.Ints(pids)
	if !cluster.WaitFor(30*time.Second, func() bool { return appRunning(c, leader, "demo-app") }) {
		return fail("the application is not RUNNING")
	}
	say("application demo-app is RUNNING with 3 executors (pids %v)", pids)

	say("kill -9 %s (the leader, pid %d)", c.Masters[leader].Name, c.Masters[leader].Pid())
	killedAt := time.Since(start)
	f, err := c.Failover(syscall.SIGKILL, "demo-app", session+30*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	at := func(d time.Duration) string {
		return fmt.Sprintf("[%7.3fs]", (killedAt + d).Seconds())
	}
	fmt.Printf("%s %s took over: ALIVE at epoch %d, %s after the kill (session timeout %s)\n",
		at(f.Alive), c.Masters[f.New].Name, f.Epoch, f.Alive.Round(time.Millisecond), session)
	ids := make([]string, 0, len(f.WorkerSeen))
	for id := range f.WorkerSeen {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return f.WorkerSeen[ids[i]] < f.WorkerSeen[ids[j]] })
	for _, id := range ids {
		fmt.Printf("%s worker %s re-registered with %s (%s after the kill)\n", at(f.WorkerSeen[id]), id,
			c.Masters[f.New].Name, f.WorkerSeen[id].Round(time.Millisecond))
	}
	fmt.Printf("%s application demo-app re-attached and RUNNING on %s (%s after the kill)\n", at(f.App),
		c.Masters[f.New].Name, f.App.Round(time.Millisecond))

	same := true
	for _, p := range pids {
		if syscall.Kill(p, 0) != nil {
			same = false
		}
	}
	if !same || len(cluster.ReadPids(job.PidDir)) != 3 {
		return fail("executors did not survive the failover unchanged")
	}
	say("the 3 executors kept running through the failover, same pids %v", pids)

	say("releasing the executors")
	if err := job.ReleaseAll(); err != nil {
		return fail("%v", err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return fail("sparkd submit did not finish")
	}
	if code := sub.ProcessState.ExitCode(); code != 0 {
		return fail("sparkd submit exited %d", code)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(l, "finished") {
			say("%s", l)
		}
	}
	say("application completed: sparkd submit exited 0")

	say("restarting the old leader %s", c.Masters[f.Old].Name)
	c.RestartMaster(f.Old)
	if !cluster.WaitFor(30*time.Second, func() bool {
		li, err := c.LeaderInfo(f.Old)
		return err == nil && li.State == protocol.MasterStandby
	}) {
		return fail("the restarted master did not come back as STANDBY")
	}
	say("%s is back as STANDBY; %s still leads", c.Masters[f.Old].Name, c.Masters[f.New].Name)
	if code := runWordcount(tb, c, wordcount); code != 0 {
		return code
	}
	st, err := c.Command(ctx, "status", "--master", c.MasterURLs()).CombinedOutput()
	fmt.Printf("---- sparkd status ----\n%s", st)
	if err != nil {
		return fail("sparkd status: %v", err)
	}
	return 0
}

func appRunning(c *cluster.Cluster, leader int, name string) bool {
	st, err := c.State(leader)
	if err != nil {
		return false
	}
	for _, a := range st.ActiveApps {
		if a.Name == name && a.State == string(protocol.AppRunning) {
			return true
		}
	}
	return false
}
