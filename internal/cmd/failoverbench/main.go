// Command failoverbench measures sparkd's standby-master failover on
// loopback: a real 3-node ZooKeeper, 2 masters, 3 workers and an --exec
// application with long-running executors, all separate bin/sparkd
// processes. For each session timeout and each signal (SIGKILL, SIGTERM) it
// fails the leader over -n times (restarting the old leader as a standby
// in between) and prints the median and p95 of three times, each measured
// from the signal: until the standby is ALIVE, until every worker has
// re-registered with it, and until the application is re-attached
// (RUNNING on it).
//
// Usage: go run ./internal/cmd/failoverbench [-n 20] [-sessions 2s,10s] [-signals KILL,TERM]
// It needs bin/sparkd ($SPARKD_BIN, else it builds one) and ZooKeeper.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

type sample struct{ alive, workers, app time.Duration }

func main() {
	n := flag.Int("n", 20, "failovers per configuration")
	sessions := flag.String("sessions", "2s,10s", "ZooKeeper session timeouts to measure")
	signals := flag.String("signals", "KILL,TERM", "signals to fail the leader with")
	verbose := flag.Bool("v", false, "print every failover")
	flag.Parse()
	var sess []time.Duration
	for _, s := range strings.Split(*sessions, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "failoverbench: -sessions: %q is not a duration\n", s)
			os.Exit(2)
		}
		sess = append(sess, d)
	}
	var sigs []syscall.Signal
	for _, s := range strings.Split(*signals, ",") {
		switch strings.ToUpper(strings.TrimPrefix(strings.TrimSpace(s), "SIG")) {
		case "KILL":
			sigs = append(sigs, syscall.SIGKILL)
		case "TERM":
			sigs = append(sigs, syscall.SIGTERM)
		default:
			fmt.Fprintf(os.Stderr, "failoverbench: -signals: %q: want KILL or TERM\n", s)
			os.Exit(2)
		}
	}
	if *n <= 0 {
		fmt.Fprintln(os.Stderr, "failoverbench: -n must be positive")
		os.Exit(2)
	}
	tb := cluster.NewTB("failoverbench", os.Stderr, false)
	defer tb.RunCleanups()
	zk := zktest.Start(tb, 3)
	type row struct {
		session time.Duration
		sig     syscall.Signal
		s       []sample
	}
	var rows []row
	for _, st := range sess {
		c := cluster.Start(tb, cluster.Options{Ensemble: zk, Masters: 2, Workers: 3, SessionTimeout: st,
			WorkerTimeout: 10 * time.Second, WorkerCores: 2, WorkerMemory: "512m"})
		release := startApp(tb, c)
		for _, sig := range sigs {
			r := row{session: st, sig: sig}
			for i := 0; i < *n; i++ {
				f, err := c.Failover(sig, "bench-app", st+60*time.Second)
				if err != nil {
					c.DumpLogs(40)
					tb.Fatalf("failover %d (%s, session %s): %v", i+1, sig, st, err)
				}
				r.s = append(r.s, sample{f.Alive, f.Workers, f.App})
				if *verbose {
					fmt.Fprintf(os.Stderr, "session %s %s #%d: ALIVE %s, workers %s, app %s\n", st, sigName(sig), i+1,
						f.Alive.Round(time.Millisecond), f.Workers.Round(time.Millisecond), f.App.Round(time.Millisecond))
				}
				c.RestartMaster(f.Old)
				if !cluster.WaitFor(60*time.Second, func() bool {
					li, err := c.LeaderInfo(f.Old)
					return err == nil && li.State == protocol.MasterStandby
				}) {
					tb.Fatalf("restarted %s did not come back as STANDBY", c.Masters[f.Old].Name)
				}
			}
			rows = append(rows, r)
		}
		release()
	}
	fmt.Printf("\nsparkd failover on loopback: 3 ZooKeeper servers, 2 masters, 3 workers, 1 app with 3 executors; %d failovers each\n", *n)
	fmt.Printf("times from the signal to the old leader; median / p95\n\n")
	fmt.Printf("| signal  | ZK session | standby ALIVE       | workers re-registered | app re-attached     |\n")
	fmt.Printf("|---------|-----------:|---------------------|-----------------------|---------------------|\n")
	for _, r := range rows {
		pick := func(f func(sample) time.Duration) string {
			var ds []time.Duration
			for _, s := range r.s {
				ds = append(ds, f(s))
			}
			return fmt.Sprintf("%s / %s", pct(ds, 50), pct(ds, 95))
		}
		fmt.Printf("| %-7s | %10s | %-19s | %-21s | %-19s |\n", sigName(r.sig), r.session,
			pick(func(s sample) time.Duration { return s.alive }),
			pick(func(s sample) time.Duration { return s.workers }),
			pick(func(s sample) time.Duration { return s.app }))
	}
}

// pct is the p-th percentile (nearest rank), rounded to the millisecond.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := (p*len(s) + 99) / 100
	if k < 1 {
		k = 1
	}
	return fmt.Sprintf("%.3fs", s[k-1].Seconds())
}

// startApp submits the long-running --exec application and waits for its 3
// executors; the returned func releases them and waits for submit to exit.
func startApp(tb *cluster.TB, c *cluster.Cluster) func() {
	dir := tb.TempDir()
	job, err := cluster.NewJob(dir)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	c.TrackPids(job.PidDir)
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"submit", "--master", c.MasterURLs(), "--name", "bench-app", "--executor-cores", "1",
		"--total-executor-cores", "3", "--executors", "3", "--executor-memory", "64m", "--exec", "--"}, job.Argv()...)
	cmd := c.Command(ctx, args...)
	logf, err := os.Create(filepath.Join(dir, "submit.log"))
	if err != nil {
		tb.Fatalf("%v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start sparkd submit: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; logf.Close() })
	if !cluster.WaitFor(60*time.Second, func() bool { return len(cluster.ReadPids(job.PidDir)) >= 3 }) {
		tb.Fatalf("the benchmark application's executors did not start; see %s", logf.Name())
	}
	return func() {
		_ = job.ReleaseAll()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
		}
	}
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}
