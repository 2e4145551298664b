package main

// HA fault tests (the HA-safety review): real ZooKeeper, real master and
// worker processes, SIGSTOP/SIGCONT and SIGKILL, and recording stand-ins for
// application clients. Each checks DESIGN.md's invariants from the outside.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery/zkrecovery"
	"github.com/sparkd/sparkd/zkutil"
)

// push is one message a master pushed to a recording application client.
type push struct {
	at    time.Time
	path  string
	stamp protocol.Stamp
}

// recApp is an application client stand-in: it fences pushes by epoch like
// the real client and records every push it receives.
type recApp struct {
	srv   *httptest.Server
	guard protocol.EpochGuard
	mu    sync.Mutex
	appID string
	got   []push
}

func newRecApp(t *testing.T) *recApp {
	a := &recApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var s protocol.Stamp
		_ = json.Unmarshal(body, &s)
		a.mu.Lock()
		a.got = append(a.got, push{at: time.Now(), path: r.URL.Path, stamp: s})
		id := a.appID
		a.mu.Unlock()
		if _, err := a.guard.Admit(s); err != nil {
			protocol.WriteError(rw, http.StatusConflict, err.Error(), nil)
			return
		}
		if r.URL.Path == protocol.PathAppMasterChanged {
			protocol.WriteJSON(rw, 200, protocol.MasterChangeAcknowledged{AppID: id})
			return
		}
		protocol.WriteJSON(rw, 200, struct{}{})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// pushesSince returns the pushes received at or after since.
func (a *recApp) pushesSince(since time.Time) []push {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []push
	for _, p := range a.got {
		if !p.at.Before(since) {
			out = append(out, p)
		}
	}
	return out
}

func (a *recApp) register(t *testing.T, c *cluster.Cluster, leader int, desc protocol.AppDescription) {
	t.Helper()
	cli := protocol.NewClient(5*time.Second, "")
	var ra protocol.RegisteredApplication
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, c.Masters[leader].Addr(), protocol.PathRegisterApp,
		protocol.RegisterApplication{App: desc, ClientURL: a.srv.URL}, &ra))
	a.mu.Lock()
	a.appID = ra.AppID
	a.mu.Unlock()
}

func requireZK(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs ZooKeeper and real processes")
	}
	if _, _, err := zktest.Classpath(); err != nil {
		t.Skipf("ZooKeeper not installed: %v", err)
	}
}

// pidCommand is a command that records its pid in dir and then sleeps, so
// that a test can count the live copies of a launch (and teardown can kill
// them: workers start them in their own process groups).
func pidCommand(dir string) []string {
	return []string{"/bin/sh", "-c", fmt.Sprintf("echo $$ > %s/$$; exec sleep 120", dir)}
}

// livePids counts the processes named by the pid files in dir that are
// still alive (a zombie that is not yet reaped counts as dead).
func livePids(dir string) []int {
	var out []int
	for _, pid := range cluster.ReadPids(dir) {
		if syscall.Kill(pid, 0) != nil {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// haWait polls cond every 20ms until it holds or within passes.
func haWait(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe is one answer of a master's PathLeader.
type probe struct {
	sent time.Time
	li   protocol.LeaderInfo
}

// probeLeader asks master i for PathLeader from n goroutines until stop is
// closed, recording every answer with the time its request was sent.
func probeLeader(c *cluster.Cluster, i, n int, stop <-chan struct{}) func() []probe {
	var mu sync.Mutex
	var got []probe
	var wg sync.WaitGroup
	cli := protocol.NewClient(15*time.Second, "")
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				var li protocol.LeaderInfo
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				err := cli.Call(ctx, http.MethodGet, c.Masters[i].Addr(), protocol.PathLeader, nil, &li)
				cancel()
				if err == nil {
					mu.Lock()
					got = append(got, probe{sent: sent, li: li})
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond) // pacing, not synchronisation
			}
		})
	}
	return func() []probe {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// A leader paused (SIGSTOP) past the session timeout and past
// spark.worker.timeout, then resumed, is a zombie: when it wakes up its
// worker looks dead to it and its term is over. Invariants 1, 3, 4 and 5:
// it never reports ALIVE for its old epoch once the successor is ALIVE,
// pushes nothing to applications or workers, and the executor it granted
// keeps running exactly once. Invariant 7: afterwards there is exactly one
// leader and the worker is registered with it.
func TestHAFaultZombieLeaderResumes(t *testing.T) {
	requireZK(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 1, ZooKeeper: 3, SessionTimeout: 2 * time.Second,
		WorkerTimeout: 4 * time.Second})
	pids := filepath.Join(c.Dir, "pids")
	require.NoError(t, os.MkdirAll(pids, 0o755))
	c.TrackPids(pids)

	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	app := newRecApp(t)
	app.register(t, c, old, protocol.AppDescription{Name: "zombie-probe", Command: pidCommand(pids),
		ExecutorCores: 1, ExecutorMemMB: 64, MaxCores: 1})
	haWait(t, 20*time.Second, "the executor never started", func() bool { return len(livePids(pids)) == 1 })

	stopProbes := make(chan struct{})
	probes := probeLeader(c, old, 4, stopProbes)
	stopped := true
	c.Masters[old].Stop()
	t.Cleanup(func() {
		if stopped {
			c.Masters[old].Cont()
		}
	})
	pausedAt := time.Now()
	nu, nli, err := c.WaitNewLeader(old, li.Epoch, 30*time.Second)
	require.NoError(t, err)
	successorAlive := time.Now()
	t.Logf("%s paused; %s ALIVE at epoch %d after %s", c.Masters[old].Name, c.Masters[nu].Name, nli.Epoch,
		successorAlive.Sub(pausedAt).Round(time.Millisecond))
	// Stay paused past spark.worker.timeout, so that the zombie, on waking,
	// finds its worker silent and wants to act on it.
	haWait(t, 30*time.Second, "the new leader never re-attached the worker and the app", func() bool {
		st, err := c.State(nu)
		return err == nil && st.AliveWorkers == 1 && len(st.ActiveApps) == 1 && st.ActiveApps[0].State == "RUNNING" &&
			time.Since(pausedAt) > c.Opts.WorkerTimeout+time.Second
	})

	resumed := time.Now()
	c.Masters[old].Cont()
	stopped = false
	haWait(t, 20*time.Second, "the resumed master never settled as STANDBY behind the new leader", func() bool {
		got, err := c.LeaderInfo(old)
		return err == nil && got.State == protocol.MasterStandby && got.LeaderURL == c.Masters[nu].URL()
	})
	// Keep probing a little longer after it settled.
	settle := time.Now().Add(time.Second)
	haWait(t, 5*time.Second, "", func() bool { return time.Now().After(settle) })
	close(stopProbes)

	// Invariant 4: no ALIVE for the old epoch once the successor was ALIVE.
	var late, aliveOld int
	for _, p := range probes() {
		if p.sent.Before(successorAlive) {
			continue
		}
		late++
		if p.li.State != protocol.MasterStandby && p.li.Epoch <= li.Epoch {
			aliveOld++
			t.Errorf("resumed master answered %s for epoch %d (request sent %s after the successor was ALIVE)",
				p.li.State, p.li.Epoch, p.sent.Sub(successorAlive).Round(time.Millisecond))
		}
	}
	t.Logf("%d answers of the zombie after the successor was ALIVE, %d of them non-STANDBY for the old epoch", late, aliveOld)
	assert.Positive(t, late, "the probes never reached the resumed master")

	// Invariant 3: the zombie pushed nothing after it woke up.
	for _, p := range app.pushesSince(resumed) {
		assert.Greater(t, p.stamp.Epoch, li.Epoch, "the resumed master pushed %s with its old epoch %d", p.path, p.stamp.Epoch)
	}
	assert.False(t, c.Workers[0].LogContains("Refusing "), "the worker had to refuse a stale command:\n%s",
		cluster.Tail(c.Workers[0].LogPath, 20))
	// The mechanism: the zombie noticed its pause and did not act until
	// ZooKeeper could confirm its term (it could not).
	assert.True(t, c.Masters[old].LogContains("This process was paused for"), "the zombie did not notice its pause:\n%s",
		cluster.Tail(c.Masters[old].LogPath, 30))

	// Invariants 5 and 7: one leader, the worker registered with it, the
	// executor granted by the old leader running exactly once.
	i, cur, err := c.Leader()
	require.NoError(t, err)
	assert.Equal(t, nu, i)
	assert.Equal(t, nli.Epoch, cur.Epoch)
	st, err := c.State(nu)
	require.NoError(t, err)
	assert.Equal(t, 1, st.AliveWorkers)
	assert.Len(t, livePids(pids), 1, "the executor granted before the failover must run exactly once")
}

// submitDriver submits a cluster-mode driver to master i over RPC.
func submitDriver(t *testing.T, c *cluster.Cluster, i int, spec protocol.DriverSpec) string {
	t.Helper()
	cli := protocol.NewClient(5*time.Second, "")
	var sd protocol.SubmitDriverResponse
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, c.Masters[i].Addr(), protocol.PathSubmitDriver, spec, &sd))
	return sd.DriverID
}

// waitRecovering waits until a master other than old is the elected leader
// (any state but STANDBY) with an epoch above oldEpoch.
func waitRecovering(t *testing.T, c *cluster.Cluster, old int, oldEpoch int64) (int, protocol.LeaderInfo) {
	t.Helper()
	var (
		idx int
		got protocol.LeaderInfo
	)
	haWait(t, 30*time.Second, "no new leader took office", func() bool {
		for i := range c.Masters {
			if i == old || !c.Masters[i].Running() {
				continue
			}
			li, err := c.LeaderInfo(i)
			if err == nil && li.State != protocol.MasterStandby && li.Epoch > oldEpoch {
				idx, got = i, li
				return true
			}
		}
		return false
	})
	return idx, got
}

// driverWorker is the id of the worker master i says runs driver id.
func driverWorker(c *cluster.Cluster, i int, id string) string {
	st, err := c.State(i)
	if err != nil {
		return ""
	}
	for _, d := range st.Drivers {
		if d.ID == id && d.State == "RUNNING" {
			return d.Worker
		}
	}
	return ""
}

// workerIndex maps a worker id (worker-<time>-<host>-<port>) to its Proc.
func workerIndex(c *cluster.Cluster, id string) int {
	for i, w := range c.Workers {
		if strings.HasSuffix(id, fmt.Sprintf("-%d", w.Port)) {
			return i
		}
	}
	return -1
}

// A worker paused while the leader dies, past the new leader's RPC timeout
// (so its answer to MasterChanged is lost) but not past the recovery
// timeout, is re-attached when it resumes: the supervised driver it runs
// keeps its id and runs once (invariant 5), and recovery completes without
// waiting for the recovery timeout (invariant 6, 7).
func TestHAFaultWorkerPausedAcrossFailoverIsReattached(t *testing.T) {
	requireZK(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 1, ZooKeeper: 3, SessionTimeout: 2 * time.Second,
		WorkerTimeout: 40 * time.Second})
	pids := filepath.Join(c.Dir, "pids")
	require.NoError(t, os.MkdirAll(pids, 0o755))
	c.TrackPids(pids)
	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	id := submitDriver(t, c, old, protocol.DriverSpec{Command: pidCommand(pids), Cores: 1, MemoryMB: 64, Supervise: true})
	haWait(t, 20*time.Second, "the driver never started", func() bool { return len(livePids(pids)) == 1 })

	c.Workers[0].Stop()
	paused := true
	t.Cleanup(func() {
		if paused {
			c.Workers[0].Cont()
		}
	})
	c.Masters[old].Kill()
	nu, nli := waitRecovering(t, c, old, li.Epoch)
	elected := time.Now()
	t.Logf("%s took office at epoch %d (%s)", c.Masters[nu].Name, nli.Epoch, nli.State)
	// The master's RPC timeout (10s) passes: the MasterChanged answer is lost.
	haWait(t, 30*time.Second, "the new leader never gave up on MasterChanged", func() bool {
		return c.Masters[nu].LogContains("did not answer MasterChanged")
	})
	c.Workers[0].Cont()
	paused = false
	resumed := time.Now()

	haWait(t, 25*time.Second, "recovery did not complete after the worker resumed", func() bool {
		st, err := c.State(nu)
		return err == nil && st.Status == string(protocol.MasterAlive) && !st.Recovering
	})
	t.Logf("ALIVE %s after the worker resumed (%s after taking office; recovery timeout %s)",
		time.Since(resumed).Round(time.Millisecond), time.Since(elected).Round(time.Millisecond), c.Opts.WorkerTimeout)
	assert.Less(t, time.Since(elected), c.Opts.WorkerTimeout, "recovery waited for the recovery timeout")
	st, err := c.State(nu)
	require.NoError(t, err)
	assert.Equal(t, 1, st.AliveWorkers)
	require.Len(t, st.Drivers, 1)
	assert.Equal(t, id, st.Drivers[0].ID, "the driver was relaunched instead of re-attached")
	assert.Len(t, livePids(pids), 1, "the driver must run exactly once")
}

// A worker paused past the recovery timeout is indistinguishable from a
// dead one: the new leader relaunches its supervised driver elsewhere
// (under its id; Spark gives it a new one). When the worker resumes, the original
// driver must be killed so that exactly one copy runs again, and the worker
// must end up registered with the leader (invariant 7). The time both
// copies ran is logged: it is the design's known window.
func TestHAFaultWorkerPausedPastRecoveryConverges(t *testing.T) {
	requireZK(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 2, ZooKeeper: 3, SessionTimeout: 2 * time.Second,
		WorkerTimeout: 4 * time.Second})
	pids := filepath.Join(c.Dir, "pids")
	require.NoError(t, os.MkdirAll(pids, 0o755))
	c.TrackPids(pids)
	old, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)
	id := submitDriver(t, c, old, protocol.DriverSpec{Command: pidCommand(pids), Cores: 1, MemoryMB: 64, Supervise: true})
	var wid string
	haWait(t, 20*time.Second, "the driver never started", func() bool {
		wid = driverWorker(c, old, id)
		return wid != "" && len(livePids(pids)) == 1
	})
	wi := workerIndex(c, wid)
	require.GreaterOrEqual(t, wi, 0, "worker %s not found", wid)
	first := livePids(pids)[0]

	c.Workers[wi].Stop()
	paused := true
	t.Cleanup(func() {
		if paused {
			c.Workers[wi].Cont()
		}
	})
	c.Masters[old].Kill()
	nu, nli, err := c.WaitNewLeader(old, li.Epoch, 30*time.Second)
	require.NoError(t, err)
	t.Logf("%s ALIVE at epoch %d", c.Masters[nu].Name, nli.Epoch)
	haWait(t, 20*time.Second, "the supervised driver was not relaunched on the other worker", func() bool {
		return len(livePids(pids)) == 2
	})
	relaunched := time.Now()
	c.Workers[wi].Cont()
	paused = false

	haWait(t, 30*time.Second, "the original driver still runs beside its relaunch", func() bool {
		return len(livePids(pids)) == 1
	})
	t.Logf("two copies of the supervised driver ran for %s (the worker was paused, then re-registered)",
		time.Since(relaunched).Round(time.Millisecond))
	assert.NotContains(t, livePids(pids), first, "the original copy should be the one killed")
	haWait(t, 30*time.Second, "the resumed worker never registered with the leader", func() bool {
		st, err := c.State(nu)
		return err == nil && st.AliveWorkers == 2
	})
	i, _, err := c.Leader()
	require.NoError(t, err)
	assert.Equal(t, nu, i, "exactly one leader, the same one")
	st, err := c.State(nu)
	require.NoError(t, err)
	require.Len(t, st.Drivers, 1)
	assert.Equal(t, id, st.Drivers[0].ID, "relaunched under the submitted id")
	assert.NotEqual(t, wid, st.Drivers[0].Worker, "and runs on the other worker")
}

// inProcMaster is a master wired as serveMaster wires it (ZooKeeper elector
// and store, self-fence bound 2/3 of the negotiated session timeout), run
// in-process so that its ZooKeeper connection can go through a proxy.
type inProcMaster struct {
	m    *master.Master
	conn *zkutil.Conn
}

func startInProcMaster(t *testing.T, connect, dir string, session time.Duration) *inProcMaster {
	t.Helper()
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	log := logrus.NewEntry(lg)
	conn, err := zkutil.Connect(ctxT(t, 20*time.Second), zkutil.Config{Connect: connect, SessionTimeout: session})
	require.NoError(t, err)
	el, store, err := zkrecovery.New(conn, dir, log)
	require.NoError(t, err)
	cfg := master.DefaultConfig()
	cfg.Host, cfg.Port, cfg.WebUIPort, cfg.RESTEnabled = "127.0.0.1", 0, -1, false
	cfg.WorkerTimeout = time.Minute
	cfg.RPCTimeout = 2 * time.Second
	cfg.ZKEnabled = true
	cfg.SelfFenceAfter = conn.NegotiatedTimeout() * 2 / 3
	m, err := master.New(cfg, el, store, log)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("master %s did not stop", m.URL())
		}
		conn.Close()
	})
	return &inProcMaster{m: m, conn: conn}
}

// sample is one observation of a master's reported state: the view was
// taken somewhere between before and after.
type sample struct {
	before, after time.Time
	status        protocol.MasterState
	epoch         int64
}

// Split brain: the leader loses ZooKeeper (its connection goes silent) but
// still reaches its worker. Invariant 4: it stops reporting ALIVE before the
// standby reports ALIVE (self-fence below the session timeout); invariant 3:
// it pushes nothing with its epoch after the successor took office; and
// after the partition heals there is exactly one leader (invariant 7).
func TestHAFaultLeaderCutFromZooKeeper(t *testing.T) {
	requireZK(t)
	zke := zktest.Start(t, 1)
	proxy := zktest.NewProxy(t, zke.Connect())
	const session = 2 * time.Second
	dir := "/sparkd-cut-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	a := startInProcMaster(t, proxy.Addr(), dir, session)
	haWait(t, 20*time.Second, "the first master never became ALIVE", func() bool {
		return a.m.View().Status == protocol.MasterAlive
	})
	b := startInProcMaster(t, zke.Connect(), dir, session)
	haWait(t, 20*time.Second, "the standby never saw the leader", func() bool {
		v := b.m.View()
		return v.Status == protocol.MasterStandby && v.LeaderURL == a.m.URL()
	})
	epochA := a.m.View().Epoch

	// A worker and an application attached to the leader, recording pushes.
	w := newRecApp(t)
	port, _ := strconv.Atoi(w.srv.URL[strings.LastIndex(w.srv.URL, ":")+1:])
	cli := protocol.NewClient(5*time.Second, "")
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, a.m.Addr(), protocol.PathRegisterWorker, protocol.RegisterWorker{
		ID: "worker-20261120000000-127.0.0.1-" + strconv.Itoa(port), Host: "127.0.0.1", Port: port, URL: w.srv.URL,
		WebUIURL: "http://127.0.0.1:1", Cores: 4, MemoryMB: 4096}, nil))
	app := newRecApp(t)
	var ra protocol.RegisteredApplication
	require.NoError(t, cli.Call(ctxT(t, 10*time.Second), http.MethodPost, a.m.Addr(), protocol.PathRegisterApp,
		protocol.RegisterApplication{App: protocol.AppDescription{Name: "cut", Command: []string{"/bin/true"}, ExecutorCores: 1,
			ExecutorMemMB: 64}, ClientURL: app.srv.URL}, &ra))
	app.mu.Lock()
	app.appID = ra.AppID
	app.mu.Unlock()

	var mu sync.Mutex
	obs := map[string][]sample{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for name, im := range map[string]*inProcMaster{"a": a, "b": b} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := time.Now()
				v := im.m.View()
				s := sample{before: before, after: time.Now(), status: v.Status, epoch: v.Epoch}
				mu.Lock()
				obs[name] = append(obs[name], s)
				mu.Unlock()
				time.Sleep(time.Millisecond) // pacing, not synchronisation
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	cut := time.Now()
	proxy.Cut()
	haWait(t, 30*time.Second, "the standby never took over", func() bool { return b.m.View().Status == protocol.MasterAlive })
	bAlive := time.Now()
	t.Logf("standby ALIVE %s after the cut (session timeout %s)", bAlive.Sub(cut).Round(time.Millisecond), session)
	proxy.Restore()
	haWait(t, 30*time.Second, "the cut-off master never settled as STANDBY behind the new leader", func() bool {
		v := a.m.View()
		return v.Status == protocol.MasterStandby && v.LeaderURL == b.m.URL()
	})
	close(stop)
	wg.Wait()

	// Invariant 4 (observable): every ALIVE (or recovering) view of the
	// old leader ended before the first ALIVE view of the new one began.
	var lastA, firstB time.Time
	for _, s := range obs["a"] {
		if s.status != protocol.MasterStandby && s.epoch == epochA && s.after.After(lastA) {
			lastA = s.after
		}
	}
	for _, s := range obs["b"] {
		if s.status == protocol.MasterAlive && (firstB.IsZero() || s.before.Before(firstB)) {
			firstB = s.before
		}
	}
	require.False(t, firstB.IsZero())
	t.Logf("old leader last seen leading %s after the cut; new leader first ALIVE %s after the cut",
		lastA.Sub(cut).Round(time.Millisecond), firstB.Sub(cut).Round(time.Millisecond))
	assert.True(t, lastA.Before(firstB), "two masters reported leading at once: old until +%s, new from +%s",
		lastA.Sub(cut), firstB.Sub(cut))
	assert.Less(t, lastA.Sub(cut), session, "the old leader did not fence itself before its session could expire")

	// Invariant 3: nothing pushed with the old epoch once the new leader led.
	for _, r := range []*recApp{w, app} {
		for _, p := range r.pushesSince(firstB) {
			assert.NotEqual(t, epochA, p.stamp.Epoch, "old leader pushed %s after the new leader took office", p.path)
		}
	}
	// Invariant 7: exactly one leader after the heal.
	va, vb := a.m.View(), b.m.View()
	assert.Equal(t, protocol.MasterStandby, va.Status)
	assert.Equal(t, protocol.MasterAlive, vb.Status)
	assert.Greater(t, vb.Epoch, epochA)
}

// Restarting ZooKeeper servers one at a time (the quorum leader first) loses
// connections but no quorum for long: afterwards there is exactly one
// leader, epochs only grew, and every live worker is registered with the
// leader (invariants 3 and 7). Whether leadership moved is logged: a
// connection loss longer than the self-fence bound ends a term by design.
func TestHAFaultZooKeeperRollingRestart(t *testing.T) {
	requireZK(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 2, ZooKeeper: 3, SessionTimeout: 3 * time.Second,
		WorkerTimeout: 8 * time.Second})
	before, li, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)

	order := []int{c.ZK.Leader()}
	for i := range c.ZK.Servers() {
		if i != order[0] {
			order = append(order, i)
		}
	}
	for _, i := range order {
		c.ZK.Stop(i)
		c.ZK.Start(i)
		require.NoError(t, c.ZK.WaitHealthy(30*time.Second), "ZooKeeper did not heal after restarting server %d", i)
	}

	var after int
	var nli protocol.LeaderInfo
	haWait(t, 40*time.Second, "no single leader with every worker registered after the restarts", func() bool {
		alive := 0
		for i := range c.Masters {
			if got, err := c.LeaderInfo(i); err == nil && got.State == protocol.MasterAlive {
				alive++
				after, nli = i, got
			}
		}
		if alive != 1 {
			return false
		}
		st, err := c.State(after)
		return err == nil && st.AliveWorkers == 2
	})
	assert.GreaterOrEqual(t, nli.Epoch, li.Epoch, "epochs only grow")
	t.Logf("leader before: %s (epoch %d); after the rolling restart: %s (epoch %d)",
		c.Masters[before].Name, li.Epoch, c.Masters[after].Name, nli.Epoch)
	for i, m := range c.Masters {
		if i == after {
			continue
		}
		got, err := c.LeaderInfo(i)
		require.NoError(t, err)
		assert.Equal(t, protocol.MasterStandby, got.State)
		assert.Equal(t, c.Masters[after].URL(), got.LeaderURL, "%s points at the wrong leader", m.Name)
	}
}
