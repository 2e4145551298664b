package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/recovery/zkrecovery"
	"github.com/sparkd/sparkd/zkutil"
)

// runMaster is `sparkd master [flags]`: Spark's standalone Master with
// sparkd's HA. It starts in STANDBY and campaigns through the recovery mode's
// Elector. SIGTERM/SIGINT resign leadership first (fast hand-off), then shut
// down and exit 0; SIGHUP is logged and ignored. A bad flag exits 2, a bad
// configuration or a fatal error 1.
func runMaster(args []string, stdout, stderr io.Writer) int {
	cfg, log, code, done := loadDaemonLogged(conf.RoleMaster, "", args, stdout, stderr)
	if done {
		return code
	}
	mc, err := cfg.Master()
	if err != nil {
		fmt.Fprintf(stderr, "sparkd master: %s\n", oneLine(err))
		return 1
	}
	return serveMaster(mc, log)
}

// masterConfig maps the loaded configuration onto the daemon's.
func masterConfig(mc conf.Master) master.Config {
	c := master.DefaultConfig()
	c.Host, c.Port, c.WebUIPort, c.PublicDNS = mc.Host, mc.Port, mc.WebUIPort, mc.PublicDNS
	c.RESTEnabled, c.RESTPort = mc.RESTEnabled, mc.RESTPort
	c.MaxPortRetries = mc.MaxPortRetries
	c.WorkerTimeout, c.RecoveryTimeout, c.DeadWorkerPersistence = mc.WorkerTimeout, mc.RecoveryTimeout, mc.DeadWorkerPersistence
	c.SpreadOut, c.DefaultCores, c.MaxExecutorRetries = mc.SpreadOut, mc.DefaultCores, mc.MaxExecutorRetries
	c.RetainedApplications, c.RetainedDrivers = mc.RetainedApplications, mc.RetainedDrivers
	c.UIKillEnabled = mc.UIKillEnabled
	if mc.AuthEnabled {
		c.AuthSecret = mc.AuthSecret
		c.AllowAppSubmit = mc.AllowAppSubmit
	}
	c.MaxWorkers, c.MaxApps, c.MaxDrivers, c.TrustWorkerAddress = mc.MaxWorkers, mc.MaxApps, mc.MaxDrivers, mc.TrustWorkerAddress
	c.UIJWS = jwsVerifier(mc.UIJWS, mc.JWSSecretKey)
	c.RESTJWS = jwsVerifier(mc.RESTJWS, mc.JWSSecretKey)
	c.ZKEnabled = strings.EqualFold(mc.RecoveryMode, string(recovery.ModeZooKeeper))
	return c
}

// serveMaster runs a master until SIGTERM/SIGINT or a fatal error and
// returns the exit status.
func serveMaster(mc conf.Master, log *logrus.Entry) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log.Info("Registered signal handlers for [TERM, HUP, INT]")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Until the master runs, TERM/INT abort start-up (e.g. waiting for ZooKeeper).
	startDone := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					log.Info("RECEIVED SIGNAL HUP; ignoring it")
					continue
				}
				log.Infof("RECEIVED SIGNAL %s during start-up", sigName(s))
				cancel()
				return
			case <-startDone:
				return
			}
		}
	}()
	elector, store, fence, closeRecovery, err := buildRecovery(ctx, mc, log)
	close(startDone)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		log.WithError(err).Error("Could not start the recovery mode")
		return 1
	}
	defer closeRecovery()

	mcfg := masterConfig(mc)
	mcfg.SelfFenceAfter = fence
	if err := masterTLS(&mcfg, mc); err != nil {
		log.WithError(err).Error("Could not start the master")
		return 1
	}
	m, err := master.New(mcfg, elector, store, log)
	if err != nil {
		log.WithError(err).Error("Could not start the master")
		return 1
	}
	m.Registry().MustRegister(zkCallSeconds)
	defer m.Close()
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- m.Run(runCtx) }()
	if ctx.Err() != nil { // a signal arrived while the recovery mode started
		stop()
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				log.Info("RECEIVED SIGNAL HUP; ignoring it")
				continue
			}
			log.Infof("RECEIVED SIGNAL %s", sigName(s))
			rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := m.Resign(rctx); err != nil {
				log.WithError(err).Warn("Could not resign leadership; the successor waits for the session timeout")
			}
			rcancel()
			stop()
			select {
			case err := <-errc:
				if err != nil {
					log.WithError(err).Error("Master stopped with an error")
				}
			case <-time.After(15 * time.Second):
				log.Error("Master did not stop within 15s; exiting anyway")
			}
			log.Info("Master shut down")
			return 0
		case err := <-errc:
			if err != nil {
				log.WithError(err).Error("Master stopped")
				return 1
			}
			return 0
		}
	}
}

func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	}
	return s.String()
}

// buildRecovery chooses the Elector and Store of spark.deploy.recoveryMode.
// The returned close function releases them (after Run has returned).
//
// fence is the self-fence bound for master.Config.SelfFenceAfter (ZOOKEEPER
// only): 2/3 of the smaller of the requested and negotiated session timeouts.
func buildRecovery(ctx context.Context, mc conf.Master, log *logrus.Entry) (_ recovery.Elector, _ recovery.Store, fence time.Duration, _ func(), _ error) {
	switch mode := recovery.Mode(strings.ToUpper(mc.RecoveryMode)); mode {
	case recovery.ModeNone, "":
		e, s := recovery.NewNone()
		return e, s, 0, func() { s.Close() }, nil
	case recovery.ModeFilesystem:
		log.Infof("Persisting recovery state to directory %s", mc.RecoveryDirectory)
		e, s, err := recovery.NewFilesystem(mc.RecoveryDirectory, log.WithField("component", "recovery"))
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("spark.deploy.recoveryMode=FILESYSTEM (spark.deploy.recoveryDirectory=%s): %w", mc.RecoveryDirectory, err)
		}
		return e, s, 0, func() { s.Close() }, nil
	case recovery.ModeZooKeeper:
		log.Infof("Persisting recovery state to ZooKeeper %s under %s", mc.ZooKeeper.URL, mc.ZooKeeper.Dir)
		zlog := log.WithField("component", "zookeeper")
		zc := zkutil.Config{Connect: mc.ZooKeeper.URL, SessionTimeout: mc.ZooKeeper.SessionTimeout,
			ConnectTimeout: mc.ZooKeeper.ConnectionTimeout, Auth: mc.ZooKeeper.Auth, Logger: zlog,
			ObserveCall: observeZKCall}
		if mc.ZooKeeper.Auth != "" && !mc.ZooKeeper.ACL {
			zc.ACL = zk.WorldACL(zk.PermAll)
		}
		conn, err := connectZK(ctx, zc, log)
		if err != nil {
			return nil, nil, 0, nil, err
		}
		if mc.ZooKeeper.ACL {
			if err := applyZKACL(ctx, conn, mc.ZooKeeper.Dir, log); err != nil {
				conn.Close()
				return nil, nil, 0, nil, err
			}
		}
		fence = mc.ZooKeeper.FenceBound()
		if n := conn.NegotiatedTimeout(); n > 0 {
			fence = min(fence, n*2/3)
		}
		log.Infof("Connected to ZooKeeper; negotiated session timeout %s", conn.NegotiatedTimeout())
		log.Info("Starting ZooKeeper LeaderElection agent")
		// The elector and the master self-fence on the same bound.
		e, s, err := zkrecovery.New(conn, mc.ZooKeeper.Dir, zlog, zkrecovery.WithSelfFenceAfter(fence),
			zkrecovery.WithEpochFloor(mc.ZooKeeper.EpochFloor))
		if err != nil {
			conn.Close()
			return nil, nil, 0, nil, fmt.Errorf("spark.deploy.zookeeper.dir=%s: %w", mc.ZooKeeper.Dir, err)
		}
		return e, s, fence, func() { s.Close(); conn.Close() }, nil
	default:
		return nil, nil, 0, nil, fmt.Errorf("spark.deploy.recoveryMode: unknown mode %q (want NONE, FILESYSTEM or ZOOKEEPER)", mc.RecoveryMode)
	}
}

// connectZK connects, retrying while ZooKeeper is unreachable (masters may
// start before ZooKeeper, SPARK-25101), until ctx is done. A bad connect
// string or configuration fails at once.
func connectZK(ctx context.Context, zc zkutil.Config, log *logrus.Entry) (*zkutil.Conn, error) {
	backoff := time.Second
	for {
		conn, err := zkutil.Connect(ctx, zc)
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, zkutil.ErrBadConnect) || errors.Is(err, zkutil.ErrBadConfig) || errors.Is(err, zkutil.ErrBadPath) {
			return nil, fmt.Errorf("spark.deploy.zookeeper.url=%s: %w", zc.Connect, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.WithError(err).Warnf("Could not connect to ZooKeeper %s; retrying in %s", zc.Connect, backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// zkCallSeconds is the latency of every ZooKeeper call of this master, on
// its /metrics.
var zkCallSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "sparkd_zookeeper_call_seconds",
	Help:    "Latency of ZooKeeper calls, by operation.",
	Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
}, []string{"op"})

func observeZKCall(op string, d time.Duration, _ error) {
	zkCallSeconds.WithLabelValues(op).Observe(d.Seconds())
}

// applyZKACL puts the configured ACL (spark.deploy.zookeeper.acl with
// spark.deploy.zookeeper.auth) on every existing node under dir: nodes a
// master wrote before ACLs were turned on stay open otherwise. Each change
// is logged; a node it may not change (another credential owns it) stops
// the master with an error naming it.
func applyZKACL(ctx context.Context, conn *zkutil.Conn, dir string, log *logrus.Entry) error {
	changes, err := conn.ApplyACL(ctx, dir)
	for _, ch := range changes {
		log.WithField("was", fmt.Sprint(ch.Was)).Infof("Applied the ZooKeeper ACL to existing node %s", ch.Path)
	}
	if err != nil {
		return fmt.Errorf("spark.deploy.zookeeper.acl=true: could not apply the ACL under %s (spark.deploy.zookeeper.auth must be a credential allowed to change every node): %w", dir, err)
	}
	if len(changes) > 0 {
		log.Infof("Applied the ZooKeeper ACL to %d existing node(s) under %s", len(changes), dir)
	}
	return nil
}
