// Package scalebench measures sparkd's masters against a simulated fleet
// (internal/fleetsim, run as its own process): a real ZooKeeper ensemble,
// two real bin/sparkd masters in ZOOKEEPER recovery mode and N workers, N/2
// applications and 3N/4 executors. For one N it measures the cold start of
// the whole fleet, a crash failover (SIGKILL of the leader) and a graceful
// one (SIGTERM), the leader's RSS, open fds and goroutines, and how many
// registration requests reach the leader per worker.
//
// Every time is measured from the bench's own clock (the signal, the fleet's
// start) to an event the fleet records with its wall clock (a worker's
// "Successfully registered" or "Master has changed" line, an application's
// MasterChanged event), all on one machine; "ALIVE" is seen by polling the
// standby's /v1/leader every 5 ms. Every wait has a deadline; every process
// is stopped by the TB's cleanups, also on failure.
package scalebench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/fleetsim"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

// Options shape one measurement. Zero values take the defaults noted.
type Options struct {
	N         int // workers (required)
	Apps      int // default N/2
	Executors int // default 3N/4
	// Session is spark.deploy.zookeeper.sessionTimeout (default 2 s).
	Session time.Duration
	// WorkerTimeout is spark.worker.timeout on masters and workers, and
	// so the masters' recovery timeout (default 60 s, Spark's).
	WorkerTimeout time.Duration
	// Crash and Graceful select the failovers (both when neither is set);
	// each is measured Repeat times (default 1), alternating.
	Crash, Graceful bool
	Repeat          int
	// FleetBin is the fleetsim binary (required; see BuildFleetsim).
	FleetBin string
	// Ensemble is the ZooKeeper to use (default: a new 3-server one).
	Ensemble *zktest.Ensemble
	// Shards is how many fleetsim processes hold the fleet (default: one
	// per shardWorkers workers, so that each stays well within a
	// 20,000-file limit).
	Shards int
	// StartRate, when positive, starts the fleet at that many workers per
	// second (over all shards) instead of all at once.
	StartRate float64
	// FleetArgs are extra fleetsim flags (e.g. -cpuprofile).
	FleetArgs []string
	// Log receives progress lines (default: none).
	Log io.Writer
}

// Result is what one run measured.
type Result struct {
	N, Apps, Executors int
	Session            time.Duration
	StartRate          float64 // Options.StartRate
	Cold               ColdStart
	// Crash and Graceful are the runs with the median time to ALIVE (nil
	// when not measured); CrashRuns and GracefulRuns all runs, in order.
	Crash, Graceful         *Failover
	CrashRuns, GracefulRuns []Failover
	// Leader is the leader's usage once the cold-started fleet is attached.
	Leader Usage
}

// ColdStart is the fleet's start against an ALIVE leader and a standby.
type ColdStart struct {
	Workers   time.Duration // until the last worker registered with the leader
	All       time.Duration // until every application is attached and every executor runs
	PerWorker float64       // registration requests reaching the leader per worker
	Both      float64       // registration requests to both masters per worker
	// MasterLog: "Registering worker" lines and duplicate warnings in the
	// leader's log.
	LogRegistering, LogDuplicates int
	// CPU used until everything was attached: by the leader, by the
	// standby and by the fleet process (user + system).
	LeaderCPU, StandbyCPU, FleetCPU time.Duration
	FleetRSSBytes                   int64
	FleetFDs                        int
}

// WorkersPerSecond is the cold start's registration rate.
func (c ColdStart) WorkersPerSecond(n int) float64 {
	if c.Workers <= 0 {
		return 0
	}
	return float64(n) / c.Workers.Seconds()
}

// Failover is one failover, each time from the signal.
type Failover struct {
	Signal   syscall.Signal
	Alive    time.Duration // the standby reports ALIVE with a higher epoch
	Workers  time.Duration // the last worker attached to it
	Apps     time.Duration // the last application attached to it
	Attached time.Duration // max(Workers, Apps)
	// PerWorker: registration requests that reached the new leader, per
	// worker, from the signal until everything was attached.
	PerWorker float64
	// HeartbeatLosses: workers that saw their master fail and went back
	// to registering.
	HeartbeatLosses int64
	// ExecutorsRunning after the failover (none is lost by a failover).
	ExecutorsRunning int64
	// WorkersAttached and AppsAttached to the new leader at the end (all
	// of them unless the failover did not complete in time: Err).
	WorkersAttached, AppsAttached int
	Err                           error
	// LogRegistering, LogDuplicates: lines in the new leader's log.
	LogRegistering, LogDuplicates int
	// LogSelfFenced: commands the new leader did not send because it was
	// self-fenced (ZooKeeper had not answered for 2/3 of the session).
	LogSelfFenced int
	Leader        Usage // the new leader once everything is attached
	// CPU used from the signal until everything was attached, by the new
	// leader and by the fleet process.
	LeaderCPU, FleetCPU time.Duration
}

// Usage is a master process's footprint.
type Usage struct {
	RSSBytes   int64
	FDs        int
	Goroutines int
}

// shardWorkers: a fleetsim process of 4,000 workers and 2,000 applications
// holds about 6,000 listeners and a few thousand connections.
const shardWorkers = 4000

// BuildFleetsim builds internal/cmd/fleetsim into dir and returns its path.
func BuildFleetsim(root, dir string) (string, error) {
	out := filepath.Join(dir, "fleetsim")
	cmd := exec.Command("go", "build", "-o", out, "./internal/cmd/fleetsim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("scalebench: build fleetsim: %w\n%s", err, b)
	}
	return out, nil
}

type bench struct {
	tb     testing.TB
	o      Options
	c      *cluster.Cluster
	fleets []*fleetProc
	hc     *http.Client
	logf   func(format string, a ...any)
}

// Run measures one N. Failures of the setup call tb.Fatal; a measurement
// that misses its deadline is returned as an error (with what was measured).
func Run(tb testing.TB, o Options) (res Result, err error) {
	tb.Helper()
	if o.N < 1 {
		return Result{}, fmt.Errorf("scalebench: N %d: want at least 1", o.N)
	}
	if o.FleetBin == "" {
		return Result{}, errors.New("scalebench: no fleetsim binary given")
	}
	if o.Apps == 0 {
		o.Apps = o.N / 2
	}
	if o.Executors == 0 {
		o.Executors = max(3*o.N/4, o.Apps)
	}
	if o.Session <= 0 {
		o.Session = 2 * time.Second
	}
	if o.WorkerTimeout <= 0 {
		o.WorkerTimeout = 60 * time.Second
	}
	if o.Shards < 1 {
		o.Shards = (o.N + shardWorkers - 1) / shardWorkers
	}
	o.Shards = min(o.Shards, o.N)
	if o.Repeat < 1 {
		o.Repeat = 1
	}
	if !o.Crash && !o.Graceful {
		o.Crash, o.Graceful = true, true
	}
	b := &bench{tb: tb, o: o, hc: &http.Client{Timeout: 30 * time.Second}, logf: func(string, ...any) {}}
	if o.Log != nil {
		b.logf = func(format string, a ...any) {
			fmt.Fprintf(o.Log, "scalebench N=%d: %s\n", o.N, fmt.Sprintf(format, a...))
		}
	}
	res = Result{N: o.N, Apps: o.Apps, Executors: o.Executors, Session: o.Session, StartRate: o.StartRate}
	b.c = cluster.Start(tb, cluster.Options{Ensemble: o.Ensemble, Masters: 2, Workers: -1, SessionTimeout: o.Session,
		WorkerTimeout: o.WorkerTimeout, StartTimeout: 2 * time.Minute})
	lead, li, err := b.c.WaitLeader(time.Minute)
	if err != nil {
		tb.Fatalf("scalebench: %v", err)
	}
	b.logf("leader %s (epoch %d); starting the fleet", b.c.Masters[lead].Name, li.Epoch)

	cold, err := b.coldStart(lead)
	res.Cold = cold
	if err != nil {
		return res, err
	}
	res.Leader = b.usage(lead)
	b.logf("cold start: workers %s, all %s, %.2f registrations/worker at the leader (log: %d Registering, %d duplicates); "+
		"leader RSS %d MiB, %d fds; CPU leader %s, standby %s, fleet %s; fleet RSS %d MiB, %d fds",
		cold.Workers.Round(time.Millisecond), cold.All.Round(time.Millisecond), cold.PerWorker, cold.LogRegistering, cold.LogDuplicates,
		res.Leader.RSSBytes>>20, res.Leader.FDs, cold.LeaderCPU, cold.StandbyCPU, cold.FleetCPU, cold.FleetRSSBytes>>20, cold.FleetFDs)

	var sigs []syscall.Signal
	// Graceful first: a crash that does not complete leaves a fleet in no
	// state to measure anything after it.
	for range o.Repeat {
		if o.Graceful {
			sigs = append(sigs, syscall.SIGTERM)
		}
		if o.Crash {
			sigs = append(sigs, syscall.SIGKILL)
		}
	}
	defer func() {
		res.Crash, res.Graceful = median(res.CrashRuns), median(res.GracefulRuns)
	}()
	for i, sig := range sigs {
		if err := b.quiesce(); err != nil {
			return res, err
		}
		f, err := b.failover(sig)
		f.Err = err
		if sig == syscall.SIGKILL {
			res.CrashRuns = append(res.CrashRuns, f)
		} else {
			res.GracefulRuns = append(res.GracefulRuns, f)
		}
		if err != nil {
			return res, err
		}
		b.logf("%s: ALIVE %s, workers %s, apps %s, %.2f registrations/worker at the new leader (log: %d Registering, %d duplicates), "+
			"%d heartbeats lost, %d commands dropped self-fenced; RSS %d MiB, %d fds; CPU new leader %s, fleet %s; %d executors running",
			SignalName(sig), f.Alive.Round(time.Millisecond), f.Workers.Round(time.Millisecond), f.Apps.Round(time.Millisecond),
			f.PerWorker, f.LogRegistering, f.LogDuplicates, f.HeartbeatLosses, f.LogSelfFenced, f.Leader.RSSBytes>>20, f.Leader.FDs,
			f.LeaderCPU, f.FleetCPU, f.ExecutorsRunning)
		if i < len(sigs)-1 {
			if err := b.restartStandby(); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// fleetProc is one fleetsim process (a shard of the fleet).
type fleetProc struct {
	url   string    // control URL
	pid   int       //
	stdin io.Closer // a line on it starts the fleet
}

// shardSizes splits n as evenly as possible into k parts.
func shardSizes(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// startFleets starts the fleet as Shards fleetsim processes, each holding
// its part of the workers, applications and executors and waiting at its
// start gate; then it opens every gate at once.
func (b *bench) startFleets() {
	k := b.o.Shards
	ws, as, es := shardSizes(b.o.N, k), shardSizes(b.o.Apps, k), shardSizes(b.o.Executors, k)
	for i := range k {
		b.fleets = append(b.fleets, b.startFleet(i, ws[i], as[i], es[i]))
	}
	for _, f := range b.fleets {
		if _, err := io.WriteString(f.stdin.(io.Writer), "start\n"); err != nil {
			b.tb.Fatalf("scalebench: start fleetsim %d: %v", f.pid, err)
		}
	}
}

// startFleet starts one fleetsim process and waits until it is ready.
func (b *bench) startFleet(shard, workers, apps, executors int) *fleetProc {
	tb := b.tb
	dir := tb.TempDir()
	logPath := filepath.Join(dir, fmt.Sprintf("fleetsim-%d.log", shard))
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatalf("scalebench: %v", err)
	}
	args := []string{"-masters", b.c.MasterURLs(), "-workers", strconv.Itoa(workers), "-apps", strconv.Itoa(apps),
		"-executors", strconv.Itoa(executors), "-worker-timeout", b.o.WorkerTimeout.String(), "-hold", "-v"}
	if b.o.StartRate > 0 {
		args = append(args, "-start-rate", strconv.FormatFloat(b.o.StartRate/float64(b.o.Shards), 'f', 3, 64))
	}
	args = append(args, b.o.FleetArgs...)
	// The fleet runs at a lower CPU priority (nice 5): it stands for
	// thousands of hosts, and on one 2-core machine its processes would
	// otherwise take most of the CPU from the masters and ZooKeeper, which
	// in a deployment have their own hosts. The fleet's own latency then
	// counts in the re-attach times, not in the masters'.
	cmd := exec.Command(b.o.FleetBin, args...)
	if nice, err := exec.LookPath("nice"); err == nil {
		cmd = exec.Command(nice, append([]string{"-n", "5", b.o.FleetBin}, args...)...)
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("scalebench: %v", err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("scalebench: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("scalebench: start fleetsim: %v", err)
	}
	fp := &fleetProc{pid: cmd.Process.Pid, stdin: stdin}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), fleetsim.ControlPrefix); ok {
				select {
				case lines <- u:
				default:
				}
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			tb.Logf("scalebench: fleetsim did not stop within 60s; killing it")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = stdin.Close()
		if tb.Failed() {
			tb.Logf("---- fleetsim %d, last 40 lines of %s ----\n%s", shard, logPath, cluster.Tail(logPath, 40))
		}
	})
	deadline := time.Minute + time.Duration(workers)*10*time.Millisecond
	select {
	case fp.url = <-lines:
		return fp
	case <-exited:
		tb.Fatalf("scalebench: fleetsim exited before it was ready:\n%s", cluster.Tail(logPath, 40))
	case <-time.After(deadline):
		tb.Fatalf("scalebench: fleetsim not ready after %s:\n%s", deadline, cluster.Tail(logPath, 40))
	}
	return nil
}

// status merges the status of every shard.
func (b *bench) status() (fleetsim.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all fleetsim.Status
	all.ByMaster = map[string]*fleetsim.Attached{}
	all.RegisterRequests = map[string]int64{}
	for _, f := range b.fleets {
		st, err := fleetsim.ReadStatus(ctx, b.hc, f.url)
		if err != nil {
			return all, err
		}
		if all.Started.IsZero() || st.Started.Before(all.Started) {
			all.Started = st.Started
		}
		all.Workers += st.Workers
		all.Apps += st.Apps
		all.Executors += st.Executors
		all.ExecutorsRunning += st.ExecutorsRunning
		all.ExecutorsLaunched += st.ExecutorsLaunched
		all.WorkersGaveUp += st.WorkersGaveUp
		all.AppsFailed += st.AppsFailed
		all.Duplicates += st.Duplicates
		all.RegisterRetries += st.RegisterRetries
		all.HeartbeatLosses += st.HeartbeatLosses
		all.AppDisconnects += st.AppDisconnects
		all.AppReregistered += st.AppReregistered
		for k, v := range st.RegisterRequests {
			all.RegisterRequests[protocol.HTTPBase(k)] += v
		}
		for u, a := range st.ByMaster {
			m := all.ByMaster[protocol.HTTPBase(u)]
			if m == nil {
				m = &fleetsim.Attached{}
				all.ByMaster[protocol.HTTPBase(u)] = m
			}
			m.Workers += a.Workers
			m.Apps += a.Apps
			m.LastWorkerAt = later(m.LastWorkerAt, a.LastWorkerAt)
			m.LastAppAt = later(m.LastAppAt, a.LastAppAt)
		}
	}
	return all, nil
}

// fleetCPU, fleetRSS and fleetFDs sum over the fleet's processes.
func (b *bench) fleetCPU() (d time.Duration) {
	for _, f := range b.fleets {
		d += procCPU(f.pid)
	}
	return d
}

func (b *bench) fleetRSS() (n int64) {
	for _, f := range b.fleets {
		n += procRSS(f.pid)
	}
	return n
}

func (b *bench) fleetFDs() (n int) {
	for _, f := range b.fleets {
		n += procFDs(f.pid)
	}
	return n
}

// attached reads how much of the fleet follows master i.
func attached(st fleetsim.Status, url string) fleetsim.Attached {
	if a := st.ByMaster[protocol.HTTPBase(url)]; a != nil {
		return *a
	}
	return fleetsim.Attached{}
}

func (b *bench) masterURL(i int) string { return b.c.Masters[i].URL() }

// waitFleet polls the fleet's status until done says so or timeout passes.
func (b *bench) waitFleet(timeout time.Duration, what string, done func(fleetsim.Status) bool) (fleetsim.Status, error) {
	deadline := time.Now().Add(timeout)
	interval := 20 * time.Millisecond
	for {
		st, err := b.status()
		if err == nil && done(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return st, fmt.Errorf("scalebench: %s: not done after %s: %w", what, timeout, err)
			}
			return st, fmt.Errorf("scalebench: %s: not done after %s: %s", what, timeout, summary(st))
		}
		time.Sleep(interval)
	}
}

func summary(st fleetsim.Status) string {
	var parts []string
	for u, a := range st.ByMaster {
		parts = append(parts, fmt.Sprintf("%s: %d workers, %d apps", u, a.Workers, a.Apps))
	}
	return fmt.Sprintf("%s; executors running %d of %d; %d workers gave up, %d apps failed", strings.Join(parts, "; "),
		st.ExecutorsRunning, st.Executors, st.WorkersGaveUp, st.AppsFailed)
}

func (b *bench) coldStart(lead int) (ColdStart, error) {
	var cs ColdStart
	lcpu0, scpu0 := procCPU(b.c.Masters[lead].Pid()), procCPU(b.c.Masters[1-lead].Pid())
	b.startFleets()
	url := b.masterURL(lead)
	st, err := b.waitFleet(2*time.Minute+time.Duration(b.o.N)*20*time.Millisecond, "cold start", func(st fleetsim.Status) bool {
		a := attached(st, url)
		return a.Workers == b.o.N && a.Apps == b.o.Apps && st.ExecutorsRunning == int64(b.o.Executors)
	})
	a := attached(st, url)
	if !st.Started.IsZero() {
		cs.Workers = a.LastWorkerAt.Sub(st.Started)
		cs.All = later(a.LastWorkerAt, a.LastAppAt).Sub(st.Started)
	}
	if err != nil {
		return cs, err
	}
	cs.LeaderCPU = procCPU(b.c.Masters[lead].Pid()) - lcpu0
	cs.StandbyCPU = procCPU(b.c.Masters[1-lead].Pid()) - scpu0
	cs.FleetCPU = b.fleetCPU()
	cs.FleetRSSBytes = b.fleetRSS()
	cs.FleetFDs = b.fleetFDs()
	cs.PerWorker = float64(st.RegisterRequests[protocol.HTTPBase(b.c.Masters[lead].Addr())]) / float64(b.o.N)
	var total int64
	for _, v := range st.RegisterRequests {
		total += v
	}
	cs.Both = float64(total) / float64(b.o.N)
	cs.LogRegistering, cs.LogDuplicates = logCounts(b.c.Masters[lead].LogPath)
	return cs, nil
}

// failover signals the leader and measures until the whole fleet follows
// the standby.
func (b *bench) failover(sig syscall.Signal) (Failover, error) {
	f := Failover{Signal: sig}
	old, li, err := b.c.Leader()
	if err != nil {
		return f, err
	}
	nu := 1 - old
	before, err := b.status()
	if err != nil {
		return f, err
	}
	newAddr := b.c.Masters[nu].Addr()
	reg0, dup0, fen0 := logCounts3(b.c.Masters[nu].LogPath)
	lcpu0, fcpu0 := procCPU(b.c.Masters[nu].Pid()), b.fleetCPU()
	start := time.Now()
	if err := b.c.Masters[old].Signal(sig); err != nil {
		return f, err
	}
	// Bound: the session, the recovery timeout (the worker timeout) and
	// the re-registrations that follow it, plus a little per peer.
	deadline := start.Add(b.o.Session + 2*b.o.WorkerTimeout + 30*time.Second + time.Duration(b.o.N)*20*time.Millisecond)
	rpc := protocol.NewClient(2*time.Second, "")
	defer rpc.HTTP.CloseIdleConnections()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var got protocol.LeaderInfo
		err := rpc.Call(ctx, http.MethodGet, newAddr, protocol.PathLeader, nil, &got)
		cancel()
		if err == nil && got.State == protocol.MasterAlive && got.Epoch > li.Epoch {
			f.Alive = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("scalebench: %s: %s not ALIVE after %s (last: %v %s)", SignalName(sig),
				b.c.Masters[nu].Name, time.Since(start).Round(time.Millisecond), err, got.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	url := b.masterURL(nu)
	st, err := b.waitFleet(time.Until(deadline), SignalName(sig)+" re-attach", func(st fleetsim.Status) bool {
		a := attached(st, url)
		return a.Workers == b.o.N && a.Apps == b.o.Apps
	})
	a := attached(st, url)
	f.Workers, f.Apps = a.LastWorkerAt.Sub(start), a.LastAppAt.Sub(start)
	if b.o.Apps == 0 {
		f.Apps = 0
	}
	f.Attached = max(f.Workers, f.Apps)
	f.WorkersAttached, f.AppsAttached = a.Workers, a.Apps
	f.LeaderCPU, f.FleetCPU = procCPU(b.c.Masters[nu].Pid())-lcpu0, b.fleetCPU()-fcpu0
	newKey := protocol.HTTPBase(newAddr)
	f.PerWorker = float64(st.RegisterRequests[newKey]-before.RegisterRequests[newKey]) / float64(b.o.N)
	f.HeartbeatLosses = st.HeartbeatLosses - before.HeartbeatLosses
	f.ExecutorsRunning = st.ExecutorsRunning
	reg1, dup1, fen1 := logCounts3(b.c.Masters[nu].LogPath)
	f.LogRegistering, f.LogDuplicates, f.LogSelfFenced = reg1-reg0, dup1-dup0, fen1-fen0
	if err != nil {
		return f, err
	}
	f.Leader = b.usage(nu)
	if err := b.c.Masters[old].WaitExit(30 * time.Second); err != nil {
		return f, err
	}
	return f, nil
}

// quiesce waits until the leader has nothing queued for the fleet or the
// store (three readings of /metrics in a row, 100 ms apart), so that a
// failover does not start in the middle of the previous one's aftermath.
func (b *bench) quiesce() error {
	lead, _, err := b.c.Leader()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", b.c.Masters[lead].UIPort)
	calm := 0
	ok := cluster.WaitFor(time.Minute, func() bool {
		if metric(b.hc, url, "sparkd_master_outbox_depth") == 0 && metric(b.hc, url, "sparkd_master_persist_depth") == 0 {
			calm++
		} else {
			calm = 0
		}
		if calm >= 3 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	if !ok {
		return fmt.Errorf("scalebench: the leader %s still has work queued after 1m", b.c.Masters[lead].Name)
	}
	return nil
}

// restartStandby starts the master that is down again and waits for it to
// be a STANDBY.
// mirrorLoaded is the line a standby logs once its mirror of the store is
// loaded (recovery/zkrecovery/mirror.go).
const mirrorLoaded = "Standby mirror loaded"

func (b *bench) restartStandby() error {
	for i, m := range b.c.Masters {
		if m.Running() {
			continue
		}
		loaded := m.LogCount(mirrorLoaded)
		if err := m.Start(b.c.Bin); err != nil {
			return err
		}
		if !cluster.WaitFor(time.Minute, func() bool {
			li, err := b.c.LeaderInfo(i)
			return err == nil && li.State == protocol.MasterStandby
		}) {
			return fmt.Errorf("scalebench: restarted %s is not a STANDBY after 1m", m.Name)
		}
		// A standby is warm once it has loaded its mirror of the store; a
		// standby that crashes moments after its restart is not what the
		// next failover measures.
		if !cluster.WaitFor(2*time.Minute, func() bool { return m.LogCount(mirrorLoaded) > loaded }) {
			return fmt.Errorf("scalebench: restarted %s did not load its standby mirror within 2m", m.Name)
		}
	}
	return nil
}

// usage reads master i's RSS and fds from /proc and its goroutines from
// the web UI's /metrics.
func (b *bench) usage(i int) Usage {
	var u Usage
	pid := b.c.Masters[i].Pid()
	if pid == 0 {
		return u
	}
	u.RSSBytes = procRSS(pid)
	u.FDs = procFDs(pid)
	u.Goroutines = int(metric(b.hc, fmt.Sprintf("http://127.0.0.1:%d/metrics", b.c.Masters[i].UIPort), "go_goroutines"))
	return u
}

// procFDs counts a process's open file descriptors (0 when unknown).
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(ents)
}

// procRSS is a process's resident set size (0 when unknown).
func procRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procCPU is the user + system CPU time a process has used (0 when unknown),
// from /proc/<pid>/stat in clock ticks of 1/100 s (Linux's USER_HZ).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14 and stime 15.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// metric reads one unlabelled sample from a Prometheus text endpoint (-1
// when it cannot).
func metric(hc *http.Client, url, name string) float64 {
	resp, err := hc.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// logCounts counts the master's "Registering worker" lines and its
// duplicate-registration warnings.
func logCounts(path string) (registering, duplicates int) {
	registering, duplicates, _ = logCounts3(path)
	return registering, duplicates
}

// logCounts3 also counts the lines about commands not sent while the
// master was self-fenced (no recent reply from ZooKeeper).
func logCounts3(path string) (registering, duplicates, fenced int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Registering worker ") {
			registering++
		}
		if strings.Contains(line, "registered again (duplicate)") {
			duplicates++
		}
		if strings.Contains(line, "(self-fenced)") {
			fenced++
		}
	}
	return registering, duplicates, fenced
}

// median is the run with the median time to ALIVE (the lower of the two
// middle ones), or the run that failed, nil for none.
func median(runs []Failover) *Failover {
	if len(runs) == 0 {
		return nil
	}
	for i := range runs {
		if runs[i].Err != nil {
			return &runs[i]
		}
	}
	s := append([]Failover(nil), runs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Alive < s[j].Alive })
	return &s[(len(s)-1)/2]
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SignalName is SIGKILL or SIGTERM.
func SignalName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}
