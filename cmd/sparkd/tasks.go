package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
	"github.com/sparkd/sparkd/task/appui"
)

// taskJobConfig is what submit --tasks reads from the Spark properties.
type taskJobConfig struct {
	sched             task.Config
	heartbeatInterval time.Duration // spark.executor.heartbeatInterval
	networkTimeout    time.Duration // spark.network.timeout
	starvation        time.Duration // spark.starvation.timeout
}

// checkTaskFlags validates --tasks and its flags and settles the task keys,
// so that a typo fails before anything runs.
func checkTaskFlags(o *submitOptions) error {
	switch {
	case o.exec:
		return errors.New("--tasks and --exec are exclusive")
	case o.kill != "" || o.status != "":
		return errors.New("--tasks cannot be combined with --kill or --status")
	case o.deployMode == "cluster":
		return errors.New("--tasks runs the driver here: it cannot be combined with --deploy-mode cluster")
	case len(o.positional) > 0:
		return fmt.Errorf("--tasks takes no application, got %q (the tasks are the lines of the file)", o.positional)
	case o.resume && o.output == "":
		return errors.New("--resume needs --output DIR (the committed outputs are what it skips)")
	}
	c := taskJobConfig{sched: task.DefaultConfig(), heartbeatInterval: 10 * time.Second,
		networkTimeout: 120 * time.Second, starvation: 15 * time.Second}
	p := o.props
	intKey := func(key string, dst *int) error {
		if v, ok := p[key]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return fmt.Errorf("%s=%q: want a positive integer", key, v)
			}
			*dst = n
		}
		return nil
	}
	floatKey := func(key string, dst *float64) error {
		if v, ok := p[key]; ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%s=%q: want a number", key, v)
			}
			*dst = f
		}
		return nil
	}
	durKey := func(key string, unit time.Duration, dst *time.Duration) error {
		if v, ok := p[key]; ok {
			d, err := conf.ParseDuration(v, unit)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			*dst = d
		}
		return nil
	}
	errs := []error{
		intKey("spark.task.maxFailures", &c.sched.MaxFailures),
		intKey("spark.task.cpus", &c.sched.TaskCPUs),
		floatKey("spark.speculation.multiplier", &c.sched.SpeculationMultiplier),
		floatKey("spark.speculation.quantile", &c.sched.SpeculationQuantile),
		durKey("spark.speculation.interval", time.Millisecond, &c.sched.SpeculationInterval),
		durKey("spark.speculation.minTaskRuntime", time.Millisecond, &c.sched.SpeculationMinRuntime),
		durKey("spark.locality.wait", time.Millisecond, &c.sched.LocalityWait),
		durKey("spark.executor.heartbeatInterval", time.Millisecond, &c.heartbeatInterval),
		durKey("spark.network.timeout", time.Second, &c.networkTimeout),
		durKey("spark.starvation.timeout", time.Second, &c.starvation),
	}
	if v, ok := p["spark.speculation"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("spark.speculation=%q: want true or false", v))
		}
		c.sched.Speculation = b
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.sched.LocalityWait == 0 {
		c.sched.LocalityWait = -1 // 0 means "no wait" here, not "default"
	}
	if err := c.sched.Validate(); err != nil {
		return err
	}
	if c.heartbeatInterval <= 0 || c.networkTimeout <= 0 || c.heartbeatInterval >= c.networkTimeout {
		return fmt.Errorf("spark.executor.heartbeatInterval (%s) must be positive and less than spark.network.timeout (%s)",
			c.heartbeatInterval, c.networkTimeout)
	}
	if cores := o.intProp("spark.executor.cores", 0); cores > 0 && c.sched.TaskCPUs > cores {
		return fmt.Errorf("spark.task.cpus=%d is more than spark.executor.cores=%d (--executor-cores): no task could run",
			c.sched.TaskCPUs, cores)
	}
	o.taskCfg = c
	return nil
}

// preferDirective, on a line of its own, names the hosts the next task
// prefers (delay scheduling, spark.locality.wait). Being a comment, it is
// harmless to a shell.
const preferDirective = "#@prefer"

// readTasks reads a task file: one shell command per line; blank lines and
// lines starting with # are skipped. Task i is the i-th command. A line
// "#@prefer host1,host2" makes the next task prefer those hosts.
func readTasks(path string, stdin io.Reader) ([]string, map[int][]string, error) {
	var r io.Reader = stdin
	name := "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--tasks: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	sc := bufio.NewScanner(r)
	const maxLine = 1 << 20
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var cmds []string
	prefs := map[int][]string{}
	var pending []string
	pendingLine := 0
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		t := strings.TrimSpace(s)
		if rest, ok := strings.CutPrefix(t, preferDirective); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			if pending != nil {
				return nil, nil, fmt.Errorf("--tasks %s: line %d: a second %s before a task (line %d)", name, line, preferDirective, pendingLine)
			}
			for _, h := range strings.Split(rest, ",") {
				if h = strings.TrimSpace(h); h != "" {
					pending = append(pending, h)
				}
			}
			if len(pending) == 0 {
				return nil, nil, fmt.Errorf("--tasks %s: line %d: %s needs host names: %s host1,host2", name, line, preferDirective, preferDirective)
			}
			pendingLine = line
			continue
		}
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.ContainsRune(s, 0) {
			return nil, nil, fmt.Errorf("--tasks %s: line %d holds a NUL byte", name, line)
		}
		if pending != nil {
			prefs[len(cmds)] = pending
			pending = nil
		}
		cmds = append(cmds, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("--tasks %s: line %d is longer than %d bytes", name, line+1, maxLine)
		}
		return nil, nil, fmt.Errorf("--tasks %s: %w", name, err)
	}
	if pending != nil {
		return nil, nil, fmt.Errorf("--tasks %s: line %d: %s is not followed by a task", name, pendingLine, preferDirective)
	}
	if len(cmds) == 0 {
		return nil, nil, fmt.Errorf("--tasks %s: no tasks (blank lines and # comments are skipped)", name)
	}
	return cmds, prefs, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress writes a job's progress: on a terminal one live line, redrawn;
// otherwise plain timestamped lines.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	term  bool
	shown bool
	start time.Time
}

func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
	fmt.Fprintf(p.w, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), s)
}

func progressText(c task.Counts, elapsed time.Duration) string {
	done := c.Succeeded + c.Skipped
	ran := c.Succeeded
	s := fmt.Sprintf("[%d/%d] done %d, running %d, failed %d, speculated %d", done, c.Total, done, c.Running,
		c.FailedAttempts, c.Speculated)
	if sec := elapsed.Seconds(); sec > 0 && ran > 0 {
		rate := float64(ran) / sec
		s += fmt.Sprintf(", %.1f tasks/s", rate)
		left := c.Total - done
		if left > 0 {
			s += fmt.Sprintf(", ETA %s", (time.Duration(float64(left) / rate * float64(time.Second))).Round(time.Second))
		}
	}
	return s
}

func (p *progress) update(c task.Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	txt := progressText(c, time.Since(p.start))
	if p.term {
		fmt.Fprint(p.w, "\r\033[K"+txt)
		p.shown = true
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), txt)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// driverListen chooses where the task server listens: spark.driver.host if
// set; loopback when every master is on loopback; else all interfaces.
func driverListen(o *submitOptions) (listen, advertise string) {
	if h := o.props["spark.driver.host"]; h != "" {
		return net.JoinHostPort(h, "0"), h
	}
	for _, m := range o.masters {
		h, _, err := net.SplitHostPort(m)
		ip := net.ParseIP(h)
		if err != nil || !(h == "localhost" || ip != nil && ip.IsLoopback()) {
			return ":0", ""
		}
	}
	return "127.0.0.1:0", "127.0.0.1"
}

func runTaskJob(ctx context.Context, o *submitOptions, stdin io.Reader, stdout, stderr io.Writer, log *logrus.Entry) int {
	cmds, prefs, err := readTasks(o.tasks, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		return 2
	}
	pr := &progress{w: stderr, term: isTerminal(stderr), start: time.Now()}
	listen, advertise := driverListen(o)
	tc := o.taskCfg
	ui, uiURL, stopUI, err := startAppUI(o, listen, advertise, log, pr.line)
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		return 2
	}
	defer stopUI()
	job := ui.StartJob(o.appName(), len(cmds))
	var c *client.Client
	// The executors get the application's credential, not the cluster
	// secret: the driver's task server must verify exactly that.
	principal := protocol.NewPrincipal("app-")
	d, err := task.NewDriver(task.DriverConfig{
		Scheduler: tc.sched, Commands: cmds, Preferred: prefs, OutputDir: o.output, Resume: o.resume,
		ListenAddr: listen, AdvertiseHost: advertise, Secret: client.AppSecret(o.props["spark.authenticate.secret"], principal),
		HeartbeatInterval: tc.heartbeatInterval, NetworkTimeout: tc.networkTimeout,
		Logger: log, Notify: pr.line, Observe: job.Observe,
		BeforeShutdown: func() {
			// The job is over: the master must not replace the executors
			// that now exit. Best effort: unregistering kills them anyway.
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = c.RequestExecutors(rctx, 0)
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		return 2
	}
	defer d.Close()
	if n := d.Skipped(); n > 0 {
		pr.line(fmt.Sprintf("Resuming: %d of %d task(s) already committed in %s are skipped", n, len(cmds), o.output))
	}
	if d.Skipped() == len(cmds) {
		fmt.Fprintf(stdout, "Job finished: all %d task(s) were already committed in %s; nothing to run\n", len(cmds), o.output)
		return 0
	}
	app := protocol.AppDescription{
		Name: o.appName(),
		Command: []string{"{{SPARKD}}", "executor", "--hostname", "{{HOSTNAME}}",
			"--network-timeout", strconv.FormatInt(tc.networkTimeout.Milliseconds(), 10) + "ms"},
		ExecutorCores: o.intProp("spark.executor.cores", 0),
		ExecutorMemMB: o.memProp("spark.executor.memory", client.DefaultExecutorMemoryMB),
		MaxCores:      o.intProp("spark.cores.max", 0),
		DriverURL:     d.URL(),
		AppUIURL:      uiURL,
	}
	cfg := client.Config{Masters: o.masters, App: app, Secret: o.props["spark.authenticate.secret"], Principal: principal,
		RegisterTimeout: o.wait, Logger: log}
	if h := o.props["spark.driver.host"]; h != "" {
		cfg.ListenAddr = h + ":0"
	}
	c, err = client.New(cfg, func(e client.Event) {
		d.HandleEvent(e)
		switch e.Kind {
		case client.EventMasterChanged:
			pr.line(fmt.Sprintf("Master changed: %s (epoch %d) re-attached the application; tasks keep running", e.MasterURL, e.Epoch))
		case client.EventDisconnected:
			pr.line(fmt.Sprintf("Lost contact with master %s; tasks keep running on the executors already granted", e.MasterURL))
		case client.EventReregistered:
			pr.line(fmt.Sprintf("Application registered again as %s: %s", e.AppID, e.Message))
		case client.EventExecutorAdded:
			pr.line(fmt.Sprintf("Executor %s/%d granted on worker %s (%s) with %d core(s)", e.AppID, e.ExecutorID, e.WorkerID, e.HostPort, e.Cores))
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		return 2
	}
	id, code := registerOrClose(ctx, c, stderr)
	if code != 0 {
		return code
	}
	d.AllowApp(id)
	job.SetApp(id)
	pr.line(fmt.Sprintf("Application %s (%s) registered with master %s (epoch %d): %d task(s), driver at %s",
		id, app.Name, c.Master(), c.Epoch(), len(cmds)-d.Skipped(), d.URL()))

	// Progress: a live line on a terminal, a plain line every 5 s otherwise;
	// Spark's starvation warning while no executor has registered.
	progCtx, stopProg := context.WithCancel(ctx)
	var progWG sync.WaitGroup
	progWG.Add(1)
	go func() {
		defer progWG.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		lastStarve, lastLine := time.Now(), time.Now()
		for {
			select {
			case <-progCtx.Done():
				return
			case <-t.C:
			}
			cn := d.Counts()
			if cn.Executors == 0 && time.Since(lastStarve) >= tc.starvation {
				lastStarve = time.Now()
				pr.line("Initial job has not accepted any resources; check your cluster UI to ensure that workers are registered and have sufficient resources")
			}
			if pr.term || time.Since(lastLine) >= 5*time.Second {
				lastLine = time.Now()
				pr.update(cn)
			}
		}
	}()
	res := d.Run(ctx)
	job.End(res.OK, res.Reason)
	stopProg()
	progWG.Wait()
	pr.finish()
	cctx, cancel := closeCtx()
	defer cancel()
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted: killing application %s\n", c.AppID())
		if err := c.Kill(cctx); err != nil {
			fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		}
		_ = c.Close(cctx)
		fmt.Fprintf(stderr, "Job cancelled: %s\n", jobSummary(res))
		return 130
	}
	if err := c.Close(cctx); err != nil {
		fmt.Fprintf(stderr, "sparkd submit: unregister: %v\n", err)
	}
	if res.OK {
		fmt.Fprintf(stdout, "Job finished: %s\n", jobSummary(res))
		return 0
	}
	fmt.Fprintf(stderr, "Job failed: %s\n", jobSummary(res))
	for _, f := range res.Failures {
		state := "recovered"
		switch {
		case f.Failed && f.Failures >= tc.sched.MaxFailures:
			state = fmt.Sprintf("FAILED (spark.task.maxFailures=%d)", tc.sched.MaxFailures)
		case f.Failed:
			state = "FAILED"
		}
		fmt.Fprintf(stderr, "  task %d: %s after %d failed attempt(s); last error: %s\n", f.Task, state, f.Failures, f.LastError)
	}
	if res.Reason != "" {
		fmt.Fprintf(stderr, "  %s\n", res.Reason)
	}
	return 1
}

// jobSummary is one line of counts; the fault tests read it.
func jobSummary(res task.Result) string {
	c := res.Counts
	s := fmt.Sprintf("%d of %d task(s) succeeded", c.Succeeded+c.Skipped, c.Total)
	if c.Skipped > 0 {
		s += fmt.Sprintf(" (%d skipped: already committed)", c.Skipped)
	}
	s += fmt.Sprintf(" in %s; attempts: %d launched, %d failed, %d lost with their executor (re-run, not counted as failures), %d killed, %d speculative",
		res.Elapsed.Round(time.Millisecond), c.Launched, c.FailedAttempts, c.LostAttempts, c.KilledAttempts, c.Speculated)
	if res.Overhead > 0 {
		s += fmt.Sprintf("; median runtime overhead per task %s", res.Overhead.Round(time.Microsecond))
	}
	if len(res.Lost) > 0 {
		ts := make([]int, 0, len(res.Lost))
		for t := range res.Lost {
			ts = append(ts, t)
		}
		sort.Ints(ts)
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = strconv.Itoa(t)
		}
		s += "; re-run after an executor loss: task(s) " + strings.Join(parts, ", ")
	}
	return s
}

// startAppUI starts the job's application UI (appui: jobs, tasks,
// executors, /api/v1, /metrics) on spark.ui.port (4040; the next port when
// taken, up to spark.port.maxRetries), unless spark.ui.enabled=false. When
// every port tried is taken, it warns and takes any free port: the UI is
// never a reason for a job not to run. It returns the UI's URL ("" when
// disabled) and a stop function.
func startAppUI(o *submitOptions, listen, advertise string, log *logrus.Entry, line func(string)) (*appui.UI, string, func(), error) {
	ui := appui.New(appui.Config{Name: o.appName(), Version: version})
	if v, ok := o.props["spark.ui.enabled"]; ok {
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, "", nil, fmt.Errorf("spark.ui.enabled=%q: want true or false", v)
		}
		if !on {
			return ui, "", func() {}, nil
		}
	}
	port, retries := 4040, 16
	if v, ok := o.props["spark.ui.port"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 65535 {
			return nil, "", nil, fmt.Errorf("spark.ui.port=%q: want a port number (0 for any free port)", v)
		}
		port = n
	}
	if v, ok := o.props["spark.port.maxRetries"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, "", nil, fmt.Errorf("spark.port.maxRetries=%q: want a non-negative integer", v)
		}
		retries = n
	}
	host, _, _ := net.SplitHostPort(listen)
	ln, err := protocol.Listen(host, port, retries, "SparkUI", log)
	if err != nil {
		line(fmt.Sprintf("%v; the application UI takes any free port instead", err))
		if ln, err = protocol.Listen(host, 0, 0, "SparkUI", log); err != nil {
			return nil, "", nil, err
		}
	}
	if advertise == "" {
		advertise = host
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			advertise, _ = os.Hostname()
		}
	}
	url := "http://" + net.JoinHostPort(advertise, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	srv := protocol.NewServer(ui.Handler())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Warn("application UI stopped")
		}
	}()
	line(fmt.Sprintf("Bound SparkUI to %s, and started at %s", ln.Addr(), url))
	return ui, url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
