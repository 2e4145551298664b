package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/task/executor"
)

// envAuthSecret is Spark's environment variable for the secret handed to
// executors (SecurityManager.ENV_AUTH_SECRET).
const envAuthSecret = executor.EnvAuthSecret

const executorUsage = `Usage: sparkd executor [flags]

The executor backend of a task application (sparkd submit --tasks), launched by
a worker: it registers with its driver, runs tasks, and exits when the driver
says so or has been unreachable for spark.network.timeout. Every flag defaults
to the environment the worker sets (SPARK_DRIVER_URL, SPARK_APP_ID,
SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_WORKER_ID). With --fetch, it is
the launcher of a Go driver's executor: it fetches the driver's program (and
--file files) from the driver, checks their sha256, and runs the program, which
serves the driver's task functions. The secret comes from
_SPARK_AUTH_SECRET, SPARK_AUTHENTICATE_SECRET, or spark.authenticate.secret in
$SPARK_CONF_DIR/spark-defaults.conf.

Flags:
`

func runExecutor(args []string, stdout, stderr io.Writer) int {
	return runExecutorEnv(args, stdout, stderr, os.Getenv)
}

func runExecutorEnv(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("sparkd executor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, executorUsage); fs.PrintDefaults() }
	driverURL := fs.String("driver-url", getenv("SPARK_DRIVER_URL"), "the driver's task server URL")
	appID := fs.String("app-id", getenv("SPARK_APP_ID"), "application id")
	execID := fs.String("executor-id", getenv("SPARK_EXECUTOR_ID"), "executor id")
	workerID := fs.String("worker-id", getenv("SPARK_WORKER_ID"), "worker id")
	host := fs.String("hostname", "", "this host's name as the driver should see it (default: the machine's)")
	cores := fs.String("cores", getenv("SPARK_EXECUTOR_CORES"), "cores of this executor")
	timeout := fs.String("network-timeout", "120s", "spark.network.timeout until the driver sends its own")
	verbose := fs.Bool("verbose", false, "debug logging")
	fetch := fs.String("fetch", "", "NAME:SHA256:URL of a Go driver program to fetch from its driver, check and run as this executor")
	var files multiFlag
	fs.Var(&files, "file", "NAME:SHA256:URL of a file to fetch into the work directory (with --fetch; repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sparkd executor: unexpected arguments %q\n", fs.Args())
		return 2
	}
	n, err := strconv.Atoi(strings.TrimSpace(*cores))
	if err != nil || n <= 0 {
		fmt.Fprintf(stderr, "sparkd executor: --cores %q: want a positive integer\n", *cores)
		return 2
	}
	to, err := conf.ParseDuration(*timeout, time.Second)
	if err != nil || to <= 0 {
		fmt.Fprintf(stderr, "sparkd executor: --network-timeout %q: want a positive duration (120s)\n", *timeout)
		return 2
	}
	secret, err := executorSecret(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sparkd executor: %v\n", err)
		return 2
	}
	if *fetch != "" {
		return fetchAndExec(*fetch, files, fetchEnv{driverURL: *driverURL, appID: *appID, execID: *execID, workerID: *workerID,
			host: *host, cores: n, timeout: to, secret: secret}, stderr)
	}
	if len(files) > 0 {
		fmt.Fprintln(stderr, "sparkd executor: --file needs --fetch (the program that uses the files)")
		return 2
	}
	l := logrus.New()
	l.Out = stderr
	l.SetFormatter(cliFormatter{})
	l.SetLevel(logrus.InfoLevel)
	if *verbose {
		l.SetLevel(logrus.DebugLevel)
	}
	b, err := executor.New(executor.Config{DriverURL: *driverURL, AppID: *appID, ExecutorID: *execID, WorkerID: *workerID,
		Host: *host, Cores: n, Secret: secret, NetworkTimeout: to, Stdout: stdout, Stderr: stderr,
		Logger: logrus.NewEntry(l)})
	if err != nil {
		fmt.Fprintf(stderr, "sparkd executor: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "sparkd executor: %v\n", err)
		return 1
	}
	return 0
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// fetchEnv is what the fetched program is told about its executor.
type fetchEnv struct {
	driverURL, appID, execID, workerID, host string
	cores                                    int
	timeout                                  time.Duration
	secret                                   string
}

// fetchAndExec fetches a Go driver's program (and its files) from the
// driver into the application's cache on this worker (../files, next to
// the executors' directories, removed with the application's directory),
// checks their sha256, and replaces this process with the program in
// executor mode. It returns only on failure: a corrupted download is never
// run.
func fetchAndExec(prog string, files []string, e fetchEnv, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "sparkd executor: %v\n", err)
		return code
	}
	// A failure to fetch is told to the driver too (its user sees why no
	// executor starts), then the executor exits without running anything.
	report := func(err error) int {
		host := e.host
		if host == "" {
			host, _ = os.Hostname()
		}
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if rerr := executor.ReportStartFailure(rctx, e.driverURL, e.secret, e.appID, e.execID, host, err); rerr != nil {
			fmt.Fprintf(stderr, "sparkd executor: could not tell the driver: %v\n", rerr)
		}
		return fail(1, err)
	}
	spec, err := executor.ParseFetchSpec(prog)
	if err != nil {
		return fail(2, fmt.Errorf("--fetch: %w", err))
	}
	var specs []executor.FetchSpec
	for _, f := range files {
		s, err := executor.ParseFetchSpec(f)
		if err != nil {
			return fail(2, fmt.Errorf("--file: %w", err))
		}
		specs = append(specs, s)
	}
	if e.driverURL == "" || e.appID == "" || e.execID == "" {
		return fail(2, errors.New("--fetch needs --driver-url, --app-id and --executor-id (or SPARK_DRIVER_URL, SPARK_APP_ID, SPARK_EXECUTOR_ID)"))
	}
	wd, err := os.Getwd()
	if err != nil {
		return fail(1, err)
	}
	cache := filepath.Join(filepath.Dir(wd), "files")
	ctx, cancel := context.WithTimeout(context.Background(), executor.DefaultFetchTimeout)
	defer cancel()
	start := time.Now()
	path, err := executor.Fetch(ctx, spec, cache, e.secret, 0o755)
	if err != nil {
		return report(err)
	}
	fmt.Fprintf(stderr, "Fetched %s (sha256 %s) from %s in %s\n", spec.Name, spec.SHA256, spec.URL, time.Since(start).Round(time.Millisecond))
	for _, s := range specs {
		got, err := executor.Fetch(ctx, s, cache, e.secret, 0o644)
		if err == nil {
			_, err = executor.Place(got, wd)
		}
		if err != nil {
			return report(err)
		}
		fmt.Fprintf(stderr, "Fetched %s (sha256 %s) from %s\n", s.Name, s.SHA256, s.URL)
	}
	env := append(os.Environ(),
		executor.EnvGoExecutor+"=1",
		executor.EnvHost+"="+e.host,
		executor.EnvNetworkTimeout+"="+strconv.FormatInt(e.timeout.Milliseconds(), 10)+"ms",
		"SPARK_DRIVER_URL="+e.driverURL, "SPARK_APP_ID="+e.appID, "SPARK_EXECUTOR_ID="+e.execID,
		"SPARK_WORKER_ID="+e.workerID, "SPARK_EXECUTOR_CORES="+strconv.Itoa(e.cores))
	if e.secret != "" {
		env = append(env, executor.EnvAuthSecret+"="+e.secret)
	}
	err = syscall.Exec(path, []string{path}, env)
	return fail(1, fmt.Errorf("run %s: %w", path, err))
}

// executorSecret finds spark.authenticate.secret the way an executor on a
// worker can: it is never sent through the master.
func executorSecret(getenv func(string) string) (string, error) {
	for _, k := range []string{envAuthSecret, "SPARK_AUTHENTICATE_SECRET"} {
		if v := getenv(k); v != "" {
			return v, nil
		}
	}
	dir := getenv("SPARK_CONF_DIR")
	if dir == "" {
		return "", nil
	}
	f, err := os.Open(filepath.Join(dir, "spark-defaults.conf"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	props, err := conf.ParseProperties(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	secret := ""
	for _, p := range props {
		if p.Key == "spark.authenticate.secret" {
			secret = strings.TrimSpace(p.Value)
		}
	}
	return secret, nil
}
