// Command fleetsim runs a simulated sparkd fleet in one process (see
// package internal/fleetsim): N workers from the real worker package, N/2
// applications from the real client package and 3N/4 simulated executors,
// against real masters. It raises its open-file limit (RLIMIT_NOFILE) to
// the hard limit (or -nofile) first, prints "fleetsim: control <url>" on
// stdout once every listener is bound (and, with -hold, waits for a line on
// stdin before it starts the fleet: a start gate for several of them), serves the fleet's status as JSON on
// <url>/status, and stops the fleet cleanly on SIGTERM or SIGINT.
//
// Each simulated worker holds two listeners and each application one, plus
// their connections to the masters and the masters' to them: about 6 file
// descriptors per worker with its share of applications (17,100 for 3,000
// workers and 1,500 applications), so a 20,000 hard limit holds about 3,000
// workers; make bench-scale runs one process per 1,500. Every listener also
// takes a port from net.ipv4.ip_local_port_range.
//
// Usage: fleetsim -masters spark://h1:7077,h2:7077 -workers 1000 [flags]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/internal/fleetsim"
)

func main() {
	err := run(os.Args[1:])
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &u) && u.printed:
		os.Exit(2) // the flag package has said what is wrong, and the usage
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument (exit status 2).
type usageError struct {
	error
	printed bool
}

func run(args []string) error {
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	masters := fs.String("masters", "", "master URLs, spark://host:port[,host:port...] (required)")
	workers := fs.Int("workers", 0, "number of simulated workers N (required, >= 1)")
	apps := fs.Int("apps", -1, "number of applications (default N/2)")
	executors := fs.Int("executors", 0, "executors in total over all applications (default 3N/4)")
	cores := fs.Int("worker-cores", 2, "cores each worker offers")
	memory := fs.Int("worker-memory-mb", 2048, "memory each worker offers, MB")
	wtimeout := fs.Duration("worker-timeout", 60*time.Second, "spark.worker.timeout, as the masters have it")
	appHB := fs.Duration("app-heartbeat", 0, "AppHeartbeat period of the applications (default: the client package's)")
	lifetime := fs.Duration("executor-lifetime", 0, "end each executor after this long (default: run until killed)")
	listen := fs.String("listen", "127.0.0.1:0", "control listener address")
	nofile := fs.Uint64("nofile", 0, "RLIMIT_NOFILE to set (default: the hard limit; above it needs root)")
	verbose := fs.Bool("v", false, "log the fleet's progress")
	hold := fs.Bool("hold", false, "once ready, wait for a line on stdin before starting the fleet (EOF: exit)")
	rate := fs.Float64("start-rate", 0, "start the workers at this many per second, the applications with them (default: all at once)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{error: err, printed: true}
	}
	if fs.NArg() > 0 {
		return usageError{error: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *masters == "" {
		return usageError{error: errors.New("-masters is required")}
	}
	if *workers < 1 {
		return usageError{error: fmt.Errorf("-workers %d: want at least 1", *workers)}
	}
	if *apps < -1 || *executors < 0 {
		return usageError{error: fmt.Errorf("-apps %d, -executors %d: must not be negative", *apps, *executors)}
	}
	var ms []string
	for _, m := range strings.Split(strings.TrimPrefix(*masters, "spark://"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			if _, _, err := net.SplitHostPort(m); err != nil {
				return usageError{error: fmt.Errorf("-masters: %q is not host:port: %w", m, err)}
			}
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return usageError{error: fmt.Errorf("-masters %q names no master", *masters)}
	}

	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	soft, hard, err := fleetsim.RaiseFileLimit(*nofile)
	if err != nil {
		return err
	}
	l := logrus.New()
	l.SetOutput(os.Stderr)
	if !*verbose {
		l.SetLevel(logrus.WarnLevel)
	}
	log := logrus.NewEntry(l).WithField("component", "fleetsim")
	log.Infof("open-file limit %d (hard %d)", soft, hard)

	cfg := fleetsim.Config{Masters: ms, Workers: *workers, Executors: *executors, WorkerCores: *cores,
		WorkerMemoryMB: *memory, WorkerTimeout: *wtimeout, AppHeartbeat: *appHB, ExecutorLifetime: *lifetime, StartRate: *rate, Log: log}
	switch {
	case *apps == 0:
		cfg.NoApps = true
	case *apps > 0:
		cfg.Apps = *apps
	}
	created := time.Now()
	f, err := fleetsim.New(cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	log.Infof("created %d workers and their listeners in %s", *workers, time.Since(created).Round(time.Millisecond))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("control listener %s: %w", *listen, err)
	}
	srv := fleetsim.NewControlServer(f.Handler())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Printf("%shttp://%s\n", fleetsim.ControlPrefix, ln.Addr())
	if *hold {
		gate := make(chan error, 1)
		go func() {
			_, err := bufio.NewReader(os.Stdin).ReadString('\n')
			gate <- err
		}()
		select {
		case <-ctx.Done():
			return nil
		case err := <-gate:
			if err != nil {
				return fmt.Errorf("-hold: stdin closed before the start line: %w", err)
			}
		}
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("stopping the fleet")
		return nil
	case err := <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("control listener: %w", err)
	}
}
