// Command scalebench runs `make bench-scale`: for each N it starts a real
// 3-server ZooKeeper (once), two real bin/sparkd masters (2 s session) and
// a simulated fleet of N workers, N/2 applications and 3N/4 executors
// (internal/cmd/fleetsim, its own process), and measures the cold start, a
// crash failover (SIGKILL of the leader) and a graceful one (SIGTERM), the
// leader's RSS, fds and goroutines and the registrations per worker; then it
// prints the table and the full one (package internal/scalebench).
//
// It raises its own open-file limit (RLIMIT_NOFILE) to the hard limit, or
// to -nofile (above the hard limit needs root), before starting anything,
// so the masters and the fleet inherit it.
//
// Usage: go run ./internal/cmd/scalebench -fleetsim bin/fleetsim [-n "10 1000 3000 10000"] [-session 2s]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/fleetsim"
	"github.com/sparkd/sparkd/internal/scalebench"
	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/internal/zktest"
)

func main() {
	ns := flag.String("n", "10 1000 3000 10000", "fleet sizes N (workers), separated by spaces or commas")
	session := flag.Duration("session", 2*time.Second, "spark.deploy.zookeeper.sessionTimeout")
	wtimeout := flag.Duration("worker-timeout", 60*time.Second, "spark.worker.timeout of masters and workers (Spark's default; heartbeats every quarter, and the recovery timeout)")
	fleetBin := flag.String("fleetsim", "", "fleetsim binary (default: build one)")
	nofile := flag.Uint64("nofile", 0, "RLIMIT_NOFILE for the masters and the fleet (default: the hard limit)")
	failovers := flag.String("failovers", "crash,graceful", "which failovers to measure: crash, graceful or both")
	shards := flag.Int("shards", 0, "fleetsim processes per fleet (default: one per 4,000 workers)")
	repeat := flag.Int("repeat", 1, "failovers of each kind per N (the table shows the median run)")
	fleetArgs := flag.String("fleetsim-args", "", "extra fleetsim flags, separated by spaces (e.g. -cpuprofile /tmp/fleet.pprof)")
	rate := flag.Float64("start-rate", 250, "above -start-rate-above workers, start the fleet at this many workers per second (0: all at once)")
	rateAbove := flag.Int("start-rate-above", 3000, "fleets larger than this start at -start-rate; smaller ones all at once")
	quiet := flag.Bool("q", false, "print only the tables")
	flag.Parse()
	usage := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", a...)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments %q", flag.Args())
	}
	var sizes []int
	for _, f := range strings.FieldsFunc(*ns, func(r rune) bool { return r == ' ' || r == ',' }) {
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < 1 {
			usage("-n: %q is not a positive number of workers", f)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		usage("-n names no fleet size")
	}
	if *shards < 0 {
		usage("-shards %d: must not be negative", *shards)
	}
	if *repeat < 1 {
		usage("-repeat %d: want at least 1", *repeat)
	}
	if *session <= 0 || *wtimeout <= 0 {
		usage("-session %s and -worker-timeout %s must be positive", *session, *wtimeout)
	}
	var crash, graceful bool
	for _, f := range strings.Split(*failovers, ",") {
		switch strings.TrimSpace(f) {
		case "crash":
			crash = true
		case "graceful":
			graceful = true
		default:
			usage("-failovers: %q: want crash or graceful", f)
		}
	}
	soft, hard, err := fleetsim.RaiseFileLimit(*nofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
	for _, n := range sizes {
		// The leader's fds follow its calls in flight and the peers that
		// talked to it in the last 2 s (well under one per peer); a fleet
		// process of 4,000 workers and 2,000 applications needs about 10,000.
		if need := uint64(n/2 + 5000); need > soft {
			fmt.Fprintf(os.Stderr, "scalebench: warning: at N=%d the leader needs about %d open files; the limit is %d "+
				"(raise the hard limit: ulimit -Hn, LimitNOFILE=, or -nofile with CAP_SYS_RESOURCE)\n", n, need, soft)
		}
	}
	if lo, hi, ok := portRange(); ok {
		for _, n := range sizes {
			// A listener per worker and per application, plus the
			// connections in flight and in TIME_WAIT.
			if need := 3*n/2 + 8000; need > hi-lo {
				fmt.Fprintf(os.Stderr, "scalebench: warning: N=%d needs about %d loopback ports; net.ipv4.ip_local_port_range %d-%d has %d\n",
					n, need, lo, hi, hi-lo)
			}
		}
	}

	load := loadavg()
	tb := cluster.NewTB("scalebench", os.Stderr, !*quiet)
	code := 0
	defer func() {
		tb.RunCleanups()
		os.Exit(code)
	}()
	bin := *fleetBin
	if bin == "" {
		bin, err = scalebench.BuildFleetsim(testbin.Root(), tb.TempDir())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
			return
		}
	}
	logw := os.Stderr
	if *quiet {
		logw = nil
	}
	zk := zktest.Start(tb, 3)
	var results []scalebench.Result
	for _, n := range sizes {
		// Each N gets its own masters and fleet, stopped before the next.
		sub := cluster.NewTB(fmt.Sprintf("scalebench-%d", n), os.Stderr, !*quiet)
		o := scalebench.Options{N: n, Session: *session, WorkerTimeout: *wtimeout, FleetBin: bin, Ensemble: zk,
			Crash: crash, Graceful: graceful, Repeat: *repeat, Shards: *shards,
			FleetArgs: strings.Fields(*fleetArgs)}
		if n > *rateAbove {
			o.StartRate = *rate
		}
		if logw != nil {
			o.Log = logw
		}
		r, err := scalebench.Run(sub, o)
		if err != nil {
			// Marks the run failed: the logs' tails are printed and the
			// directories kept.
			sub.Errorf("scalebench: N=%d: %v", n, err)
			code = 1
		}
		sub.RunCleanups()
		results = append(results, r)
	}
	fmt.Printf("\nsparkd masters against a simulated fleet: %d CPUs (%s), load average %s at the start, open-file limit %d (hard %d)\n",
		runtime.NumCPU(), runtime.GOARCH, load, soft, hard)
	fleets := "fleetsim processes (nice 5) of up to 4,000 workers"
	if *shards > 0 {
		fleets = fmt.Sprintf("%d fleetsim processes", *shards)
	}
	fmt.Printf("3 ZooKeeper servers, 2 masters (bin/sparkd, ZOOKEEPER mode, session %s, spark.worker.timeout %s), %s:\n",
		*session, *wtimeout, fleets)
	fmt.Printf("N workers (real worker package, simulated executor processes), N/2 applications (client package), 3N/4 executors; all on loopback\n")
	fmt.Printf("times from the fleet's start or the signal; failovers: the median of %d run(s) by time to ALIVE; RSS and fds: the new leader after the crash failover\n\n", *repeat)
	scalebench.PrintTables(os.Stdout, results)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func portRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil
}
