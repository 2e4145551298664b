package spark

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
	"github.com/sparkd/sparkd/task/appui"
	"github.com/sparkd/sparkd/task/executor"
)

// Config configures a Context.
type Config struct {
	// Master is the cluster: spark://host:port[,host:port...] (several
	// masters with ZooKeeper HA), or, as in Spark, local[N] (local[*]:
	// one per CPU; local: 1) to run the tasks in this process, N at a time,
	// with the same retries (for development and tests; nothing is
	// shipped). Default: $SPARK_MASTER.
	Master string
	// AppName names the application on the master (default: the
	// program's file name).
	AppName string
	// Conf holds Spark properties (see Keys), e.g.
	// "spark.executor.cores": "1", "spark.task.maxFailures": "4",
	// "spark.speculation": "true", "spark.ui.port": "4040". An unknown key
	// or a malformed value is an error.
	Conf map[string]string
	// Files are shipped to every executor's working directory (Spark's
	// --files), where task functions open them by base name.
	Files []string
	// Log receives one line per notable event (executors added and lost,
	// failed attempts, speculation); default os.Stderr. io.Discard silences it.
	Log io.Writer
	// Logger gets debug details (default: logrus's standard logger).
	Logger *logrus.Entry
}

// Context is a driver's connection to a sparkd cluster: its settings, its
// application UI (which also serves the program and its files to the
// executors) and its jobs. Its methods may be called from several
// goroutines; jobs run one at a time.
type Context struct {
	cfg     Config
	set     settings
	masters []string
	log     *logrus.Entry
	name    string
	local   int // local[N]: N; 0 = a cluster

	// principal and appSecret: the application identity this Context's
	// applications register as, and the credential its executors get.
	principal, appSecret string

	ln      net.Listener
	srv     *http.Server
	baseURL string               // the UI's and file server's URL, as executors reach it
	ui      *appui.UI            // jobs, executors, /api/v1, /metrics
	program fileEntry            // this executable
	files   []fileEntry          // Config.Files
	served  map[string]fileEntry // URL name -> file
	listen  string               // host the task servers bind
	adv     string               // host executors use to reach them

	jobMu  sync.Mutex // one job at a time
	done   bool       // Close was called (under jobMu)
	lineMu sync.Mutex
	closed sync.Once
}

type fileEntry struct {
	name, path, sha string
	f               *os.File // opened when checked: what is served is what was hashed, even if the path is replaced or removed
	size            int64
	mod             time.Time
}

// NewContext validates cfg, reads this program and Config.Files, and
// starts the application UI on spark.ui.port (4040, or the next free port).
//
// In an executor (IsExecutor), NewContext does not return: it serves the
// registered functions to the driver that started the executor, and exits
// the process when the driver is done with it.
func NewContext(cfg Config) (*Context, error) {
	ServeIfExecutor()
	if cfg.Master == "" {
		cfg.Master = os.Getenv("SPARK_MASTER")
	}
	if cfg.Master == "" {
		return nil, errors.New("spark: no master: set Config.Master or SPARK_MASTER (spark://host:7077)")
	}
	local, err := parseLocal(cfg.Master)
	if err != nil {
		return nil, err
	}
	var masters []string
	if local == 0 {
		if masters, err = parseMasters(cfg.Master); err != nil {
			return nil, err
		}
	}
	set, err := parseSettings(cfg.Conf)
	if err != nil {
		return nil, err
	}
	if len(registered()) == 0 {
		return nil, errors.New("spark: no task function is registered (call spark.Register before NewContext)")
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("spark: cannot find this program to ship it to the executors: %w", err)
	}
	name := cfg.AppName
	if name == "" {
		name = filepath.Base(exe)
	}
	c := &Context{cfg: cfg, set: set, masters: masters, local: local, log: cfg.Logger.WithField("component", "spark"), name: name,
		served: map[string]fileEntry{}}
	c.program, err = entry(exe, "program")
	if err != nil {
		return nil, err
	}
	c.served[c.program.name] = c.program
	for _, f := range cfg.Files {
		e, err := entry(f, "file")
		if err != nil {
			c.closeFiles()
			return nil, err
		}
		if _, dup := c.served[e.name]; dup {
			c.closeFiles()
			e.f.Close()
			return nil, fmt.Errorf("spark: Files: two files named %s", e.name)
		}
		c.served[e.name] = e
		c.files = append(c.files, e)
	}
	// Where the driver listens: spark.driver.host; loopback when every
	// master is on loopback; else all interfaces, advertised by host name.
	switch {
	case set.driverHost != "":
		c.listen, c.adv = set.driverHost, set.driverHost
	case local > 0 || allLoopback(masters):
		c.listen, c.adv = "127.0.0.1", "127.0.0.1"
	default:
		c.listen = ""
		if h, err := os.Hostname(); err == nil && h != "" {
			c.adv = h
		} else {
			c.adv = "127.0.0.1"
		}
	}
	c.ln, err = protocol.Listen(c.listen, set.uiPort, set.portRetries, "SparkUI", c.log)
	if err != nil {
		// Every port tried is taken: the UI (and file server, which the
		// executors need) takes any free port rather than failing the job.
		c.line(fmt.Sprintf("%v; the application UI takes any free port instead", err))
		c.ln, err = protocol.Listen(c.listen, 0, 0, "SparkUI", c.log)
	}
	if err != nil {
		c.closeFiles()
		return nil, fmt.Errorf("spark: %w", err)
	}
	c.baseURL = "http://" + net.JoinHostPort(c.adv, strconv.Itoa(c.ln.Addr().(*net.TCPAddr).Port))
	c.ui = appui.New(appui.Config{Name: name, Now: time.Now})
	mux := http.NewServeMux()
	var files http.Handler = http.HandlerFunc(c.serveFile)
	// The executors get the application credential (never the cluster
	// secret): the program's file server and every job's task server verify
	// that. One principal serves all of this Context's applications.
	c.principal = protocol.NewPrincipal("app-")
	c.appSecret = client.AppSecret(set.secret, c.principal)
	if c.appSecret != "" {
		files = protocol.Authenticate(c.appSecret, files)
	}
	mux.Handle("/files/", files)
	mux.Handle("/", c.ui.Handler())
	c.srv = protocol.NewServer(mux)
	// Shipping a program takes longer than the usual write bound.
	c.srv.WriteTimeout = executor.DefaultFetchTimeout
	go func() {
		if err := c.srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.WithError(err).Error("application UI stopped")
		}
	}()
	c.line(fmt.Sprintf("Bound SparkUI to %s, and started at %s", c.ln.Addr(), c.baseURL))
	return c, nil
}

// entry opens and hashes a file to ship.
func entry(path, what string) (fileEntry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileEntry{}, fmt.Errorf("spark: %s %s: %w", what, path, err)
	}
	name := filepath.Base(abs)
	if strings.ContainsAny(name, ":") {
		return fileEntry{}, fmt.Errorf("spark: %s %s: a shipped file's name may not hold ':'", what, path)
	}
	f, err := os.Open(abs)
	if err != nil {
		return fileEntry{}, fmt.Errorf("spark: %s: %w", what, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	var sum string
	if err == nil {
		h := sha256.New()
		if _, err = io.Copy(h, f); err == nil {
			sum = hex.EncodeToString(h.Sum(nil))
		}
	}
	if err != nil {
		f.Close()
		return fileEntry{}, fmt.Errorf("spark: %s %s: %w", what, path, err)
	}
	return fileEntry{name: name, path: abs, sha: sum, f: f, size: st.Size(), mod: st.ModTime()}, nil
}

func (c *Context) closeFiles() {
	for _, e := range c.served {
		e.f.Close()
	}
}

// serveFile is the driver's file server: GET /files/NAME serves the file
// as it was opened and hashed.
func (c *Context) serveFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/files/")
	e, ok := c.served[name]
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, fmt.Sprintf("no file %q is shipped by this driver", name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, e.mod, io.NewSectionReader(e.f, 0, e.size))
}

// UIURL is the application UI's URL (Spark's "Application Detail UI").
func (c *Context) UIURL() string { return c.baseURL }

func (c *Context) line(s string) {
	c.lineMu.Lock()
	defer c.lineMu.Unlock()
	fmt.Fprintf(c.cfg.Log, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), s)
}

func (c *Context) command() []string {
	spec := func(e fileEntry) string {
		return executor.FetchSpec{Name: e.name, SHA256: e.sha, URL: c.baseURL + "/files/" + e.name}.String()
	}
	cmd := []string{"{{SPARKD}}", "executor", "--fetch", spec(c.program), "--hostname", "{{HOSTNAME}}",
		"--network-timeout", strconv.FormatInt(c.set.networkTimeout.Milliseconds(), 10) + "ms"}
	for _, f := range c.files {
		cmd = append(cmd, "--file", spec(f))
	}
	return cmd
}

// Run runs one task per input, each calling the function registered as
// fn with its input, on the cluster's executors, and returns their
// results in the order of the inputs. It fails with a *TaskError when a
// task failed spark.task.maxFailures times, and with ctx's error when ctx
// ends first (the application is then killed).
func (c *Context) Run(ctx context.Context, fn string, inputs [][]byte) ([][]byte, error) {
	if _, ok := lookup(fn); !ok {
		return nil, fmt.Errorf("spark: Run: no task function %q is registered (registered: %s)", fn, strings.Join(registered(), ", "))
	}
	if len(inputs) == 0 {
		return nil, nil
	}
	calls := make([]task.Call, len(inputs))
	for i, in := range inputs {
		if len(in) > task.MaxCallInput {
			return nil, fmt.Errorf("spark: Run %s: input %d is %d bytes, more than the %d a task may take; split it", fn, i, len(in), task.MaxCallInput)
		}
		calls[i] = task.Call{Func: fn, Input: in}
	}
	c.jobMu.Lock()
	defer c.jobMu.Unlock()
	if c.done {
		return nil, errors.New("spark: Run on a closed Context")
	}
	if c.local > 0 {
		return c.runLocal(ctx, fn, calls)
	}
	var cl *client.Client
	job := c.ui.StartJob(fn, len(calls))
	d, err := task.NewDriver(task.DriverConfig{
		Scheduler: c.set.sched, Calls: calls, ListenAddr: net.JoinHostPort(c.listen, "0"), AdvertiseHost: c.adv,
		Secret: c.appSecret, HeartbeatInterval: c.set.heartbeat, NetworkTimeout: c.set.networkTimeout,
		Logger: c.log, Notify: c.line, Observe: job.Observe,
		BeforeShutdown: func() {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = cl.RequestExecutors(rctx, 0)
		},
	})
	if err != nil {
		job.End(false, err.Error())
		return nil, fmt.Errorf("spark: %w", err)
	}
	defer d.Close()
	app := protocol.AppDescription{Name: c.name, Command: c.command(), ExecutorCores: c.set.executorCores,
		ExecutorMemMB: c.set.executorMemMB, MaxCores: c.set.maxCores, DriverURL: d.URL(), AppUIURL: c.baseURL}
	ccfg := client.Config{Masters: c.masters, App: app, Secret: c.set.secret, Principal: c.principal,
		RegisterTimeout: c.set.registerTimeout, Logger: c.log}
	if c.set.driverHost != "" {
		ccfg.ListenAddr = c.set.driverHost + ":0"
	}
	cl, err = client.New(ccfg, func(e client.Event) {
		d.HandleEvent(e)
		switch e.Kind {
		case client.EventMasterChanged:
			c.line(fmt.Sprintf("Master changed: %s (epoch %d) re-attached the application; tasks keep running", e.MasterURL, e.Epoch))
		case client.EventExecutorAdded:
			c.line(fmt.Sprintf("Executor %s/%d granted on worker %s (%s) with %d core(s)", e.AppID, e.ExecutorID, e.WorkerID, e.HostPort, e.Cores))
		case client.EventExecutorUpdated:
			if e.State.Finished() && e.Message != "" {
				c.line(fmt.Sprintf("Executor %s/%d %s: %s", e.AppID, e.ExecutorID, e.State, e.Message))
			}
		}
	})
	if err != nil {
		job.End(false, err.Error())
		return nil, fmt.Errorf("spark: %w", err)
	}
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 15*time.Second)
	}
	id, err := cl.Register(ctx)
	if err != nil {
		cctx, cancel := closeCtx()
		defer cancel()
		_ = cl.Close(cctx)
		job.End(false, err.Error())
		return nil, fmt.Errorf("spark: %w", err)
	}
	d.AllowApp(id)
	job.SetApp(id)
	c.line(fmt.Sprintf("Application %s (%s) registered with master %s: job %q, %d task(s)", id, c.name, cl.Master(), fn, len(calls)))
	stopStarve := c.starvationWarning(ctx, d)
	res := d.Run(ctx)
	stopStarve()
	cctx, cancel := closeCtx()
	defer cancel()
	if ctx.Err() != nil {
		_ = cl.Kill(cctx)
		_ = cl.Close(cctx)
		job.End(false, "cancelled")
		return nil, fmt.Errorf("spark: job %s cancelled: %w", fn, context.Cause(ctx))
	}
	if err := cl.Close(cctx); err != nil {
		c.log.WithError(err).Warn("unregister failed")
	}
	if !res.OK {
		var err error
		if f := res.Failure; f != nil {
			err = &TaskError{Task: f.Task, Failures: f.Failures, LastError: f.LastError}
		} else {
			err = fmt.Errorf("spark: job %s failed: %s", fn, res.Reason)
		}
		job.End(false, err.Error())
		return nil, err
	}
	job.End(true, "")
	c.line(fmt.Sprintf("Job %s finished: %d task(s) in %s; attempts: %d launched, %d failed, %d lost with their executor, %d killed, %d speculative",
		fn, res.Counts.Total, res.Elapsed.Round(time.Millisecond), res.Counts.Launched, res.Counts.FailedAttempts,
		res.Counts.LostAttempts, res.Counts.KilledAttempts, res.Counts.Speculated))
	return res.Outputs, nil
}

// starvationWarning prints Spark's warning while no executor has
// registered, every spark.starvation.timeout; the returned func stops it.
func (c *Context) starvationWarning(ctx context.Context, d *task.Driver) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.set.starvationTimeout)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if d.Counts().Executors == 0 {
					c.line("Initial job has not accepted any resources; check your cluster UI to ensure that workers are registered and have sufficient resources")
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// MapReduce is the common case: it runs fn over every partition (one task
// each, as Run) and folds the results on the driver with reduce, in
// partition order: reduce(reduce(out0, out1), out2)... One partition's
// result is returned as it is; no partition is an error.
func (c *Context) MapReduce(ctx context.Context, fn string, partitions [][]byte, reduce func(a, b []byte) ([]byte, error)) ([]byte, error) {
	if len(partitions) == 0 {
		return nil, errors.New("spark: MapReduce over no partitions")
	}
	outs, err := c.Run(ctx, fn, partitions)
	if err != nil {
		return nil, err
	}
	acc := outs[0]
	for i, o := range outs[1:] {
		if acc, err = reduce(acc, o); err != nil {
			return nil, fmt.Errorf("spark: reduce of partition %d: %w", i+1, err)
		}
	}
	return acc, nil
}

// Close stops the application UI and its file server, after the job
// running, if any; the Context runs no job afterwards. It is idempotent.
func (c *Context) Close() error {
	c.closed.Do(func() {
		c.jobMu.Lock()
		c.done = true
		c.jobMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(ctx); err != nil {
			_ = c.srv.Close()
		}
		c.closeFiles()
	})
	return nil
}

// ServeIfExecutor, in an executor (IsExecutor), serves the registered
// functions and exits the process; elsewhere it returns at once. Call it
// at the top of main when main does anything (such as parsing its
// arguments) before NewContext, which calls it too: an executor runs the
// program without arguments.
func ServeIfExecutor() {
	if IsExecutor() {
		os.Exit(serveExecutor(os.Stderr))
	}
}

// serveExecutor is the executor mode: the worker's SPARK_* environment
// and the launcher's SPARKD_* variables say which driver to serve.
func serveExecutor(stderr io.Writer) int {
	cores, err := strconv.Atoi(os.Getenv("SPARK_EXECUTOR_CORES"))
	if err != nil || cores <= 0 {
		fmt.Fprintf(stderr, "spark executor: SPARK_EXECUTOR_CORES=%q: want a positive integer\n", os.Getenv("SPARK_EXECUTOR_CORES"))
		return 2
	}
	timeout := 120 * time.Second
	if v := os.Getenv(executor.EnvNetworkTimeout); v != "" {
		if timeout, err = parseDuration(v, time.Millisecond); err != nil || timeout <= 0 {
			fmt.Fprintf(stderr, "spark executor: %s=%q: want a positive duration\n", executor.EnvNetworkTimeout, v)
			return 2
		}
	}
	secret := os.Getenv(executor.EnvAuthSecret)
	if secret == "" {
		secret = os.Getenv("SPARK_AUTHENTICATE_SECRET")
	}
	l := logrus.New()
	l.Out = stderr
	b, err := executor.New(executor.Config{DriverURL: os.Getenv("SPARK_DRIVER_URL"), AppID: os.Getenv("SPARK_APP_ID"),
		ExecutorID: os.Getenv("SPARK_EXECUTOR_ID"), WorkerID: os.Getenv("SPARK_WORKER_ID"), Host: os.Getenv(executor.EnvHost),
		Cores: cores, Secret: secret, NetworkTimeout: timeout, Funcs: funcs(), Logger: logrus.NewEntry(l)})
	if err != nil {
		fmt.Fprintf(stderr, "spark executor: %v\n", err)
		return 2
	}
	l.Infof("Go executor serving %d task function(s): %s", len(registered()), strings.Join(registered(), ", "))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "spark executor: %v\n", err)
		return 1
	}
	return 0
}
