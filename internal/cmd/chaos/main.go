// Command chaos runs sparkd's randomized fault test (internal/chaos) against
// real processes: ZooKeeper, masters, workers and `sparkd submit --exec`
// applications. It is what `make chaos` runs.
//
// Usage:
//
//	go run ./internal/cmd/chaos [-seed N] [-runs R] [-cycles C] [-duration D] [-faults leader-kill,...]
//
// Each run starts a fresh cluster and injects -cycles faults drawn from its
// seed (run i uses seed N+i); -seed 0 picks a random first seed. A failing
// run prints its violations, the history around them, where its logs are
// kept, and the command that replays its seed. The exit status is 1 when
// any run failed. Ctrl-C stops the run, heals the faults and stops every
// process. It needs bin/sparkd ($SPARKD_BIN, else it builds one) and
// ZooKeeper (`make deps`).
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/internal/chaos"
	"github.com/sparkd/sparkd/internal/cluster"
)

func main() {
	seed := flag.Uint64("seed", 0, "seed of the first run (0: random)")
	runs := flag.Int("runs", 1, "runs, each on a fresh cluster, with seeds seed, seed+1, ...")
	cycles := flag.Int("cycles", 20, "faults (cycles) per run")
	duration := flag.Duration("duration", 0, "inject no new fault after this much time per run (0: no limit)")
	faults := flag.String("faults", "all", "fault kinds to draw from: leader-kill,leader-term,leader-stop,leader-cut,zk-kill,worker-kill,worker-stop,double")
	session := flag.Duration("session", 2*time.Second, "ZooKeeper session timeout of the masters")
	workerTimeout := flag.Duration("worker-timeout", 6*time.Second, "spark.worker.timeout")
	workers := flag.Int("workers", 4, "workers")
	maxGap := flag.Duration("max-gap", 4*time.Second, "at most this much time before each fault")
	keep := flag.String("keep", os.TempDir(), "where the logs of failed runs are copied")
	verbose := flag.Bool("v", false, "log harness details")
	flag.Parse()
	kinds, err := chaos.ParseKinds(*faults)
	if err != nil || *runs <= 0 || *cycles <= 0 {
		if err == nil {
			err = fmt.Errorf("-runs and -cycles must be positive")
		}
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(2)
	}
	if *seed == 0 {
		*seed = rand.Uint64N(1 << 31)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once (children die with us: parent-death signal)
		fmt.Fprintln(os.Stderr, "chaos: interrupted: healing and stopping every process")
	}()
	var failed []string
	start := time.Now()
	for i := 0; i < *runs && ctx.Err() == nil; i++ {
		s := *seed + uint64(i)
		tb := cluster.NewTB(fmt.Sprintf("chaos-%d", s), os.Stderr, *verbose)
		res := chaos.Run(ctx, tb, chaos.Config{Seed: s, Steps: *cycles, Duration: *duration, Kinds: kinds,
			SessionTimeout: *session, WorkerTimeout: *workerTimeout, Workers: *workers, MaxGap: *maxGap, KeepDir: *keep})
		tb.RunCleanups()
		if res.Failed() {
			var invs []string
			for _, v := range res.Violations {
				invs = append(invs, v.Invariant)
			}
			if len(res.HarnessErrors) > 0 {
				invs = append(invs, "harness-error")
			}
			failed = append(failed, fmt.Sprintf("seed %d: %s\n    logs: %s\n    replay: %s", s, strings.Join(uniq(invs), ", "), res.KeptLogs, res.Replay))
		}
		fmt.Println()
	}
	fmt.Printf("chaos: %d run(s) from seed %d, %d cycles each, in %s\n", *runs, *seed, *cycles, time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		fmt.Printf("chaos: %d failing seed(s):\n  %s\n", len(failed), strings.Join(failed, "\n  "))
		os.Exit(1)
	}
	if ctx.Err() != nil {
		os.Exit(130)
	}
	fmt.Println("chaos: no violation")
}

func uniq(ss []string) []string {
	seen := map[string]int{}
	var out []string
	for _, s := range ss {
		if seen[s] == 0 {
			out = append(out, s)
		}
		seen[s]++
	}
	for i, s := range out {
		if n := seen[s]; n > 1 {
			out[i] = fmt.Sprintf("%s x%d", s, n)
		}
	}
	return out
}
