package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/protocol"
)

// submitOptions are spark-submit's flags plus sparkd's --exec.
type submitOptions struct {
	master, deployMode, name, class string
	executorCores, totalCores       string
	executorMemory                  string
	driverCores, driverMemory       string
	supervise                       bool
	confs                           confFlag
	propertiesFile                  string
	kill, status                    string
	exec                            bool
	tasks, output                   string
	resume                          bool
	taskCfg                         taskJobConfig
	executors                       int
	wait                            time.Duration
	starvation                      time.Duration // spark.starvation.timeout (15s)
	verbose                         bool
	positional                      []string
	props                           map[string]string // effective spark properties
	masters                         []string          // host:port list
	masterList                      string            // spark://h1:7077,h2:7077
}

// confFlag collects repeatable --conf k=v.
type confFlag []string

func (c *confFlag) String() string     { return strings.Join(*c, ",") }
func (c *confFlag) Set(v string) error { *c = append(*c, v); return nil }

const submitUsage = `Usage: sparkd submit [options] <app executable> [app arguments]
       sparkd submit --master URLS [--name N] [--executor-cores C] [--total-executor-cores T]
                     [--executor-memory M] [--executors N] --exec -- COMMAND [ARGS...]
       sparkd submit --master URLS [--executor-cores C] [--total-executor-cores T] [--conf K=V]...
                     --tasks FILE|- [--output DIR [--resume]]
       sparkd submit --master URLS --kill SUBMISSION_ID
       sparkd submit --master URLS --status SUBMISSION_ID

Modes:
  --deploy-mode client (default)  run the application here, with SPARK_MASTER (the full
                                  master list) and its settings in its environment
  --deploy-mode cluster           submit a driver through the leading master's REST server
                                  (6066); prints the submission id
  --exec                          sparkd's own: register an application whose executors run
                                  COMMAND on the cluster, stream their state changes, and exit 0
                                  once at least --executors executors (default 1) were granted
                                  and all have exited with code 0 and none is running; any
                                  failure exits 1 with a summary; an executor lost with its
                                  worker is replaced (at most 10 per application); Ctrl-C
                                  kills the application
  --tasks FILE                    a job of tasks: each line of FILE (- = stdin) is a shell command
                                  run as one task on the executors ({{TASK_ID}} and {{ATTEMPT}}
                                  replaced, TASK_ID and ATTEMPT in its environment); failed tasks
                                  are retried (spark.task.maxFailures), tasks of a lost executor
                                  re-run, stragglers speculated (spark.speculation); --output DIR
                                  commits task i's stdout to DIR/part-NNNNN exactly once;
                                  --resume skips committed tasks. Exit 0 only if all succeeded;
                                  Ctrl-C kills the application

Options:
`

func runSubmit(args []string, stdout, stderr io.Writer) int {
	o, code, done := parseSubmit(args, stderr, os.Getenv)
	if done {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newCLILogger(stderr, o.verbose)
	switch {
	case o.kill != "":
		return restKill(ctx, o, stdout, stderr)
	case o.status != "":
		return restStatus(ctx, o, stdout, stderr)
	case o.exec:
		return runExecApp(ctx, o, stdout, stderr, log)
	case o.tasks != "":
		return runTaskJob(ctx, o, os.Stdin, stdout, stderr, log)
	case o.deployMode == "cluster":
		return restCreate(ctx, o, stdout, stderr)
	default:
		return runClientMode(ctx, o, stderr)
	}
}

// newCLILogger is the logger of submit and of the client library under it:
// warnings and errors (everything with verbose) on w, in submit's own line
// format (see cliFormatter).
func newCLILogger(w io.Writer, verbose bool) *logrus.Entry {
	l := logrus.New()
	l.Out = w
	l.SetFormatter(cliFormatter{})
	l.SetLevel(logrus.WarnLevel)
	if verbose {
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l).WithField("component", "submit")
}

// cliFormatter writes a log entry the way submit writes its own lines: a
// UTC time of day, the level as a word, the message, then the error and any
// other fields (the component field names the logger, not the event, and is
// left out):
//
//	23:40:01.123 warning: Disconnected from Spark cluster (master m1:7077)! Waiting for reconnection... (error: connection refused)
type cliFormatter struct{}

func (cliFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format("15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(e.Level.String())
	b.WriteString(": ")
	b.WriteString(strings.TrimRight(e.Message, "\n"))
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != "component" && k != logrus.ErrorKey {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		b.WriteString(" [")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s: %v", k, e.Data[k])
		}
		b.WriteByte(']')
	}
	if err, ok := e.Data[logrus.ErrorKey]; ok {
		fmt.Fprintf(&b, " (error: %v)", err)
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// parseSubmit parses flags and settles the effective properties: the
// properties file, then --conf, then the named flags (highest).
func parseSubmit(args []string, stderr io.Writer, getenv func(string) string) (o *submitOptions, code int, done bool) {
	o = &submitOptions{}
	fs := flag.NewFlagSet("sparkd submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, submitUsage); printFlags(stderr, fs) }
	fs.StringVar(&o.master, "master", "", "master URLs: spark://h1:7077,h2:7077 (default $SPARK_MASTER or spark.master)")
	fs.StringVar(&o.deployMode, "deploy-mode", "", "client or cluster (default client)")
	fs.StringVar(&o.name, "name", "", "application name (spark.app.name)")
	fs.StringVar(&o.class, "class", "", "main class (accepted; sent as mainClass in cluster mode)")
	fs.StringVar(&o.executorCores, "executor-cores", "", "cores per executor (default: all cores of a worker)")
	fs.StringVar(&o.totalCores, "total-executor-cores", "", "total cores for the application (spark.cores.max)")
	fs.StringVar(&o.executorMemory, "executor-memory", "", "memory per executor, e.g. 512m, 2g (default 1g)")
	fs.StringVar(&o.driverCores, "driver-cores", "", "driver cores, cluster mode (default 1)")
	fs.StringVar(&o.driverMemory, "driver-memory", "", "driver memory, e.g. 1g (default 1024m)")
	fs.BoolVar(&o.supervise, "supervise", false, "relaunch the driver if it fails (cluster mode)")
	fs.Var(&o.confs, "conf", "spark property key=value (repeatable)")
	fs.StringVar(&o.propertiesFile, "properties-file", "", "spark properties file (default $SPARK_CONF_DIR/spark-defaults.conf if present)")
	fs.StringVar(&o.kill, "kill", "", "kill the driver with this submission id")
	fs.StringVar(&o.status, "status", "", "show the status of the driver with this submission id")
	fs.BoolVar(&o.exec, "exec", false, "run COMMAND as the executors of an application (sparkd's own mode)")
	fs.StringVar(&o.tasks, "tasks", "", "run a job of tasks: FILE has one shell command per line (- for standard input)")
	fs.StringVar(&o.output, "output", "", "with --tasks: commit task i's stdout to DIR/part-NNNNN exactly once")
	fs.BoolVar(&o.resume, "resume", false, "with --tasks --output: skip tasks whose output is already committed")
	fs.IntVar(&o.executors, "executors", 0, "with --exec: executors that must be granted before the application can finish (default 1)")
	fs.DurationVar(&o.wait, "wait", 60*time.Second, "how long to look for a leading master before giving up")
	fs.BoolVar(&o.verbose, "verbose", false, "log client details to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0, true
		}
		return nil, 2, true
	}
	o.positional = fs.Args()
	fail := func(format string, a ...any) (*submitOptions, int, bool) {
		fmt.Fprintf(stderr, "sparkd submit: "+format+"\n", a...)
		return nil, 2, true
	}
	props, err := loadSubmitProperties(o.propertiesFile, getenv)
	if err != nil {
		return fail("%v", err)
	}
	for _, kv := range o.confs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fail("--conf %q: want key=value", kv)
		}
		props[strings.TrimSpace(k)] = v
	}
	set := func(key, v string) {
		if v != "" {
			props[key] = v
		}
	}
	if o.master == "" && props["spark.master"] == "" {
		o.master = getenv("SPARK_MASTER")
	}
	set("spark.master", o.master)
	set("spark.submit.deployMode", o.deployMode)
	set("spark.app.name", o.name)
	set("spark.executor.cores", o.executorCores)
	set("spark.cores.max", o.totalCores)
	set("spark.executor.memory", o.executorMemory)
	set("spark.driver.cores", o.driverCores)
	set("spark.driver.memory", o.driverMemory)
	if o.supervise {
		props["spark.driver.supervise"] = "true"
	}
	o.props = props
	o.deployMode = props["spark.submit.deployMode"]
	if o.deployMode == "" {
		o.deployMode = "client"
	}
	if o.deployMode != "client" && o.deployMode != "cluster" {
		return fail("--deploy-mode %q: want client or cluster", o.deployMode)
	}
	if props["spark.master"] == "" {
		return fail("no master given: use --master spark://h1:7077,h2:7077 (or SPARK_MASTER, or spark.master)")
	}
	o.masters, err = conf.ParseMasterURLs(props["spark.master"])
	if err != nil {
		return fail("--master: %v", err)
	}
	o.masterList = "spark://" + strings.Join(o.masters, ",")
	// Check every number and size now, so a typo fails before anything is
	// sent; the message names what the user typed: the flag (and its key)
	// when the flag was given, else the key.
	flagGiven := map[string]bool{
		"spark.executor.cores": o.executorCores != "", "spark.cores.max": o.totalCores != "",
		"spark.driver.cores": o.driverCores != "", "spark.executor.memory": o.executorMemory != "",
		"spark.driver.memory": o.driverMemory != "",
	}
	name := func(k string) string {
		if flagGiven[k] {
			return flagFor(k) + " (" + k + ")"
		}
		return k
	}
	for _, k := range []string{"spark.executor.cores", "spark.cores.max", "spark.driver.cores"} {
		if v, ok := props[k]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n <= 0 {
				return fail("%s must be a positive integer, got %q", name(k), v)
			}
		}
	}
	for _, k := range []string{"spark.executor.memory", "spark.driver.memory"} {
		if v, ok := props[k]; ok {
			mb, err := conf.ParseMemoryMB(v)
			switch {
			case err != nil:
				return fail("%s: %s", name(k), strings.TrimPrefix(err.Error(), "conf: invalid value: "))
			case mb <= 0:
				return fail("%s must be positive, got %s", name(k), strings.TrimSpace(v))
			}
		}
	}
	if v, ok := props["spark.driver.port"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 || n > 65535 {
			return fail("spark.driver.port=%q: want a port number, 0-65535 (0 = random)", v)
		}
	}
	if v, ok := props[conf.KeyPortMaxRetries]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 {
			return fail("%s=%q: want a non-negative integer", conf.KeyPortMaxRetries, v)
		}
	}
	o.starvation = defaultStarvationTimeout
	if v, ok := props[keyStarvationTimeout]; ok {
		d, err := conf.ParseDuration(v, time.Second)
		if err != nil || d <= 0 {
			return fail("%s=%q: want a positive duration, e.g. 15s", keyStarvationTimeout, v)
		}
		o.starvation = d
	}
	if v, ok := props["spark.driver.supervise"]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return fail("spark.driver.supervise=%q: want true or false", v)
		}
	}
	if o.executors < 0 {
		return fail("--executors %d: want a non-negative number", o.executors)
	}
	if o.kill != "" && o.status != "" {
		return fail("--kill and --status are exclusive")
	}
	if o.tasks != "" {
		if err := checkTaskFlags(o); err != nil {
			return fail("%v", err)
		}
		return o, 0, false
	}
	if o.output != "" || o.resume {
		return fail("--output and --resume go with --tasks FILE")
	}
	if o.kill == "" && o.status == "" && len(o.positional) == 0 {
		if o.exec {
			return fail("--exec needs a command: sparkd submit --master URLS --exec -- COMMAND [ARGS...]")
		}
		return fail("missing the application: sparkd submit [options] <app executable> [app arguments]")
	}
	if o.exec && o.deployMode == "cluster" {
		return fail("--exec runs its own application; it cannot be combined with --deploy-mode cluster")
	}
	return o, 0, false
}

// keyStarvationTimeout is Spark's spark.starvation.timeout: how long an
// application may go without an executor before submit warns, and again
// every such period (Spark's TaskSchedulerImpl warning).
const (
	keyStarvationTimeout     = "spark.starvation.timeout"
	defaultStarvationTimeout = 15 * time.Second
)

// starvationWarning is Spark's line, verbatim.
const starvationWarning = "Initial job has not accepted any resources; check your cluster UI to ensure that workers are registered and have sufficient resources"

func flagFor(key string) string {
	return map[string]string{
		"spark.executor.cores": "--executor-cores", "spark.cores.max": "--total-executor-cores",
		"spark.driver.cores": "--driver-cores", "spark.executor.memory": "--executor-memory",
		"spark.driver.memory": "--driver-memory",
	}[key]
}

// loadSubmitProperties reads --properties-file, or
// $SPARK_CONF_DIR/spark-defaults.conf when present.
func loadSubmitProperties(path string, getenv func(string) string) (map[string]string, error) {
	props := map[string]string{}
	explicit := path != ""
	if !explicit {
		dir := getenv("SPARK_CONF_DIR")
		if dir == "" {
			if home := getenv("SPARK_HOME"); home != "" {
				dir = filepath.Join(home, "conf")
			}
		}
		if dir == "" {
			return props, nil
		}
		path = filepath.Join(dir, "spark-defaults.conf")
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return props, nil
		}
		return nil, fmt.Errorf("--properties-file: %w", err)
	}
	defer f.Close()
	list, err := conf.ParseProperties(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range list {
		props[p.Key] = strings.TrimSpace(p.Value)
	}
	return props, nil
}

func (o *submitOptions) intProp(key string, def int) int {
	if v, ok := o.props[key]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

func (o *submitOptions) memProp(key string, def int) int {
	if v, ok := o.props[key]; ok {
		if n, err := conf.ParseMemoryMB(v); err == nil {
			return n
		}
	}
	return def
}

func (o *submitOptions) appName() string {
	if n := o.props["spark.app.name"]; n != "" {
		return n
	}
	if o.class != "" {
		return o.class
	}
	if len(o.positional) > 0 {
		return filepath.Base(o.positional[0])
	}
	return "sparkd-app"
}

// ---- client deploy mode ----

// runClientMode runs the application here with SPARK_MASTER and its settings
// in the environment; signals are forwarded, and its exit code is returned.
func runClientMode(ctx context.Context, o *submitOptions, stderr io.Writer) int {
	cmd := exec.Command(o.positional[0], o.positional[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	cmd.Env = append(os.Environ(), clientModeEnv(o)...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "sparkd submit: start %s: %v\n", o.positional[0], err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-waited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return 128 + int(st.Signal())
				}
				return ee.ExitCode()
			}
			if err != nil {
				fmt.Fprintf(stderr, "sparkd submit: %s: %v\n", o.positional[0], err)
				return 1
			}
			return 0
		}
	}
}

// clientModeEnv is what a client-mode driver finds in its environment (read
// back by client.ConfigFromEnv).
func clientModeEnv(o *submitOptions) []string {
	env := []string{
		client.EnvMaster + "=" + o.masterList,
		client.EnvAppName + "=" + o.appName(),
	}
	add := func(name, key string) {
		if v, ok := o.props[key]; ok {
			env = append(env, name+"="+v)
		}
	}
	add(client.EnvExecutorCores, "spark.executor.cores")
	add(client.EnvTotalCores, "spark.cores.max")
	add(client.EnvExecutorMemory, "spark.executor.memory")
	add(client.EnvDriverMemory, "spark.driver.memory")
	if v := driverCredential(o.props["spark.authenticate.secret"]); v != "" {
		env = append(env, client.EnvAuthSecret+"="+v)
	}
	env = append(env, fmt.Sprintf("%s=%d", client.EnvExecutorMemoryMB, o.memProp("spark.executor.memory", client.DefaultExecutorMemoryMB)))
	keys := make([]string, 0, len(o.props))
	for k := range o.props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+"="+o.props[k])
	}
	return append(env, client.EnvConf+"="+strings.Join(lines, "\n"))
}

// ---- cluster deploy mode: Spark's REST submission protocol ----

// restCreateRequest is Spark's CreateSubmissionRequest.
type restCreateRequest struct {
	Action               string            `json:"action"`
	ClientSparkVersion   string            `json:"clientSparkVersion"`
	AppResource          string            `json:"appResource"`
	MainClass            string            `json:"mainClass"`
	AppArgs              []string          `json:"appArgs"`
	SparkProperties      map[string]string `json:"sparkProperties"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
}

// restResponse covers Spark's Create/Kill/SubmissionStatus/Error responses.
type restResponse struct {
	Action             string `json:"action"`
	ServerSparkVersion string `json:"serverSparkVersion"`
	Success            *bool  `json:"success"`
	Message            string `json:"message"`
	SubmissionID       string `json:"submissionId"`
	DriverState        string `json:"driverState"`
	WorkerID           string `json:"workerId"`
	WorkerHostPort     string `json:"workerHostPort"`
}

var errNotAliveREST = errors.New("master is not ALIVE")

// withLeaderREST finds the leading master and calls fn with its REST base
// URL, retrying (re-probing) while no master is ALIVE or the REST server
// answers that its master is not ALIVE, until o.wait passes. A refusal
// (client.IsRefusal: a 4xx other than 404, 408, 409, 429, e.g. 401 for a
// wrong secret) ends it at once, with the master's message.
func withLeaderREST(ctx context.Context, o *submitOptions, stderr io.Writer, fn func(base string) error) error {
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	rpc := submitClient(o)
	delay := 100 * time.Millisecond
	var last error
	for {
		l, err := client.FindLeader(ctx, rpc, o.masters)
		var refused *client.RefusedError
		if errors.As(err, &refused) {
			// A wrong secret or a bad request: waiting will not change it.
			return refused
		}
		if err == nil && l.LeaderREST == "" && l.URL != "" {
			err = fmt.Errorf("leading master %s has no REST server (spark.master.rest.enabled=false)", l.URL)
			return err
		}
		if err == nil {
			err = fn(protocol.HTTPBase(l.LeaderREST))
			if err == nil || !errors.Is(err, errNotAliveREST) {
				return err
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leading master found in %s among %s: %w", o.wait, o.masterList, last)
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// restBearer is the "Authorization: Bearer <JWS>" submit sends when its
// configuration names the JWSFilter in spark.master.rest.filters and has
// its key (spark.org.apache.spark.ui.JWSFilter.param.secretKey): an HS256
// JWS valid for five minutes. "" otherwise.
func restBearer(o *submitOptions) string {
	key := o.props["spark.org.apache.spark.ui.JWSFilter.param.secretKey"]
	if key == "" || !strings.Contains(o.props["spark.master.rest.filters"], protocol.JWSFilterClass) {
		return ""
	}
	now := time.Now()
	tok, err := protocol.SignJWS(key, map[string]any{"sub": os.Getenv("USER"), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	if err != nil {
		return ""
	}
	return "Bearer " + tok
}

func restCall(ctx context.Context, o *submitOptions, method, url string, body any) (restResponse, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return restResponse{}, err
		}
		rd = strings.NewReader(string(raw))
	}
	hc, https := restHTTPClient(o)
	if rest, ok := strings.CutPrefix(url, "http://"); ok && https {
		url = "https://" + rest
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return restResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	if b := restBearer(o); b != "" {
		req.Header.Set("Authorization", b)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return restResponse{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxBodyBytes))
	if err != nil {
		return restResponse{}, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	var r restResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return restResponse{}, fmt.Errorf("%s %s: http %d, not a REST submission answer: %.200q", method, url, resp.StatusCode, data)
	}
	if client.IsRefusal(resp.StatusCode) {
		// A bad request: the master said why, and asking again changes nothing.
		return r, fmt.Errorf("http %d: %s", resp.StatusCode, r.Message)
	}
	if r.Success == nil || !*r.Success || resp.StatusCode/100 != 2 {
		if strings.Contains(r.Message, "ALIVE") || resp.StatusCode == http.StatusServiceUnavailable {
			return r, fmt.Errorf("%w: %s", errNotAliveREST, r.Message)
		}
		msg := r.Message
		if msg == "" {
			msg = fmt.Sprintf("http %d", resp.StatusCode)
		}
		return r, fmt.Errorf("%s", msg)
	}
	return r, nil
}

func restCreate(ctx context.Context, o *submitOptions, stdout, stderr io.Writer) int {
	props := map[string]string{}
	for k, v := range o.props {
		props[k] = v
	}
	props["spark.master"] = o.masterList
	props["spark.app.name"] = o.appName()
	props["spark.submit.deployMode"] = "cluster"
	if _, ok := props["spark.driver.supervise"]; !ok {
		props["spark.driver.supervise"] = "false"
	}
	main := o.class
	if main == "" {
		main = filepath.Base(o.positional[0])
	}
	req := restCreateRequest{
		Action: "CreateSubmissionRequest", ClientSparkVersion: "sparkd-" + version,
		AppResource: o.positional[0], MainClass: main, AppArgs: append([]string{}, o.positional[1:]...),
		SparkProperties: props, EnvironmentVariables: map[string]string{},
	}
	var r restResponse
	err := withLeaderREST(ctx, o, stderr, func(base string) error {
		var err error
		r, err = restCall(ctx, o, http.MethodPost, base+"/v1/submissions/create", req)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "Submission successfully created as %s. %s\n", r.SubmissionID, r.Message)
	fmt.Fprintln(stdout, r.SubmissionID)
	return 0
}

func restStatus(ctx context.Context, o *submitOptions, stdout, stderr io.Writer) int {
	var r restResponse
	err := withLeaderREST(ctx, o, stderr, func(base string) error {
		var err error
		r, err = restCall(ctx, o, http.MethodGet, base+"/v1/submissions/status/"+o.status, nil)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: status of %s: %v\n", o.status, err)
		return 1
	}
	fmt.Fprintf(stdout, "submissionId: %s\ndriverState: %s\n", r.SubmissionID, r.DriverState)
	if r.WorkerID != "" {
		fmt.Fprintf(stdout, "workerId: %s\nworkerHostPort: %s\n", r.WorkerID, r.WorkerHostPort)
	}
	if r.Message != "" {
		fmt.Fprintf(stdout, "message: %s\n", r.Message)
	}
	if r.DriverState == string(protocol.DriverSubmitted) {
		if why := driverWaitingReason(ctx, o, r.SubmissionID); why != "" {
			fmt.Fprintf(stdout, "waitingReason: %s\n", why)
		}
	}
	return 0
}

// driverWaitingReason says why a SUBMITTED driver has no worker, from the
// leader's /json: the master keeps no such reason for drivers (it does for
// applications), so it is derived here from the driver's cores and memory
// and the ALIVE workers' free ones. "" when it cannot tell or the driver
// fits (it is launched at the next scheduling pass).
func driverWaitingReason(ctx context.Context, o *submitOptions, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rpc := submitClient(o)
	l, err := client.FindLeader(ctx, rpc, o.masters)
	if err != nil {
		return ""
	}
	var doc struct {
		Workers []struct {
			State      string `json:"state"`
			CoresFree  int    `json:"coresfree"`
			MemoryFree int    `json:"memoryfree"`
		} `json:"workers"`
		ActiveDrivers []struct {
			ID     string `json:"id"`
			Cores  int    `json:"cores"`
			Memory int    `json:"memory"`
		} `json:"activedrivers"`
	}
	if err := rpc.Call(ctx, http.MethodGet, l.URL, protocol.PathMasterStateJSON, nil, &doc); err != nil {
		return ""
	}
	for _, d := range doc.ActiveDrivers {
		if d.ID != id {
			continue
		}
		alive, mostCores, mostMem := 0, 0, 0
		for _, w := range doc.Workers {
			if w.State != string(protocol.WorkerAlive) {
				continue
			}
			alive++
			mostCores = max(mostCores, w.CoresFree)
			if w.CoresFree >= d.Cores {
				if w.MemoryFree >= d.Memory {
					return ""
				}
				mostMem = max(mostMem, w.MemoryFree)
			}
		}
		switch {
		case alive == 0:
			return "no ALIVE workers"
		case mostCores < d.Cores:
			return fmt.Sprintf("the driver needs %d %s but no ALIVE worker has that many free (most free: %d)", d.Cores, plural(d.Cores, "core", "cores"), mostCores)
		default:
			return fmt.Sprintf("the driver needs %d MB but the most free memory on a worker with %d free %s is %d MB",
				d.Memory, d.Cores, plural(d.Cores, "core", "cores"), mostMem)
		}
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func restKill(ctx context.Context, o *submitOptions, stdout, stderr io.Writer) int {
	var r restResponse
	err := withLeaderREST(ctx, o, stderr, func(base string) error {
		var err error
		r, err = restCall(ctx, o, http.MethodPost, base+"/v1/submissions/kill/"+o.kill, nil)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd submit: kill %s: %v\n", o.kill, err)
		return 1
	}
	msg := r.Message
	if msg == "" {
		msg = "Kill request for " + o.kill + " submitted"
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

// ---- --exec: the application is the executors ----

// maxLostReplacements bounds how many executors lost with their worker an
// --exec application replaces, so that a cluster that keeps losing workers
// ends the application with a clear failure instead of replacing forever.
const maxLostReplacements = 10

// execTracker follows an --exec application's executors and decides when it
// is done. Done: at least `want` executors were granted (not counting those
// lost with their worker), none is launching or running, no replacement is
// outstanding, and the application was not removed. Success: every executor
// that finished did so as EXITED with exit code 0 (an EXITED report without
// a code counts as 0).
//
// Once `want` executors are granted, runExecApp sets the application's
// executor limit to 0, so an executor that exits is not replaced (a Spark
// master otherwise relaunches executors of a live app): executors whose
// command ran and ended are the application's result. An executor lost with
// its worker (state LOST, or workerLost, or its worker removed) never
// finished its command, so it is replaced: the limit is raised to the
// executors still running plus the replacements outstanding (the master
// compares the limit with the executors the application holds now, as
// Spark's executorLimit does), and set back to 0 once they are granted. At
// most maxReplace executors are replaced; a further loss is a failure.
type execTracker struct {
	mu         sync.Mutex
	want       int
	maxReplace int
	execs      map[int]*execInfo
	removed    *client.Event
	failures   []string
	succeeded  int
	replaced   int // executors lost with their worker and replaced (or being replaced)
	pending    int // replacements asked for after the freeze and not yet granted
	frozen     bool
	asked      int // the executor limit last handed to the sender
	askedSet   bool
}

type execInfo struct {
	id       int
	worker   string
	hostPort string
	state    protocol.ExecutorState
	exit     *int
	finished bool
	replaced bool // lost with its worker and replaced
}

func newExecTracker(want int) *execTracker {
	if want <= 0 {
		want = 1
	}
	return &execTracker{want: want, maxReplace: maxLostReplacements, execs: map[int]*execInfo{}}
}

// anyExecutor reports whether an executor was ever granted.
func (t *execTracker) anyExecutor() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.execs) > 0
}

// handle records e and returns a human-readable line ("" for none).
func (t *execTracker) handle(e client.Event) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := e.At.UTC().Format("15:04:05.000")
	switch e.Kind {
	case client.EventRegistered:
		return "" // printed by runExecApp, with the command
	case client.EventReregistered:
		return fmt.Sprintf("%s application registered again as %s with master %s (epoch %d): %s", ts, e.AppID, e.MasterURL, e.Epoch, e.Message)
	case client.EventMasterChanged:
		return fmt.Sprintf("%s master changed: %s (epoch %d) re-attached the application", ts, e.MasterURL, e.Epoch)
	case client.EventDisconnected:
		return fmt.Sprintf("%s lost contact with master %s; waiting for a leader", ts, e.MasterURL)
	case client.EventExecutorAdded:
		_, known := t.execs[e.ExecutorID]
		x := t.exec(e.ExecutorID)
		x.worker, x.hostPort = e.WorkerID, e.HostPort
		if x.state == "" {
			x.state = protocol.ExecutorLaunching
		}
		line := fmt.Sprintf("%s executor %d added on worker %s (%s): %d core(s), %d MB", ts, e.ExecutorID, e.WorkerID, e.HostPort, e.Cores, e.MemoryMB)
		if !known && t.pending > 0 {
			t.pending--
			line += " (a replacement)"
		}
		return line
	case client.EventExecutorUpdated, client.EventExecutorRemoved:
		x := t.exec(e.ExecutorID)
		if x.finished {
			return ""
		}
		x.state = e.State
		x.exit = e.ExitCode
		line := fmt.Sprintf("%s executor %d %s", ts, e.ExecutorID, e.State)
		if e.ExitCode != nil {
			line += fmt.Sprintf(" (exit code %d)", *e.ExitCode)
		}
		if e.Message != "" {
			line += ": " + e.Message
		}
		if e.State == protocol.ExecutorLost || e.WorkerLost {
			return line + t.lostLocked(x, string(e.State)+suffixMsg(e.Message))
		}
		if e.State == protocol.ExecutorDecommissioned && e.Kind != client.EventExecutorRemoved {
			// Its worker is decommissioning: the executor runs on and its
			// real end (EXITED, FAILED, LOST) follows.
			return line + " (its worker is decommissioning; waiting for the executor to finish)"
		}
		if e.State.Finished() || e.Kind == client.EventExecutorRemoved {
			x.finished = true
			if e.State == protocol.ExecutorExited && (e.ExitCode == nil || *e.ExitCode == 0) {
				t.succeeded++
			} else {
				why := string(e.State)
				if e.ExitCode != nil {
					why += fmt.Sprintf(" with exit code %d", *e.ExitCode)
				}
				why += suffixMsg(e.Message)
				t.failures = append(t.failures, fmt.Sprintf("executor %d %s", e.ExecutorID, why))
			}
		}
		return line
	case client.EventWorkerRemoved:
		line := fmt.Sprintf("%s worker %s removed: %s", ts, e.WorkerID, e.Message)
		ids := make([]int, 0, len(t.execs))
		for id, x := range t.execs {
			if !x.finished && x.worker != "" && x.worker == e.WorkerID {
				ids = append(ids, id)
			}
		}
		sort.Ints(ids)
		for _, id := range ids {
			line += fmt.Sprintf("; executor %d was on it", id) + t.lostLocked(t.execs[id], "LOST with worker "+e.WorkerID+suffixMsg(e.Message))
		}
		return line
	case client.EventApplicationRemoved:
		ev := e
		t.removed = &ev
		return fmt.Sprintf("%s application ended by the master: %s %s", ts, e.AppState, e.Message)
	}
	return ""
}

func suffixMsg(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

// lostLocked ends x, lost with its worker before its command finished: it
// is replaced unless maxReplace executors already were, in which case it is
// a failure. It returns what to add to the executor's line.
func (t *execTracker) lostLocked(x *execInfo, why string) string {
	x.finished = true
	if t.replaced >= t.maxReplace {
		t.failures = append(t.failures, fmt.Sprintf("executor %d %s: lost with its worker and not replaced; %d executors were already lost with their workers and replaced",
			x.id, why, t.replaced))
		return fmt.Sprintf(" (lost with its worker; not replaced: %d executors already were, the most an application replaces)", t.replaced)
	}
	x.replaced = true
	t.replaced++
	if t.frozen {
		// Past the freeze the limit is what keeps the master from launching
		// executors: ask for one more. Before it, the master replaces the
		// executor by itself (the application is below its initial limit).
		t.pending++
	}
	return fmt.Sprintf(" (lost with its worker before its command finished; replacing it, %d of at most %d)", t.replaced, t.maxReplace)
}

// nextLimit returns the executor limit the application should have now, and
// whether it differs from the last one returned (the caller then sends it).
// There is no limit to send before `want` executors were granted; from then
// on it is 0 (no replacement for an executor that exits), or, while
// replacements for executors lost with their worker are outstanding, the
// executors running plus those replacements.
func (t *execTracker) nextLimit() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.frozen {
		if len(t.execs)-t.replaced < t.want {
			return 0, false
		}
		t.frozen = true
	}
	n := t.limitLocked()
	if t.askedSet && n == t.asked {
		return n, false
	}
	t.asked, t.askedSet = n, true
	return n, true
}

// limit is the executor limit to (re-)assert, and whether there is one yet.
func (t *execTracker) limit() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limitLocked(), t.frozen
}

func (t *execTracker) limitLocked() int {
	if t.pending == 0 {
		return 0
	}
	return t.running() + t.pending
}

func (t *execTracker) exec(id int) *execInfo {
	x, ok := t.execs[id]
	if !ok {
		x = &execInfo{id: id}
		t.execs[id] = x
	}
	return x
}

// done reports whether the application is over and whether it succeeded.
func (t *execTracker) done() (over, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed != nil {
		return true, false
	}
	if len(t.failures) > 0 && t.running() == 0 {
		return true, false
	}
	if len(t.execs)-t.replaced < t.want || t.pending > 0 {
		return false, false
	}
	return t.running() == 0, len(t.failures) == 0
}

func (t *execTracker) running() int {
	n := 0
	for _, x := range t.execs {
		if !x.finished {
			n++
		}
	}
	return n
}

func (t *execTracker) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fmt.Sprintf("%d executor(s): %d exited 0, %d failed, %d lost with their worker and replaced, %d still running",
		len(t.execs), t.succeeded, len(t.failures), t.replaced, t.running())
	for _, f := range t.failures {
		s += "\n  " + f
	}
	if t.pending > 0 {
		s += fmt.Sprintf("\n  %d replacement executor(s) not granted yet", t.pending)
	}
	if t.removed != nil {
		s += fmt.Sprintf("\n  application %s by the master: %s", t.removed.AppState, t.removed.Message)
	}
	return s
}

func runExecApp(ctx context.Context, o *submitOptions, stdout, stderr io.Writer, log *logrus.Entry) int {
	app := protocol.AppDescription{
		Name:          o.appName(),
		Command:       o.positional,
		ExecutorCores: o.intProp("spark.executor.cores", 0),
		ExecutorMemMB: o.memProp("spark.executor.memory", client.DefaultExecutorMemoryMB),
		MaxCores:      o.intProp("spark.cores.max", 0),
		InitialLimit:  o.executors,
	}
	tr := newExecTracker(o.executors)
	var outMu sync.Mutex
	printf := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format, a...)
	}
	changed := make(chan struct{}, 1)
	limitKick := make(chan struct{}, 1)
	cfg := client.Config{Masters: o.masters, App: app, Secret: o.props["spark.authenticate.secret"], TLS: submitTLS(o),
		RegisterTimeout: o.wait, Logger: log}
	if h, p := o.props["spark.driver.host"], strings.TrimSpace(o.props["spark.driver.port"]); h != "" || p != "" {
		if p == "" {
			p = "0"
		}
		cfg.ListenAddr = net.JoinHostPort(h, p) // "" host: every interface
	}
	if v, ok := o.props[conf.KeyPortMaxRetries]; ok {
		cfg.MaxPortRetries, _ = strconv.Atoi(strings.TrimSpace(v)) // checked in parse
		if cfg.MaxPortRetries == 0 {
			cfg.MaxPortRetries = -1 // client.Config: 0 is the default, negative never
		}
	}
	c, err := client.New(cfg, func(e client.Event) {
		if line := tr.handle(e); line != "" {
			printf("%s\n", line)
		}
		// Set the executor limit once the target is granted and whenever it
		// changes (replacements for executors lost with their worker), and
		// again with every new leader (which may not have recovered it).
		_, newLimit := tr.nextLimit()
		_, set := tr.limit()
		if newLimit || (set && (e.Kind == client.EventMasterChanged || e.Kind == client.EventReregistered)) {
			select {
			case limitKick <- struct{}{}:
			default:
			}
		}
		select {
		case changed <- struct{}{}:
		default:
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
	printf("%s application %s (%s) registered with master %s (epoch %d); executors run: %s\n",
		time.Now().UTC().Format("15:04:05.000"), id, app.Name, c.Master(), c.Epoch(), strings.Join(app.Command, " "))
	// One sender sets the executor limit, always to the tracker's latest
	// value, so that two requests cannot overtake each other.
	senderCtx, stopSender := context.WithCancel(ctx)
	var senderWG sync.WaitGroup
	stopSending := func() { stopSender(); senderWG.Wait() }
	defer stopSending()
	senderWG.Add(1)
	go func() {
		defer senderWG.Done()
		for {
			select {
			case <-senderCtx.Done():
				return
			case <-limitKick:
			}
			n, _ := tr.limit()
			rctx, cancel := context.WithTimeout(senderCtx, o.wait)
			err := c.RequestExecutors(rctx, n)
			cancel()
			if err != nil && senderCtx.Err() == nil {
				if n == 0 {
					log.WithError(err).Warn("could not stop the master from replacing executors that exit")
				} else {
					log.WithError(err).Warnf("could not ask for replacements of executors lost with their worker (executor limit %d)", n)
				}
			}
		}
	}()
	// Until the first executor arrives, warn every spark.starvation.timeout
	// as Spark does, with the master's reason (from the heartbeats).
	senderWG.Add(1)
	go func() {
		defer senderWG.Done()
		t := time.NewTicker(o.starvation)
		defer t.Stop()
		for {
			select {
			case <-senderCtx.Done():
				return
			case <-t.C:
			}
			if tr.anyExecutor() {
				return
			}
			ts := time.Now().UTC().Format("15:04:05.000")
			printf("%s %s\n", ts, starvationWarning)
			if r := c.WaitingReason(); r != "" {
				printf("%s   the master says: %s\n", ts, r)
			}
		}
	}()
	for {
		if over, ok := tr.done(); over {
			stopSending()
			cctx, cancel := closeCtx()
			cerr := c.Close(cctx)
			cancel()
			if cerr != nil {
				fmt.Fprintf(stderr, "sparkd submit: unregister: %v\n", cerr)
			}
			if ok {
				printf("application %s finished: %s\n", c.AppID(), tr.summary())
				return 0
			}
			fmt.Fprintf(stderr, "application %s failed: %s\n", c.AppID(), tr.summary())
			return 1
		}
		select {
		case <-changed:
		case <-ctx.Done():
			fmt.Fprintf(stderr, "interrupted: killing application %s\n", c.AppID())
			stopSending()
			cctx, cancel := closeCtx()
			kerr := c.Kill(cctx)
			_ = c.Close(cctx)
			cancel()
			if kerr != nil {
				fmt.Fprintf(stderr, "sparkd submit: %v\n", kerr)
			}
			fmt.Fprintf(stderr, "application %s killed: %s\n", c.AppID(), tr.summary())
			return 130
		}
	}
}

// closeCtx bounds closing a submit's application client.
func closeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

// registerOrClose registers c's application; on failure it closes c and
// returns submit's exit code (130 when interrupted, 1 otherwise).
func registerOrClose(ctx context.Context, c *client.Client, stderr io.Writer) (string, int) {
	id, err := c.Register(ctx)
	if err == nil {
		return id, 0
	}
	cctx, cancel := closeCtx()
	defer cancel()
	_ = c.Close(cctx)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "sparkd submit: interrupted before the application was registered\n")
		return "", 130
	}
	fmt.Fprintf(stderr, "sparkd submit: %v\n", err)
	return "", 1
}
