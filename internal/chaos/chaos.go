// Package chaos is sparkd's randomized fault test (issue #11, `make chaos`).
//
// Run starts real processes: a 3-server ZooKeeper ensemble, 3 masters (each
// reaching ZooKeeper through its own zktest cutting proxies, so that one
// master can be cut from ZooKeeper while workers still reach it) and 4
// workers, all bin/sparkd, and keeps `sparkd submit --exec` applications
// running throughout (a new one every few seconds, 1-3 one-core executors
// each running `sleep 1-3`). It then injects a sequence of faults drawn from
// the seed (math/rand/v2, PCG): leader SIGKILL, SIGTERM, SIGSTOP past the
// ZooKeeper session, a leader cut from ZooKeeper, a ZooKeeper server killed,
// a worker killed or paused, or two at once. Every fault is followed by its
// heal and a convergence wait with a deadline.
//
// Meanwhile it records a history: every master's /v1/leader every 50 ms
// (time sent, time answered, state, epoch), the leader's /json (workers,
// applications) and every worker's own /json (the master it follows, its
// epoch, its executors) when they change, every submit's output and exit,
// and marker files the executors write. Afterwards it checks DESIGN.md's invariants:
//
//   - one-alive-per-epoch: at most one master reports ALIVE for any epoch;
//   - alive-epochs-grow: once a master answered ALIVE for epoch E, no master
//     answers ALIVE for a lower epoch to a request sent later (beyond a
//     small polling slack): no two leaders at once;
//   - convergence: within a bound after every heal, exactly one master is
//     ALIVE, the others STANDBY, and every live worker is ALIVE on it;
//   - app-finishes: every acknowledged application (submit printed that it
//     was registered) finishes (submit exits) within a bound after the last
//     heal; the report says whether the leader still knows it and which of
//     its executors' commands ran to the end;
//   - app-not-forgotten: no master forgets an acknowledged application
//     (submit says it had to register it again under a new id);
//   - app-succeeds: an acknowledged application exits 0 (its executors only
//     sleep; a failure means the cluster lost or refused something);
//   - executor-once: no executor (application id, executor id) is launched
//     twice (executors create their marker file with O_EXCL);
//   - cores-agree: once every application is done, the leader's used cores
//     of each worker equal what that worker says it runs;
//   - graceful-stop: a master SIGTERMed exits within 15s.
//
// Some leader faults are aligned (drawn from the seed): they wait until an
// executor's command is about to end, so that it ends while no master
// leads, the case of issue #11 item 0.
//
// The same seed with the same parameters replays the same fault sequence
// (what happens between faults depends on timing).
package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

// Config is one run's parameters. Zero values take the defaults noted.
type Config struct {
	Seed     uint64
	Steps    int           // faults (cycles) to inject (default 10)
	Duration time.Duration // inject no new fault after this much time (0: no limit)
	Kinds    []Kind        // fault kinds to draw from (nil: all)

	Masters, Workers, ZooKeeper int           // 3, 4, 3
	SessionTimeout              time.Duration // spark.deploy.zookeeper.sessionTimeout (2s)
	WorkerTimeout               time.Duration // spark.worker.timeout (6s)
	WorkerCores                 int           // 2

	PollInterval  time.Duration // /v1/leader polling (50ms)
	Slack         time.Duration // polling slack for alive-epochs-grow (100ms)
	ConvergeBound time.Duration // after each heal (session + worker timeout + 10s)
	DrainBound    time.Duration // for applications after the last heal (60s)
	AppEvery      time.Duration // at most this between two submits (4s)
	MaxExecutors  int           // per application (3)
	MaxGap        time.Duration // at most this before each fault (4s)

	// KeepDir is where the logs of a failed run are copied (default
	// $TMPDIR); the report prints the path.
	KeepDir string
	// Out receives the report (default os.Stdout).
	Out io.Writer
}

func (c *Config) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Steps, 10)
	def(&c.Masters, 3)
	def(&c.Workers, 4)
	def(&c.ZooKeeper, 3)
	def(&c.WorkerCores, 2)
	def(&c.MaxExecutors, 3)
	defD(&c.SessionTimeout, 2*time.Second)
	defD(&c.WorkerTimeout, 6*time.Second)
	defD(&c.PollInterval, 50*time.Millisecond)
	defD(&c.Slack, 100*time.Millisecond)
	defD(&c.ConvergeBound, c.SessionTimeout+c.WorkerTimeout+10*time.Second)
	defD(&c.DrainBound, 60*time.Second)
	defD(&c.AppEvery, 4*time.Second)
	defD(&c.MaxGap, 4*time.Second)
	if c.KeepDir == "" {
		c.KeepDir = os.TempDir()
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

func (c *Config) planParams() planParams {
	return planParams{Steps: c.Steps, Kinds: c.Kinds, Workers: c.Workers, ZooKeeper: c.ZooKeeper,
		SessionTimeout: c.SessionTimeout, WorkerTimeout: c.WorkerTimeout, MaxGap: c.MaxGap}
}

// Result is what a run found.
type Result struct {
	Seed          uint64
	Plan          []Step
	Replay        string // the command that replays the fault sequence
	StepsRun      int
	Apps, Acked   int
	Succeeded     int
	Violations    []Violation
	HarnessErrors []string // the harness could not do what it meant to (not a finding about sparkd)
	Converge      []time.Duration
	// Failovers: per leader fault kind, the time from the fault until a
	// master answered ALIVE with a higher epoch.
	Failovers map[Kind][]time.Duration
	// TookOffice: the same until a master with a higher epoch left STANDBY.
	TookOffice  map[Kind][]time.Duration
	KeptLogs    string // where the logs are copied when the run failed
	Interrupted bool
	Wall        time.Duration
}

// Failed reports whether the run found a violation or hit a harness error.
func (r *Result) Failed() bool { return len(r.Violations) > 0 || len(r.HarnessErrors) > 0 }

type runner struct {
	cfg          Config
	tb           testing.TB
	c            *cluster.Cluster
	proxies      [][]*zktest.Proxy // [master][zk server]
	h            *History
	rpc          *protocol.Client
	res          *Result
	out          io.Writer
	base         string
	leaderFaults []leaderFault
	wl           *workload
}

// align waits (at most 6s) until an executor's command ends between lo and
// hi from now, so that the leader fault that follows makes it end while no
// master leads.
func (r *runner) align(ctx context.Context, lo, hi time.Duration) {
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if what, ok := r.wl.endingSoon(lo, hi); ok {
			r.h.Eventf("aligned: %s", what)
			r.printf("chaos: aligned: %s", what)
			return
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	r.h.Eventf("aligned: no executor about to end within 6s; faulting anyway")
	r.printf("chaos: aligned: no executor about to end within 6s; faulting anyway")
}

// leaderFault is a fault of the leader: when, and the epoch it led.
type leaderFault struct {
	kind  Kind
	at    time.Time
	epoch int64
}

// Run runs one chaos run with cfg and returns what it found. It must be
// called from the test goroutine (the harnesses call tb.Fatal when they
// cannot start processes). Everything it starts is stopped in tb.Cleanup;
// when the run failed, the logs are then copied to Result.KeptLogs.
func Run(ctx context.Context, tb testing.TB, cfg Config) *Result {
	cfg.fill()
	start := time.Now()
	res := &Result{Seed: cfg.Seed, Plan: Plan(cfg.Seed, cfg.planParams()), Replay: cfg.Replay()}
	r := &runner{cfg: cfg, tb: tb, res: res, out: cfg.Out, rpc: protocol.NewClient(3*time.Second, "")}
	// The first TempDir: its removal is registered first, so it runs after
	// the copy of the logs below, which runs after the processes stopped.
	r.base = tb.TempDir()
	res.KeptLogs = filepath.Join(cfg.KeepDir, fmt.Sprintf("sparkd-chaos-seed%d-%s", cfg.Seed, time.Now().UTC().Format("20060102T150405")))
	tb.Cleanup(func() {
		if res.Failed() {
			r.keepLogs()
		}
	})
	r.printf("chaos: seed %d: %d masters, %d workers, %d ZooKeeper servers, session %s, worker timeout %s; %d steps%s",
		cfg.Seed, cfg.Masters, cfg.Workers, cfg.ZooKeeper, cfg.SessionTimeout, cfg.WorkerTimeout, cfg.Steps, durNote(cfg.Duration))
	r.printf("chaos: replay: %s", cfg.Replay())
	for _, s := range res.Plan {
		r.printf("chaos: plan %s", s)
	}

	zk := zktest.Start(tb, cfg.ZooKeeper)
	r.proxies = make([][]*zktest.Proxy, cfg.Masters)
	for m := range r.proxies {
		for _, s := range zk.Servers() {
			r.proxies[m] = append(r.proxies[m], zktest.NewProxy(tb, s.Addr()))
		}
	}
	r.c = cluster.Start(tb, cluster.Options{Ensemble: zk, Masters: cfg.Masters, Workers: cfg.Workers,
		SessionTimeout: cfg.SessionTimeout, WorkerTimeout: cfg.WorkerTimeout, WorkerCores: cfg.WorkerCores, WorkerMemory: "1g",
		MasterZKConnect: func(i int) string {
			var addrs []string
			for _, p := range r.proxies[i] {
				addrs = append(addrs, p.Addr())
			}
			return strings.Join(addrs, ",")
		}})
	r.printf("chaos: cluster up in %s; logs in %s", time.Since(start).Round(time.Millisecond), r.c.LogsDir())

	r.h = newHistory(cfg.Masters)
	pollCtx, stopPoll := context.WithCancel(context.Background())
	pl := &poller{c: r.c, h: r.h, rpc: r.rpc, interval: cfg.PollInterval, jsonEvery: 250 * time.Millisecond, timeout: time.Second}
	pl.start(pollCtx)
	defer func() { stopPoll(); pl.wait() }()

	submitCtx, stopSubmits := context.WithCancel(ctx)
	defer stopSubmits()
	wl, err := newWorkload(r.c, r.h, filepath.Join(r.base, "markers"), cfg.Seed, cfg.AppEvery, cfg.MaxExecutors)
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	wl.submitCtx = submitCtx
	r.wl = wl
	stopApps := make(chan struct{})
	appsDone := make(chan struct{})
	go func() { defer close(appsDone); wl.run(ctx, stopApps) }()
	defer wl.killAll()

	// The faults.
	for _, step := range res.Plan {
		if ctx.Err() != nil {
			break
		}
		if cfg.Duration > 0 && time.Since(start) > cfg.Duration {
			r.h.Eventf("duration %s reached: no more faults", cfg.Duration)
			break
		}
		if !sleepCtx(ctx, step.Gap) {
			break
		}
		res.StepsRun++
		if !r.runStep(ctx, step) {
			break
		}
	}
	close(stopApps)
	<-appsDone
	if ctx.Err() != nil {
		res.Interrupted = true
	}

	// Every acknowledged application finishes within DrainBound of the last heal.
	lastHeal := time.Now()
	r.h.Eventf("no more faults and no new applications; waiting up to %s for every application", cfg.DrainBound)
	stuck := wl.drain(ctx, lastHeal.Add(cfg.DrainBound))
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	res.Apps = len(wl.Apps())
	if !res.Interrupted {
		r.checkApps(wl, stuck, lastHeal)
	}
	stopSubmits()
	wl.killAll()
	if !res.Interrupted {
		r.checkCores(ctx)
	}
	stopPoll()
	pl.wait()
	r.writeAppOutputs(wl)

	res.Violations = append(res.Violations, checkAlive(r.h.Samples(), cfg.Slack)...)
	res.Failovers, res.TookOffice = failovers(r.h.Samples(), r.leaderFaults)
	dups := wl.duplicates()
	keys := make([]string, 0, len(dups))
	for k := range dups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		app := k[:max(strings.LastIndexByte(k, '-'), 0)]
		v := Violation{Invariant: InvExecutorOnce, At: time.Now(), Focus: app,
			Summary: fmt.Sprintf("executor %s of application %s was launched twice", k[len(app)+1:], app),
			Details: append([]string{dups[k]}, r.logEvidence(app)...)}
		if ts := clockTimes(dups[k], start); len(ts) > 0 {
			v.At, v.From, v.To = ts[len(ts)-1], ts[0].Add(-3*time.Second), ts[len(ts)-1].Add(3*time.Second)
		}
		res.Violations = append(res.Violations, v)
	}
	sort.SliceStable(res.Violations, func(i, j int) bool { return res.Violations[i].At.Before(res.Violations[j].At) })
	res.Wall = time.Since(start)
	r.report()
	return res
}

func durNote(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(" (or %s)", d)
}

// Replay is the command that replays this configuration's fault sequence.
func (c Config) Replay() string {
	var args []string
	if len(c.Kinds) > 0 {
		var ns []string
		for _, k := range c.Kinds {
			ns = append(ns, k.String())
		}
		args = append(args, "-faults "+strings.Join(ns, ","))
	}
	if c.SessionTimeout != 2*time.Second {
		args = append(args, "-session "+c.SessionTimeout.String())
	}
	if c.WorkerTimeout != 6*time.Second {
		args = append(args, "-worker-timeout "+c.WorkerTimeout.String())
	}
	if c.Workers != 4 {
		args = append(args, fmt.Sprintf("-workers %d", c.Workers))
	}
	if c.MaxGap != 4*time.Second {
		args = append(args, "-max-gap "+c.MaxGap.String())
	}
	s := fmt.Sprintf("make chaos CHAOS_SEED=%d CHAOS_CYCLES=%d", c.Seed, c.Steps)
	if c.Duration > 0 {
		s += " CHAOS_DURATION=" + c.Duration.String()
	}
	if len(args) > 0 {
		s += " CHAOS_ARGS='" + strings.Join(args, " ") + "'"
	}
	return s
}

func (r *runner) printf(format string, a ...any) {
	fmt.Fprintf(r.out, format+"\n", a...)
}

func (r *runner) harnessErr(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.res.HarnessErrors = append(r.res.HarnessErrors, msg)
	r.h.Eventf("HARNESS ERROR: %s", msg)
	r.printf("chaos: harness error: %s", msg)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// active is an applied fault and how to heal it.
type active struct {
	f    Fault
	what string
	heal func()
	zk   bool // a ZooKeeper server was restarted: wait for the ensemble
}

// runStep applies the step's faults, holds each for its Hold, heals them and
// waits for convergence. It returns false when the run cannot go on.
func (r *runner) runStep(ctx context.Context, step Step) bool {
	r.printf("chaos: %s", step)
	if step.Align {
		// The executor must end after the leader is gone and before its
		// successor has recovered: a standby takes office about a session
		// after a crash, pause or cut, at once after a graceful stop.
		lo, hi := 300*time.Millisecond, r.cfg.SessionTimeout*3/4
		for _, f := range step.Faults {
			if f.Kind == LeaderTerm {
				lo, hi = 20*time.Millisecond, 150*time.Millisecond
			}
		}
		r.align(ctx, lo, hi)
	}
	start := time.Now()
	var acts []*active
	for _, f := range step.Faults {
		a := r.apply(f)
		if a != nil {
			acts = append(acts, a)
		}
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].f.Hold < acts[j].f.Hold })
	interrupted := false
	for _, a := range acts {
		if !interrupted && !sleepCtx(ctx, time.Until(start.Add(a.f.Hold))) {
			interrupted = true // heal anyway, then stop
		}
		a.heal()
		r.h.Eventf("healed: %s", a.what)
	}
	if interrupted {
		return false
	}
	zkRestarted := false
	for _, a := range acts {
		zkRestarted = zkRestarted || a.zk
	}
	healed := time.Now()
	deadline := healed.Add(r.cfg.ConvergeBound)
	why := r.waitConverged(ctx, deadline, zkRestarted)
	if ctx.Err() != nil {
		return false
	}
	if why == "" {
		d := time.Since(healed)
		r.res.Converge = append(r.res.Converge, d)
		r.h.Eventf("step %d converged %s after the heal", step.N, d.Round(time.Millisecond))
		r.printf("chaos: step %d converged %s after the heal", step.N, d.Round(time.Millisecond))
		return true
	}
	// Not converged in time: see whether it ever does, then stop injecting.
	late := r.waitConverged(ctx, time.Now().Add(r.cfg.ConvergeBound), false)
	lateNote := fmt.Sprintf("still not converged %s later either", r.cfg.ConvergeBound)
	if late == "" {
		lateNote = fmt.Sprintf("converged late, %s after the heal", time.Since(healed).Round(time.Millisecond))
	}
	v := Violation{Invariant: InvConvergence, At: deadline, From: start.Add(-2 * time.Second), To: time.Now(),
		Summary: fmt.Sprintf("%s: not converged %s after the heal: %s (%s)", step, r.cfg.ConvergeBound, why, lateNote)}
	r.res.Violations = append(r.res.Violations, v)
	r.h.Eventf("%s", v.String())
	r.printf("chaos: %s", v)
	return late == ""
}

// leaderNow asks every running master once and returns the ALIVE one with
// the highest epoch.
func (r *runner) leaderNow(ctx context.Context) (int, int64, bool) {
	best, epoch := -1, int64(0)
	for i, m := range r.c.Masters {
		if !m.Running() {
			continue
		}
		li, err := r.leaderInfo(ctx, i)
		if err == nil && li.State == protocol.MasterAlive && (best < 0 || li.Epoch > epoch) {
			best, epoch = i, li.Epoch
		}
	}
	return best, epoch, best >= 0
}

func (r *runner) leaderInfo(ctx context.Context, i int) (protocol.LeaderInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var li protocol.LeaderInfo
	err := r.rpc.Call(cctx, "GET", r.c.Masters[i].Addr(), protocol.PathLeader, nil, &li)
	return li, err
}

// apply applies one fault and returns how to heal it (nil when it could not
// be applied).
func (r *runner) apply(f Fault) *active {
	ctx := context.Background()
	if f.Kind.leader() {
		l, epoch, ok := r.leaderNow(ctx)
		if !ok {
			r.harnessErr("%s: no ALIVE master to fault", f.Kind)
			return nil
		}
		p := r.c.Masters[l]
		what := fmt.Sprintf("%s %s (leader, epoch %d, pid %d)", f.Kind, p.Name, epoch, p.Pid())
		e := r.h.Eventf("fault: %s for %s", what, f.Hold)
		r.leaderFaults = append(r.leaderFaults, leaderFault{kind: f.Kind, at: e.At, epoch: epoch})
		switch f.Kind {
		case LeaderKill:
			r.signal(p, syscall.SIGKILL, 10*time.Second)
			return &active{f: f, what: what, heal: func() { r.restart(p) }}
		case LeaderTerm:
			r.signal(p, syscall.SIGTERM, 15*time.Second)
			return &active{f: f, what: what, heal: func() { r.restart(p) }}
		case LeaderStop:
			r.signal(p, syscall.SIGSTOP, 0)
			return &active{f: f, what: what, heal: func() { r.signal(p, syscall.SIGCONT, 0) }}
		case LeaderCut:
			for _, px := range r.proxies[l] {
				px.Cut()
			}
			return &active{f: f, what: what, heal: func() {
				for _, px := range r.proxies[l] {
					px.Restore()
				}
			}}
		}
	}
	switch f.Kind {
	case ZKKill:
		s := r.c.ZK.Servers()[f.ZK]
		what := fmt.Sprintf("zk-kill server %d (%s)", s.ID, s.Addr())
		r.h.Eventf("fault: %s for %s", what, f.Hold)
		r.c.ZK.Kill(f.ZK)
		return &active{f: f, what: what, zk: true, heal: func() { r.restartZK(f.ZK) }}
	case WorkerKill, WorkerStop:
		p := r.c.Workers[f.Worker]
		what := fmt.Sprintf("%s %s (port %d, pid %d)", f.Kind, p.Name, p.Port, p.Pid())
		r.h.Eventf("fault: %s for %s", what, f.Hold)
		if f.Kind == WorkerKill {
			r.signal(p, syscall.SIGKILL, 10*time.Second)
			return &active{f: f, what: what, heal: func() { r.restart(p) }}
		}
		r.signal(p, syscall.SIGSTOP, 0)
		return &active{f: f, what: what, heal: func() { r.signal(p, syscall.SIGCONT, 0) }}
	}
	r.harnessErr("fault kind %s cannot be applied", f.Kind)
	return nil
}

// signal sends sig to p and, when wait > 0, waits that long for it to exit
// (then SIGKILLs it).
func (r *runner) signal(p *cluster.Proc, sig syscall.Signal, wait time.Duration) {
	if err := p.Signal(sig); err != nil {
		r.harnessErr("signal %s to %s: %v", sig, p.Name, err)
		return
	}
	if wait <= 0 {
		return
	}
	if err := p.WaitExit(wait); err != nil {
		e := r.h.Eventf("%s did not exit within %s of %s: SIGKILL", p.Name, wait, sig)
		r.printf("chaos: %s did not exit within %s of %s (see %s); killing it", p.Name, wait, sig, p.LogPath)
		if sig == syscall.SIGTERM {
			r.res.Violations = append(r.res.Violations, Violation{Invariant: InvGracefulStop, At: e.At,
				From: e.At.Add(-wait - 2*time.Second), To: e.At.Add(2 * time.Second),
				Summary: fmt.Sprintf("%s did not exit within %s of SIGTERM (its log: %s)", p.Name, wait, p.LogPath),
				Details: append([]string{"last lines of its log:"}, indent(lastLines(cluster.Tail(p.LogPath, 10), 10))...)})
		}
		_ = p.Signal(syscall.SIGKILL)
		if err := p.WaitExit(10 * time.Second); err != nil {
			r.harnessErr("%v", err)
		}
	}
}

// restart starts p again with its ports and waits (5s at most) until it
// listens on all of them. Its ports are free loopback ports picked at
// start-up, so while it was down another process's outgoing connection may
// have taken one as its local port: then it exits with "address already in
// use", and restart tries again (for 20s at most). That is the harness's
// problem, not sparkd's: giving up is a harness error.
func (r *runner) restart(p *cluster.Proc) {
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		if err := p.Start(r.c.Bin); err != nil {
			r.harnessErr("restart %s: %v", p.Name, err)
			return
		}
		n := p.Starts()
		ready := time.Now().Add(5 * time.Second)
		for p.Running() && !listening(p) && time.Now().Before(ready) {
			time.Sleep(20 * time.Millisecond) // polling pace; bounded by ready
		}
		if p.Running() {
			return
		}
		since := logSinceStart(p, n)
		if !strings.Contains(since, "address already in use") {
			r.h.Eventf("%s exited right after its restart: %s", p.Name, errorLine(since))
			r.printf("chaos: %s exited right after its restart (see %s): %s", p.Name, p.LogPath, errorLine(since))
			return // sparkd's own doing: convergence will report it
		}
		if time.Now().After(deadline) {
			r.harnessErr("restart %s: its ports are still taken by another process after %d attempts: %s", p.Name, attempt, errorLine(since))
			return
		}
		r.h.Eventf("%s: a port was taken while it was down (attempt %d); starting it again", p.Name, attempt)
		time.Sleep(300 * time.Millisecond) // pacing between attempts; bounded by deadline
	}
}

// errorLine is the last line of log that reports an error (else its last line).
func errorLine(log string) string {
	ls := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.Contains(ls[i], "ERROR") || strings.Contains(ls[i], "FATAL") || strings.Contains(ls[i], "panic") || strings.Contains(ls[i], "already in use") {
			return ls[i]
		}
	}
	return ls[len(ls)-1]
}

// restartZK starts ZooKeeper server i again; like restart, it tries again
// (for 20s at most) when a port was taken while the server was down.
func (r *runner) restartZK(i int) {
	s := r.c.ZK.Servers()[i]
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		before, _ := os.ReadFile(s.LogPath())
		r.c.ZK.Start(i)
		// A clash shows within a second or two of the JVM's start.
		watch := time.Now().Add(4 * time.Second)
		clash := false
		for time.Now().Before(watch) && !clash {
			data, _ := os.ReadFile(s.LogPath())
			if len(data) > len(before) {
				tail := string(data[len(before):])
				clash = strings.Contains(tail, "Address already in use") || strings.Contains(tail, "BindException")
			}
			if !clash {
				if m, err := s.Mode(); err == nil && m != "" {
					return // serving
				}
				time.Sleep(100 * time.Millisecond) // polling pace; bounded by watch
			}
		}
		if !clash {
			return // not serving yet: convergence waits for the ensemble
		}
		if time.Now().After(deadline) {
			r.harnessErr("restart ZooKeeper server %d: its ports are still taken after %d attempts", s.ID, attempt)
			return
		}
		r.h.Eventf("ZooKeeper server %d: a port was taken while it was down (attempt %d); starting it again", s.ID, attempt)
		r.c.ZK.Kill(i)
	}
}

// listening reports whether p accepts connections on every port it owns.
func listening(p *cluster.Proc) bool {
	ports := []int{p.Port, p.UIPort}
	if p.RESTPort > 0 {
		ports = append(ports, p.RESTPort)
	}
	for _, port := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// logSinceStart is p's log from its start number n on.
func logSinceStart(p *cluster.Proc, n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	s := string(data)
	if i := strings.LastIndex(s, fmt.Sprintf("==== %s start #%d ", p.Name, n)); i >= 0 {
		s = s[i:]
	}
	return s
}

// waitConverged waits until exactly one master is ALIVE, every other running
// master answers STANDBY and every running worker is ALIVE on the leader.
// It returns "" when that holds before deadline, else what was missing.
func (r *runner) waitConverged(ctx context.Context, deadline time.Time, zkRestarted bool) string {
	if zkRestarted {
		if err := r.c.ZK.WaitHealthy(time.Until(deadline)); err != nil {
			return "ZooKeeper: " + err.Error()
		}
	}
	last := ""
	for {
		last = r.converged(ctx)
		if last == "" || ctx.Err() != nil {
			return last
		}
		if time.Now().After(deadline) {
			return last
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return last
		}
	}
}

func (r *runner) converged(ctx context.Context) string {
	leader := -1
	var states []string
	bad := false
	for i, m := range r.c.Masters {
		if !m.Running() {
			states = append(states, m.Name+"=down")
			bad = true
			continue
		}
		li, err := r.leaderInfo(ctx, i)
		if err != nil {
			states = append(states, m.Name+"="+shortErr(err))
			bad = true
			continue
		}
		states = append(states, fmt.Sprintf("%s=%s/%d", m.Name, li.State, li.Epoch))
		switch li.State {
		case protocol.MasterAlive:
			if leader >= 0 {
				bad = true
			}
			leader = i
		case protocol.MasterStandby:
		default:
			bad = true
		}
	}
	if bad || leader < 0 {
		return "masters " + strings.Join(states, " ")
	}
	st, err := masterJSON(ctx, r.rpc, r.c, leader, time.Second)
	if err != nil {
		return fmt.Sprintf("leader master-%d /json: %s", leader, shortErr(err))
	}
	if st.Status != string(protocol.MasterAlive) {
		return fmt.Sprintf("leader master-%d /json says %s", leader, st.Status)
	}
	byID := map[string]string{}
	for _, w := range st.Workers {
		byID[w.ID] = w.State
	}
	leaderAddr := r.c.Masters[leader].Addr()
	var missing []string
	for _, w := range r.c.Workers {
		if !w.Running() {
			continue
		}
		ws, err := r.workerJSON(ctx, w)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s(port %d): /json %s", w.Name, w.Port, shortErr(err)))
			continue
		}
		state := byID[ws.ID]
		if state == "" {
			state = "not registered"
		}
		if state != string(protocol.WorkerAlive) || !strings.Contains(ws.MasterURL, leaderAddr) || ws.Epoch != st.Epoch {
			missing = append(missing, fmt.Sprintf("%s(%s) is %s on the leader; the worker says master %q, epoch %d",
				w.Name, ws.ID, state, ws.MasterURL, ws.Epoch))
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("leader master-%d (epoch %d): %s", leader, st.Epoch, strings.Join(missing, "; "))
	}
	return ""
}

func (r *runner) workerJSON(ctx context.Context, w *cluster.Proc) (workerState, error) {
	return workerJSONOf(ctx, r.rpc, w, time.Second)
}

// checkCores waits (15s at most) until the leader's used cores of every
// running worker equal what the worker itself says it runs.
func (r *runner) checkCores(ctx context.Context) {
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for {
		why := r.coresDisagree(ctx)
		if why == "" || ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			r.res.Violations = append(r.res.Violations, Violation{Invariant: InvCoresAgree, At: time.Now(),
				From: start.Add(-5 * time.Second), To: time.Now(),
				Summary: "after every application ended, the leader and the workers still disagree on used cores 15s later: " + why})
			return
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return
		}
	}
}

func (r *runner) coresDisagree(ctx context.Context) string {
	l, epoch, ok := r.leaderNow(ctx)
	if !ok {
		return "no leader"
	}
	st, err := masterJSON(ctx, r.rpc, r.c, l, time.Second)
	if err != nil {
		return fmt.Sprintf("leader master-%d /json: %s", l, shortErr(err))
	}
	byID := map[string]cluster.WorkerState{}
	for _, w := range st.Workers {
		byID[w.ID] = w
	}
	var bad []string
	for _, w := range r.c.Workers {
		if !w.Running() {
			continue
		}
		ws, err := r.workerJSON(ctx, w)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: /json %s", w.Name, shortErr(err)))
			continue
		}
		lw, ok := byID[ws.ID]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (%s) is not on leader master-%d", w.Name, ws.ID, l))
			continue
		}
		if lw.CoresUsed != ws.CoresUsed {
			var execs []string
			for _, e := range ws.Executors {
				execs = append(execs, fmt.Sprintf("%s/%d", e.AppID, e.ID))
			}
			bad = append(bad, fmt.Sprintf("%s (%s): leader master-%d (epoch %d) counts %d core(s) used, the worker %d (running %v)",
				w.Name, ws.ID, l, epoch, lw.CoresUsed, ws.CoresUsed, execs))
		}
	}
	return strings.Join(bad, "; ")
}

// checkApps classifies the applications after the drain.
func (r *runner) checkApps(wl *workload, stuck []*App, lastHeal time.Time) {
	apps := wl.Apps()
	var leaderApps map[string]jsonApp
	leader := -1
	if l, _, ok := r.leaderNow(context.Background()); ok {
		if st, err := masterJSON(context.Background(), r.rpc, r.c, l, 2*time.Second); err == nil {
			leader = l
			leaderApps = map[string]jsonApp{}
			for _, a := range st.Active {
				leaderApps[a.ID] = a
			}
			for _, a := range st.Completed {
				if _, ok := leaderApps[a.ID]; !ok {
					leaderApps[a.ID] = a
				}
			}
		}
	}
	isStuck := map[*App]bool{}
	for _, a := range stuck {
		isStuck[a] = true
	}
	for _, a := range apps {
		id := a.AppID()
		if id == "" {
			if isStuck[a] {
				r.h.Eventf("app %s: submit still running %s after the last heal and never acknowledged", a.Name, r.cfg.DrainBound)
			} else if _, _, code := a.Ended(); code != 0 {
				r.h.Eventf("app %s: not acknowledged, submit exited %d: %s", a.Name, code, lastLine(a.Stderr()))
			}
			continue
		}
		r.res.Acked++
		ended, at, code := a.Ended()
		if rr := a.Reregistrations(); len(rr) > 0 {
			r.res.Violations = append(r.res.Violations, Violation{Invariant: InvAppNotForgotten, At: a.Started, Focus: id,
				From: a.Started.Add(-2 * time.Second), To: a.Started.Add(25 * time.Second),
				Summary: fmt.Sprintf("a master forgot acknowledged application %s (%s): submit had to register it again (%d time(s))", id, a.Name, len(rr)),
				Details: append(indent(rr), r.logEvidence(id)...)})
		}
		started, finished := wl.markers(id)
		if cur := a.CurrentID(); cur != id {
			s2, f2 := wl.markers(cur)
			started, finished = append(started, s2...), append(finished, f2...)
			id = cur
		}
		execNote := fmt.Sprintf("executor commands started %v, finished %v", started, finished)
		window := func() (time.Time, time.Time) {
			return a.Started.Add(-2 * time.Second), maxTime(a.LastActivity().Add(3*time.Second), a.Started.Add(10*time.Second))
		}
		switch {
		case !ended:
			known := "NOT known to the leader: lost"
			if leader < 0 {
				known = "no leader to ask"
			} else if la, ok := leaderApps[id]; ok {
				known = fmt.Sprintf("leader master-%d still has it %s with %d executor(s)", leader, la.State, la.Executors)
				if la.WaitingReason != "" {
					known += " (waiting: " + la.WaitingReason + ")"
				}
			}
			diag := ""
			if len(started) > 0 && len(started) == len(finished) {
				diag = "; all its executor commands finished"
			}
			from, to := window()
			r.res.Violations = append(r.res.Violations, Violation{Invariant: InvAppFinishes, At: lastHeal.Add(r.cfg.DrainBound), From: from, To: to, Focus: id,
				Summary: fmt.Sprintf("application %s (%s) not finished %s after the last heal; %s%s", id, a.Name, r.cfg.DrainBound, known, diag),
				Details: append(append([]string{
					fmt.Sprintf("submitted %s: %d executor(s) running sleep %s; %s", clock(a.Started), a.Executors, a.Sleep, execNote),
					"faults while it ran: " + r.faultsBetween(a.Started, a.LastActivity().Add(time.Second)),
					"submit stdout (last lines):"}, indent(lastLines(a.Stdout(), 12))...), r.logEvidence(id)...)})
		case code != 0:
			from, to := window()
			r.res.Violations = append(r.res.Violations, Violation{Invariant: InvAppSucceeds, At: at, From: from, To: to, Focus: id,
				Summary: fmt.Sprintf("application %s (%s) failed: submit exited %d at %s; %s", id, a.Name, code, clock(at), execNote),
				Details: append(append([]string{"submit stdout (last lines):"}, indent(lastLines(a.Stdout(), 8))...),
					append(append([]string{"submit stderr (last lines):"}, indent(lastLines(a.Stderr(), 8))...), r.logEvidence(id)...)...)})
		default:
			r.res.Succeeded++
		}
	}
}

// faultsBetween lists the faults applied between from and to.
func (r *runner) faultsBetween(from, to time.Time) string {
	var fs []string
	for _, e := range r.h.Events() {
		if strings.HasPrefix(e.Text, "fault: ") && !e.At.Before(from) && !e.At.After(to) {
			fs = append(fs, clock(e.At)+" "+strings.TrimPrefix(e.Text, "fault: "))
		}
	}
	if len(fs) == 0 {
		return "none"
	}
	return strings.Join(fs, "; ")
}

// logEvidence returns what the master and worker logs say about an
// application: every warning or error naming it, then its last lines.
func (r *runner) logEvidence(id string) []string {
	var warn, other []string
	for _, p := range append(append([]*cluster.Proc{}, r.c.Masters...), r.c.Workers...) {
		data, err := os.ReadFile(p.LogPath)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.Contains(l, id) {
				continue
			}
			l = p.Name + ": " + l
			if len(l) > 260 {
				l = l[:260] + "..."
			}
			if strings.Contains(l, " WARN ") || strings.Contains(l, " ERROR ") || strings.Contains(l, "unknown") {
				warn = append(warn, l)
			} else {
				other = append(other, l)
			}
		}
	}
	if len(warn) > 10 {
		warn = warn[len(warn)-10:]
	}
	if len(other) > 8 {
		other = other[len(other)-8:]
	}
	out := []string{"what the logs say about " + id + " (warnings, then the last other lines):"}
	if len(warn)+len(other) == 0 {
		return append(out, "    (nothing)")
	}
	return append(append(out, indent(warn)...), indent(other)...)
}

func lastLines(s string, n int) []string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return ls
}

func lastLine(s string) string {
	ls := lastLines(s, 1)
	return ls[0]
}

func indent(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = "    " + l
	}
	return out
}

// writeAppOutputs writes every submit's output next to the logs.
func (r *runner) writeAppOutputs(wl *workload) {
	dir := filepath.Join(r.c.LogsDir(), "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, a := range wl.Apps() {
		ended, at, code := a.Ended()
		status := "still running when the run ended"
		if ended {
			status = fmt.Sprintf("exited %d at %s", code, clock(at))
		}
		body := fmt.Sprintf("# %s started %s, %d executors of sleep %s, %s\n# stdout\n%s\n# stderr\n%s", a.Name, clock(a.Started), a.Executors, a.Sleep, status, a.Stdout(), a.Stderr())
		_ = os.WriteFile(filepath.Join(dir, a.Name+".txt"), []byte(body), 0o644)
	}
	var b strings.Builder
	for _, e := range r.h.Events() {
		fmt.Fprintf(&b, "%s %s\n", clock(e.At), e.Text)
	}
	_ = os.WriteFile(filepath.Join(r.c.LogsDir(), "chaos-events.txt"), []byte(b.String()), 0o644)
	b.Reset()
	for _, s := range r.h.Samples() {
		fmt.Fprintln(&b, s.String())
	}
	_ = os.WriteFile(filepath.Join(r.c.LogsDir(), "chaos-samples.txt"), []byte(b.String()), 0o644)
}

// report prints the result.
func (r *runner) report() {
	res := r.res
	r.printf("chaos: ==== seed %d: %d of %d steps run in %s; %d applications, %d acknowledged, %d succeeded ====",
		res.Seed, res.StepsRun, len(res.Plan), res.Wall.Round(time.Second), res.Apps, res.Acked, res.Succeeded)
	if len(res.Converge) > 0 {
		cs := res.Converge
		r.printf("chaos: convergence after heals: median %s, max %s (bound %s)", median(cs).Round(time.Millisecond), maxDur(cs).Round(time.Millisecond), r.cfg.ConvergeBound)
	}
	for k := Kind(0); k < numKinds; k++ {
		if ds := res.Failovers[k]; len(ds) > 0 {
			offs := res.TookOffice[k]
			r.printf("chaos: %s: new leader in office after median %s, max %s; ALIVE after median %s, max %s (%d faults)", k,
				median(offs).Round(time.Millisecond), maxDur(offs).Round(time.Millisecond),
				median(ds).Round(time.Millisecond), maxDur(ds).Round(time.Millisecond), len(ds))
		}
	}
	if res.Interrupted {
		r.printf("chaos: interrupted: application checks skipped")
	}
	for _, v := range res.Violations {
		r.printf("\n%s", v)
		for _, d := range v.Details {
			r.printf("  %s", d)
		}
		if !v.From.IsZero() {
			lines := r.h.Around(v.From, v.To, v.Focus)
			if len(lines) > 80 {
				lines = append(lines[:40], append([]string{fmt.Sprintf("  ... %d lines ...", len(lines)-80)}, lines[len(lines)-40:]...)...)
			}
			r.printf("  history %s .. %s:", clock(v.From), clock(v.To))
			for _, l := range lines {
				r.printf("  %s", l)
			}
		}
	}
	for _, e := range res.HarnessErrors {
		r.printf("chaos: harness error: %s", e)
	}
	if res.Failed() {
		byInv := map[string]int{}
		for _, v := range res.Violations {
			byInv[v.Invariant]++
		}
		var parts []string
		for k, n := range byInv {
			parts = append(parts, fmt.Sprintf("%s x%d", k, n))
		}
		sort.Strings(parts)
		r.printf("\nchaos: FAIL seed %d: %d violation(s) [%s], %d harness error(s)", res.Seed, len(res.Violations), strings.Join(parts, ", "), len(res.HarnessErrors))
		r.printf("chaos: process logs, submit outputs (apps/), chaos-events.txt and chaos-samples.txt will be kept in %s", res.KeptLogs)
		r.printf("chaos: replay: %s", r.cfg.Replay())
	} else if res.Interrupted {
		r.printf("chaos: INTERRUPTED seed %d: no violation in what ran", res.Seed)
	} else {
		r.printf("chaos: PASS seed %d", res.Seed)
	}
}

// keepLogs copies the sparkd logs (with the submit outputs and the
// history), the ZooKeeper logs and the executor markers to KeptLogs.
func (r *runner) keepLogs() {
	dst := r.res.KeptLogs
	if r.c != nil {
		_ = copyTree(r.c.LogsDir(), dst)
		if r.c.ZK != nil {
			for _, s := range r.c.ZK.Servers() {
				_ = copyFile(s.LogPath(), filepath.Join(dst, fmt.Sprintf("zk-%d.log", s.ID)))
			}
		}
	}
	_ = copyTree(filepath.Join(r.base, "markers"), filepath.Join(dst, "markers"))
	fmt.Fprintf(r.out, "chaos: logs kept in %s\n", dst)
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// failovers measures, for each leader fault, the time until a master
// answered ALIVE with a higher epoch than the faulted leader's (alive), and
// until one answered anything but STANDBY with a higher epoch, i.e. took
// office (recovery, which waits for paused workers, follows).
func failovers(samples []Sample, faults []leaderFault) (alive, office map[Kind][]time.Duration) {
	alive, office = map[Kind][]time.Duration{}, map[Kind][]time.Duration{}
	for _, f := range faults {
		tookOffice := false
		for _, s := range samples {
			if !s.OK || s.Epoch <= f.epoch || !s.Recv.After(f.at) || s.State == protocol.MasterStandby {
				continue
			}
			if !tookOffice {
				office[f.kind] = append(office[f.kind], s.Recv.Sub(f.at))
				tookOffice = true
			}
			if s.State == protocol.MasterAlive {
				alive[f.kind] = append(alive[f.kind], s.Recv.Sub(f.at))
				break
			}
		}
	}
	return alive, office
}

func median(ds []time.Duration) time.Duration {
	cs := append([]time.Duration(nil), ds...)
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return cs[len(cs)/2]
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

var clockRE = regexp.MustCompile(`\b(\d\d:\d\d:\d\d\.\d{3})`)

// clockTimes parses the UTC times of day (15:04:05.000) in s, on the day of
// ref (or the next day if that puts them before ref).
func clockTimes(s string, ref time.Time) []time.Time {
	day := ref.UTC().Truncate(24 * time.Hour)
	var out []time.Time
	for _, m := range clockRE.FindAllString(s, -1) {
		t, err := time.Parse("15:04:05.000", m)
		if err != nil {
			continue
		}
		at := day.Add(t.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)))
		if at.Before(ref.Add(-time.Hour)) {
			at = at.Add(24 * time.Hour)
		}
		out = append(out, at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}
