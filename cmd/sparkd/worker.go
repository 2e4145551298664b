package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/worker"
)

// runWorker is `sparkd worker [flags] spark://m1:7077,m2:7077`: Spark's
// standalone Worker. SIGTERM/SIGINT kill its executors and drivers, tell the
// master and exit 0; SIGPWR decommissions it; SIGHUP is ignored. It exits 1
// when no master accepts it ("All masters are unresponsive! Giving up.") or
// the configuration is bad, 2 on a bad flag.
func runWorker(args []string, stdout, stderr io.Writer) int {
	cfg, log, code, done := loadDaemonLogged(conf.RoleWorker, " spark://host1:7077[,host2:7077...]", args, stdout, stderr)
	if done {
		return code
	}
	wc, err := cfg.Worker()
	if err != nil {
		fmt.Fprintf(stderr, "sparkd worker: %s\n", oneLine(err))
		return 1
	}
	wcfg := workerConfig(wc)
	err = workerTLS(&wcfg, wc)
	var w *worker.Worker
	if err == nil {
		w, err = worker.New(wcfg, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sparkd worker: %s\n", oneLine(err))
		return 1
	}
	return serveWorker(w, log)
}

// workerConfig maps the loaded configuration onto the daemon's.
func workerConfig(wc conf.Worker) worker.Config {
	c := worker.Defaults()
	c.Masters = wc.Masters
	c.Host, c.Port, c.WebUIPort, c.PublicDNS = wc.Host, wc.Port, wc.WebUIPort, wc.PublicDNS
	c.MaxPortRetries = wc.MaxPortRetries
	c.Cores, c.MemoryMB, c.WorkDir = wc.Cores, wc.MemoryMB, wc.WorkDir
	c.Timeout = wc.Timeout
	c.CleanupEnabled, c.CleanupInterval, c.AppDataTTL = wc.CleanupEnabled, wc.CleanupInterval, wc.AppDataTTL
	c.RetainedExecutorDirs = wc.RetainedExecutorDirs
	c.InitialRegistrationRetries, c.MaxRegistrationRetries = wc.InitialRegistrationRetries, wc.MaxRegistrationRetries
	c.RegistrationInitialInterval, c.RegistrationMaxInterval = wc.RegistrationInitialInterval, wc.RegistrationMaxInterval
	if wc.AuthEnabled {
		c.AuthSecret = wc.AuthSecret
	}
	c.DecommissionEnabled = wc.DecommissionEnabled
	c.UIJWS = jwsVerifier(wc.UIJWS, wc.JWSSecretKey)
	return c
}

// serveWorker runs w until a terminating signal, wiring SIGPWR to
// decommission and ignoring SIGHUP. It returns the process exit status.
func serveWorker(w *worker.Worker, log *logrus.Entry) int {
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pwr := make(chan os.Signal, 1)
	signal.Notify(pwr, syscall.SIGPWR)
	defer signal.Stop(pwr)
	log.Info("Registered signal handlers for [TERM, INT, PWR]; ignoring HUP")

	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	for {
		select {
		case <-pwr:
			log.Info("Received SIGPWR: decommissioning")
			go func() { _ = w.Decommission(ctx) }()
		case err := <-errc:
			if err != nil {
				if !errors.Is(err, worker.ErrGaveUp) { // that one is already logged in Spark's words
					log.WithError(err).Error("Worker stopped")
				}
				return 1
			}
			log.Info("Worker stopped")
			return 0
		}
	}
}

// newWorkerLogger logs in Spark's line format,
// "yy/MM/dd HH:mm:ss LEVEL Component: message key=value ...".
func newWorkerLogger(out io.Writer, level logrus.Level, component string) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(level)
	l.SetFormatter(workerLogFormatter{})
	return logrus.NewEntry(l).WithField("component", component)
}

// workerLogFormatter writes Spark's line format. An entry without a
// "component" field is shown as component (a library logging through
// logrus's standard logger).
type workerLogFormatter struct{ component string }

func (f workerLogFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b bytes.Buffer
	comp, _ := e.Data["component"].(string)
	if comp == "" {
		comp = f.component
	}
	level := map[logrus.Level]string{logrus.WarnLevel: "WARN", logrus.ErrorLevel: "ERROR", logrus.DebugLevel: "DEBUG",
		logrus.TraceLevel: "TRACE", logrus.FatalLevel: "FATAL", logrus.PanicLevel: "FATAL"}[e.Level]
	if level == "" {
		level = "INFO"
	}
	fmt.Fprintf(&b, "%s %s %s: %s", e.Time.Format("06/01/02 15:04:05"), level, comp, e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != "component" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
