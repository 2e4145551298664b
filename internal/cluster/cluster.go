// Package cluster starts whole sparkd clusters for end-to-end tests: a real
// ZooKeeper ensemble (internal/zktest), N masters in ZOOKEEPER recovery mode
// and M workers, each a separate bin/sparkd process, configured the way an
// operator would: a generated conf dir whose spark-env.sh sets
// SPARK_DAEMON_JAVA_OPTS with spark.deploy.recoveryMode, zookeeper.url,
// zookeeper.dir and a short session timeout, and workers given the full
// master URL list.
//
// Every process gets free loopback ports, its own log file under t.TempDir()
// (the tails are written to the test log when the test fails), its own
// process group and a parent-death signal; everything is stopped in
// t.Cleanup, also when the test fails. Every wait has a deadline.
//
// Methods that return no error call t.Fatal and must be called from the test
// goroutine.
package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
)

// Options shape a cluster. Zero values take the defaults noted.
type Options struct {
	Masters int // default 2
	Workers int // default 3
	// ZooKeeper servers (1, 3 or 5; default 3). Ignored when Ensemble is set.
	ZooKeeper int
	Ensemble  *zktest.Ensemble
	// SessionTimeout is spark.deploy.zookeeper.sessionTimeout (default 2s).
	SessionTimeout time.Duration
	// WorkerTimeout is spark.worker.timeout (default 10s; heartbeats every 1/4).
	WorkerTimeout time.Duration
	WorkerCores   int    // default 2
	WorkerMemory  string // default "1g"
	// Props are extra spark-defaults.conf lines (key -> value).
	Props map[string]string
	// Env is added to every process's environment.
	Env []string
	// NoWait skips waiting for a leader and all workers in Start.
	NoWait bool
	// StartTimeout bounds Start's waits (default 60s).
	StartTimeout time.Duration
	// MasterZKConnect, when set, gives master i its own
	// spark.deploy.zookeeper.url (a -D in its SPARK_MASTER_OPTS, which
	// overrides spark-env.sh's SPARK_DAEMON_JAVA_OPTS), e.g. the addresses of
	// zktest proxies that can cut that one master from ZooKeeper while
	// workers still reach it. An empty answer keeps the shared URL.
	MasterZKConnect func(i int) string
}

func (o *Options) fill() {
	if o.Masters <= 0 {
		o.Masters = 2
	}
	if o.Workers < 0 {
		o.Workers = 0
	} else if o.Workers == 0 {
		o.Workers = 3
	}
	if o.ZooKeeper <= 0 {
		o.ZooKeeper = 3
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 2 * time.Second
	}
	if o.WorkerTimeout <= 0 {
		o.WorkerTimeout = 10 * time.Second
	}
	if o.WorkerCores <= 0 {
		o.WorkerCores = 2
	}
	if o.WorkerMemory == "" {
		o.WorkerMemory = "1g"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
}

// Cluster is a running set of sparkd processes plus their ZooKeeper.
type Cluster struct {
	t       testing.TB
	Opts    Options
	Bin     string
	Dir     string // root of everything on disk
	ConfDir string // SPARK_CONF_DIR: spark-env.sh, spark-defaults.conf
	ZKDir   string // spark.deploy.zookeeper.dir
	ZK      *zktest.Ensemble
	Masters []*Proc
	Workers []*Proc
	rpc     *protocol.Client

	mu      sync.Mutex
	pidDirs []string
}

// ReadPids returns the pids named by the files in dir (others are ignored).
func ReadPids(dir string) []int {
	ents, _ := os.ReadDir(dir)
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// RequireDaemons skips t when bin/sparkd's master or worker subcommand is
// still a placeholder that only prints its usage.
func RequireDaemons(t testing.TB) {
	t.Helper()
	bin := testbin.Path(t)
	for _, role := range []string{"master", "worker"} {
		out, _ := exec.Command(bin, role, "--print-config").CombinedOutput()
		if strings.Contains(string(out), "Usage: sparkd "+role+" [flags]") && !strings.Contains(string(out), "=") {
			t.Skipf("`sparkd %s` is not wired into cmd/sparkd yet", role)
		}
	}
}

// Proc is one sparkd daemon process. Its ports stay the same across restarts.
type Proc struct {
	Name     string // "master-0", "worker-2"
	Role     string // "master" or "worker"
	Port     int    // RPC / command port
	UIPort   int
	RESTPort int // masters only
	LogPath  string
	args     []string
	env      []string
	t        testing.TB

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Start builds (or finds) bin/sparkd, starts ZooKeeper unless given, writes
// the conf dir, starts the masters and workers, and (unless NoWait) waits
// until one master is ALIVE and every worker is registered with it.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts.fill()
	c := &Cluster{t: t, Opts: opts, Bin: testbin.Path(t), Dir: t.TempDir(), rpc: protocol.NewClient(2*time.Second, "")}
	c.ZK = opts.Ensemble
	if c.ZK == nil {
		c.ZK = zktest.Start(t, opts.ZooKeeper)
	}
	c.ZKDir = "/sparkd-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.ConfDir = filepath.Join(c.Dir, "conf")
	if err := c.writeConf(c.ZK.Connect()); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(c.teardown)
	ports, err := FreePorts(3*opts.Masters + 2*opts.Workers)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	for i := 0; i < opts.Masters; i++ {
		p := &Proc{Name: fmt.Sprintf("master-%d", i), Role: "master", Port: ports[0], UIPort: ports[1], RESTPort: ports[2], t: t}
		ports = ports[3:]
		p.args = []string{"master", "--host", "127.0.0.1", "--port", strconv.Itoa(p.Port), "--webui-port", strconv.Itoa(p.UIPort)}
		masterOpts := "-Dspark.master.rest.port=" + strconv.Itoa(p.RESTPort)
		if opts.MasterZKConnect != nil {
			if zk := opts.MasterZKConnect(i); zk != "" {
				masterOpts += " -Dspark.deploy.zookeeper.url=" + zk
			}
		}
		p.env = append(c.baseEnv(), "SPARK_MASTER_OPTS="+masterOpts)
		p.LogPath = filepath.Join(c.Dir, "logs", p.Name+".log")
		c.Masters = append(c.Masters, p)
	}
	for i := 0; i < opts.Workers; i++ {
		p := &Proc{Name: fmt.Sprintf("worker-%d", i), Role: "worker", Port: ports[0], UIPort: ports[1], t: t}
		ports = ports[2:]
		work := filepath.Join(c.Dir, "work", p.Name)
		p.args = []string{"worker", "--host", "127.0.0.1", "--port", strconv.Itoa(p.Port), "--webui-port", strconv.Itoa(p.UIPort),
			"--cores", strconv.Itoa(opts.WorkerCores), "--memory", opts.WorkerMemory, "--work-dir", work, c.MasterURLs()}
		p.env = c.baseEnv()
		p.LogPath = filepath.Join(c.Dir, "logs", p.Name+".log")
		c.Workers = append(c.Workers, p)
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "logs"), 0o755); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	for _, p := range c.Masters {
		p.start(c.Bin)
	}
	if !opts.NoWait {
		if _, _, err := c.WaitLeader(opts.StartTimeout); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	for _, p := range c.Workers {
		p.start(c.Bin)
	}
	if !opts.NoWait {
		if err := c.WaitWorkers(opts.Workers, opts.StartTimeout); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	return c
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1 (bound, then
// released: a port may in theory be taken before it is used).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// writeConf writes spark-env.sh and spark-defaults.conf the way an operator
// of a Spark standalone HA cluster would.
func (c *Cluster) writeConf(zkConnect string) error {
	if err := os.MkdirAll(c.ConfDir, 0o755); err != nil {
		return err
	}
	env := fmt.Sprintf(`# generated by internal/cluster
SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=%s -Dspark.deploy.zookeeper.dir=%s -Dspark.deploy.zookeeper.sessionTimeout=%d"
export SPARK_DAEMON_JAVA_OPTS
`, zkConnect, c.ZKDir, c.Opts.SessionTimeout.Milliseconds())
	if err := os.WriteFile(filepath.Join(c.ConfDir, "spark-env.sh"), []byte(env), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# generated by internal/cluster\n")
	fmt.Fprintf(&b, "spark.worker.timeout %ds\n", int(c.Opts.WorkerTimeout.Seconds()))
	b.WriteString("spark.master.rest.enabled true\n")
	for k, v := range c.Opts.Props {
		fmt.Fprintf(&b, "%s %s\n", k, v)
	}
	return os.WriteFile(filepath.Join(c.ConfDir, "spark-defaults.conf"), []byte(b.String()), 0o644)
}

// baseEnv is the environment of every process: the test's, without SPARK_*
// variables, plus SPARK_HOME and SPARK_CONF_DIR.
func (c *Cluster) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SPARK_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "SPARK_HOME="+c.Dir, "SPARK_CONF_DIR="+c.ConfDir, "SPARK_LOG_DIR="+filepath.Join(c.Dir, "logs"))
	return append(env, c.Opts.Env...)
}

// Env is the environment for running sparkd commands against the cluster
// (SPARK_MASTER set to the full list).
func (c *Cluster) Env() []string {
	return append(c.baseEnv(), "SPARK_MASTER="+c.MasterURLs())
}

// MasterURLs is the full master list, spark://127.0.0.1:p1,127.0.0.1:p2.
func (c *Cluster) MasterURLs() string {
	var hs []string
	for _, m := range c.Masters {
		hs = append(hs, m.Addr())
	}
	return "spark://" + strings.Join(hs, ",")
}

// Command returns an *exec.Cmd running bin/sparkd with args in the
// cluster's environment. The caller runs it; ctx bounds it.
func (c *Cluster) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = c.Env()
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// Addr is the process's host:port (RPC for a master, command port for a worker).
func (p *Proc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// URL is spark://127.0.0.1:port.
func (p *Proc) URL() string { return "spark://" + p.Addr() }

func (p *Proc) start(bin string) {
	p.t.Helper()
	if err := p.Start(bin); err != nil {
		p.t.Fatalf("cluster: %v", err)
	}
}

// Start starts the process (again). Output is appended to LogPath.
func (p *Proc) Start(bin string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.exited) {
		return fmt.Errorf("%s is already running (pid %d)", p.Name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(f, "==== %s start #%d at %s: sparkd %s\n", p.Name, p.starts, time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Pid is the process id (0 when not running).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return 0
	}
	return p.cmd.Process.Pid
}

// Starts is how many times the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// LogsDir is the directory holding every process's log file.
func (c *Cluster) LogsDir() string { return filepath.Join(c.Dir, "logs") }

// Running reports whether the process is alive.
func (p *Proc) Running() bool { return p.Pid() != 0 }

// Signal sends sig to the process itself (not its children).
func (p *Proc) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return syscall.Kill(pid, sig)
}

// WaitExit waits up to timeout for the process to exit.
func (p *Proc) WaitExit(timeout time.Duration) error {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %s", p.Name, timeout)
	}
}

// ExitCode is the exit code of the last run (-1 if running or killed by a signal).
func (p *Proc) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !isClosed(p.exited) {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL to the daemon (a crash; its children are left alone)
// and waits for it to die.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("cluster: kill %s: %v", p.Name, err)
	}
	if err := p.WaitExit(10 * time.Second); err != nil {
		p.t.Fatalf("cluster: %v", err)
	}
}

// Term sends SIGTERM (a graceful stop) and waits up to 30s for the exit.
func (p *Proc) Term() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("cluster: term %s: %v", p.Name, err)
	}
	if err := p.WaitExit(30 * time.Second); err != nil {
		p.t.Fatalf("cluster: %v", err)
	}
}

// Stop freezes the process (SIGSTOP): it holds its sockets and ZooKeeper
// session but answers nothing.
func (p *Proc) Stop() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatalf("cluster: stop %s: %v", p.Name, err)
	}
}

// Cont resumes a stopped process (SIGCONT).
func (p *Proc) Cont() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGCONT); err != nil {
		p.t.Fatalf("cluster: cont %s: %v", p.Name, err)
	}
}

// Restart stops the process if it runs (SIGTERM, SIGKILL after 30s) and
// starts it again with the same ports and configuration.
func (p *Proc) Restart(bin string) {
	p.t.Helper()
	if p.Running() {
		_ = p.Signal(syscall.SIGCONT)
		_ = p.Signal(syscall.SIGTERM)
		if err := p.WaitExit(30 * time.Second); err != nil {
			_ = p.Signal(syscall.SIGKILL)
			_ = p.WaitExit(10 * time.Second)
		}
	}
	p.start(bin)
}

// RestartMaster restarts master i; RestartWorker restarts worker i.
func (c *Cluster) RestartMaster(i int) { c.t.Helper(); c.Masters[i].Restart(c.Bin) }

// RestartWorker restarts worker i with the same ports.
func (c *Cluster) RestartWorker(i int) { c.t.Helper(); c.Workers[i].Restart(c.Bin) }

// killGroup kills the process group (the daemon and anything it spawned).
func (p *Proc) killGroup() {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// LeaderInfo asks master i for PathLeader.
func (c *Cluster) LeaderInfo(i int) (protocol.LeaderInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var li protocol.LeaderInfo
	err := c.rpc.Call(ctx, http.MethodGet, c.Masters[i].Addr(), protocol.PathLeader, nil, &li)
	return li, err
}

// ErrNoLeader is returned by WaitLeader when no master became ALIVE in time.
var ErrNoLeader = errors.New("cluster: no master is ALIVE")

// Leader returns the index and PathLeader answer of the ALIVE master with
// the highest epoch, polling each once.
func (c *Cluster) Leader() (int, protocol.LeaderInfo, error) {
	best := -1
	var info protocol.LeaderInfo
	var states []string
	for i, m := range c.Masters {
		if !m.Running() {
			states = append(states, m.Name+"=down")
			continue
		}
		li, err := c.LeaderInfo(i)
		if err != nil {
			states = append(states, m.Name+"=unreachable")
			continue
		}
		states = append(states, fmt.Sprintf("%s=%s(epoch %d)", m.Name, li.State, li.Epoch))
		if li.State == protocol.MasterAlive && (best < 0 || li.Epoch > info.Epoch) {
			best, info = i, li
		}
	}
	if best < 0 {
		return -1, info, fmt.Errorf("%w: %s", ErrNoLeader, strings.Join(states, ", "))
	}
	return best, info, nil
}

// WaitLeader polls every master until one reports ALIVE or timeout passes.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, protocol.LeaderInfo, error) {
	deadline := time.Now().Add(timeout)
	for {
		i, li, err := c.Leader()
		if err == nil {
			return i, li, nil
		}
		if time.Now().After(deadline) {
			return -1, li, fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// WaitNewLeader waits for an ALIVE master other than old with an epoch
// above oldEpoch.
func (c *Cluster) WaitNewLeader(old int, oldEpoch int64, timeout time.Duration) (int, protocol.LeaderInfo, error) {
	deadline := time.Now().Add(timeout)
	for {
		i, li, err := c.Leader()
		if err == nil && i != old && li.Epoch > oldEpoch {
			return i, li, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("leader is still %s at epoch %d", c.Masters[i].Name, li.Epoch)
			}
			return -1, li, fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// State reads the leader's /json document (PathMasterStateJSON on its RPC port).
func (c *Cluster) State(i int) (MasterState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st MasterState
	err := c.rpc.Call(ctx, http.MethodGet, c.Masters[i].Addr(), protocol.PathMasterStateJSON, nil, &st)
	return st, err
}

// MasterState is the part of a master's /json the harness reads.
type MasterState struct {
	URL          string        `json:"url"`
	Status       string        `json:"status"`
	Recovering   bool          `json:"recovering"` // ALIVE, some stored peers not re-attached yet
	AliveWorkers int           `json:"aliveworkers"`
	Workers      []WorkerState `json:"workers"`
	ActiveApps   []AppState    `json:"activeapps"`
	Completed    []AppState    `json:"completedapps"`
	Drivers      []DriverState `json:"activedrivers"`
	Done         []DriverState `json:"completeddrivers"`
}

// WorkerState is one worker in /json.
type WorkerState struct {
	ID        string `json:"id"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	State     string `json:"state"`
	Cores     int    `json:"cores"`
	CoresUsed int    `json:"coresused"`
}

// AppState is one application in /json.
type AppState struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// DriverState is one driver in /json.
type DriverState struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Worker string `json:"worker"`
}

// WaitWorkers waits until the leader reports at least n ALIVE workers.
func (c *Cluster) WaitWorkers(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if i, _, err := c.Leader(); err == nil {
			st, err := c.State(i)
			if err == nil && st.AliveWorkers >= n {
				return nil
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("%d alive workers", st.AliveWorkers)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: %d workers not ALIVE after %s: %s", n, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TrackPids makes teardown SIGKILL every process whose pid names a file in
// dir (executors and drivers a test launches write their pid there: a
// worker starts them in their own process groups, and a SIGKILLed worker
// leaves them behind).
func (c *Cluster) TrackPids(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pidDirs = append(c.pidDirs, dir)
}

// teardown stops the workers gracefully (so they stop their executors),
// kills every process group and tracked pid and, when the test failed,
// writes the tail of every log to the test log.
func (c *Cluster) teardown() {
	var wg sync.WaitGroup
	for _, p := range c.Workers {
		if p.Running() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = p.Signal(syscall.SIGCONT)
				_ = p.Signal(syscall.SIGTERM)
				_ = p.WaitExit(5 * time.Second)
			}()
		}
	}
	wg.Wait()
	for _, p := range append(append([]*Proc{}, c.Workers...), c.Masters...) {
		p.killGroup()
	}
	c.mu.Lock()
	dirs := c.pidDirs
	c.mu.Unlock()
	for _, d := range dirs {
		for _, pid := range ReadPids(d) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range append(append([]*Proc{}, c.Workers...), c.Masters...) {
		_ = p.WaitExit(10 * time.Second)
	}
	if c.t.Failed() {
		c.DumpLogs(80)
	}
}

// DumpLogs writes the last n lines of every process log to the test log.
func (c *Cluster) DumpLogs(n int) {
	for _, p := range append(append([]*Proc{}, c.Masters...), c.Workers...) {
		c.t.Logf("---- %s (%s) last %d lines of %s ----\n%s", p.Name, p.Addr(), n, p.LogPath, Tail(p.LogPath, n))
	}
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// LogCount is how many times s occurs in p's log (which a restart appends
// to).
func (p *Proc) LogCount(s string) int {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), s)
}

// LogContains reports whether p's log has a line containing s.
func (p *Proc) LogContains(s string) bool {
	data, err := os.ReadFile(p.LogPath)
	return err == nil && strings.Contains(string(data), s)
}

// Failover is what Cluster.Failover measured, each duration from the moment
// the leader was signalled.
type Failover struct {
	Old, New   int   // master indexes
	OldEpoch   int64 //
	Epoch      int64 // the new leader's epoch
	Alive      time.Duration
	Workers    time.Duration            // until every running worker is ALIVE on the new leader
	WorkerSeen map[string]time.Duration // worker id -> when it was first seen ALIVE on the new leader
	App        time.Duration            // until App is RUNNING on the new leader (0 if no app named)
}

// Failover signals the leader (SIGKILL or SIGTERM) and measures how long
// until another master is ALIVE with a higher epoch, until every running
// worker is ALIVE on it, and until the application named app is RUNNING on
// it (skipped when app is ""). It polls every few milliseconds and gives up
// after timeout. The old leader is left stopped.
func (c *Cluster) Failover(sig syscall.Signal, app string, timeout time.Duration) (Failover, error) {
	old, info, err := c.Leader()
	if err != nil {
		return Failover{}, err
	}
	f := Failover{Old: old, New: -1, OldEpoch: info.Epoch, WorkerSeen: map[string]time.Duration{}}
	running := 0
	for _, w := range c.Workers {
		if w.Running() {
			running++
		}
	}
	start := time.Now()
	if err := c.Masters[old].Signal(sig); err != nil {
		return f, err
	}
	deadline := start.Add(timeout)
	for {
		if f.New < 0 {
			for i := range c.Masters {
				if i == old || !c.Masters[i].Running() {
					continue
				}
				if li, err := c.LeaderInfo(i); err == nil && li.State == protocol.MasterAlive && li.Epoch > info.Epoch {
					f.New, f.Epoch, f.Alive = i, li.Epoch, time.Since(start)
				}
			}
		}
		if f.New >= 0 {
			if st, err := c.State(f.New); err == nil {
				// Observed now, and never before the leader was seen ALIVE.
				now := max(time.Since(start), f.Alive)
				alive := 0
				for _, w := range st.Workers {
					if w.State == string(protocol.WorkerAlive) {
						alive++
						if _, ok := f.WorkerSeen[w.ID]; !ok {
							f.WorkerSeen[w.ID] = now
						}
					}
				}
				if f.Workers == 0 && alive >= running && st.Status == string(protocol.MasterAlive) {
					f.Workers = now
				}
				if f.App == 0 && app != "" {
					for _, a := range st.ActiveApps {
						if a.Name == app && a.State == string(protocol.AppRunning) && st.Status == string(protocol.MasterAlive) {
							f.App = now
						}
					}
				}
			}
			if f.Workers > 0 && (app == "" || f.App > 0) {
				break
			}
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("cluster: failover by %s not complete after %s: new leader %d after %s, workers %s, app %s",
				sig, timeout, f.New, f.Alive, f.Workers, f.App)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sig == syscall.SIGKILL {
		_ = c.Masters[old].WaitExit(10 * time.Second)
	} else if err := c.Masters[old].WaitExit(30 * time.Second); err != nil {
		return f, err
	}
	return f, nil
}
