package worker

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("worker: invalid config")

// ErrGaveUp is returned by Run when no master accepted the worker within the
// configured number of registration attempts (Spark: "All masters are
// unresponsive! Giving up."). The command maps it to exit status 1.
var ErrGaveUp = errors.New("worker: all masters are unresponsive, giving up")

// Config is a worker's typed configuration. Zero values mean "use the
// default" where Defaults says so; New validates the rest.
type Config struct {
	// Masters are the master RPC addresses: "host:port" or "spark://host:port".
	Masters []string
	// Host is the address the command listener binds and advertises
	// ("" = the machine's hostname). Port 0 binds a random port.
	Host string
	Port int
	// WebUIPort is the web UI port (Spark: 8081). 0 binds a random port.
	WebUIPort int
	// NoWebUI serves no web UI (WebUIPort is ignored). Not a Spark
	// setting: the fleet simulator's thousands of workers in one process
	// would otherwise need thousands more ports.
	NoWebUI bool
	// MaxPortRetries is spark.port.maxRetries: a busy Port or WebUIPort is
	// retried on the next port, this many times (Defaults: 16; 0 = never).
	MaxPortRetries int
	// PublicDNS, when set, is advertised in the web UI URL (SPARK_PUBLIC_DNS).
	PublicDNS string
	// Cores and MemoryMB are what the worker offers (> 0).
	Cores    int
	MemoryMB int
	// WorkDir holds one directory per application and per driver.
	WorkDir string
	// Timeout is spark.worker.timeout; heartbeats go every Timeout/4.
	Timeout time.Duration
	// Work-dir cleanup (spark.worker.cleanup.*): every CleanupInterval, app
	// and driver directories of work that no longer runs here and that hold
	// no file newer than AppDataTTL are deleted.
	CleanupEnabled  bool
	CleanupInterval time.Duration
	AppDataTTL      time.Duration
	// Registration: the first InitialRegistrationRetries attempts are
	// RegistrationInitialInterval apart, later ones RegistrationMaxInterval,
	// each with ±50% jitter; after MaxRegistrationRetries attempts the worker
	// gives up (ErrGaveUp).
	InitialRegistrationRetries  int
	MaxRegistrationRetries      int
	RegistrationInitialInterval time.Duration
	RegistrationMaxInterval     time.Duration
	// AuthSecret is spark.authenticate.secret ("" = no authentication).
	AuthSecret string
	// UIJWS, when set, is the JWSFilter (spark.ui.filters) of the web UI's
	// log pages: executors' and drivers' output needs a bearer JWS.
	UIJWS *protocol.JWSVerifier
	// RPCTLS and UITLS turn TLS on for the command listener (and the
	// worker's calls to masters) and the web UI; nil = plaintext.
	RPCTLS, UITLS *protocol.TLS
	// DecommissionEnabled allows Decommission (spark.decommission.enabled).
	DecommissionEnabled bool
	// KillGracePeriod is how long a killed executor or driver gets between
	// SIGTERM and SIGKILL (default 10 s, Spark's EXECUTOR_TERMINATE_TIMEOUT).
	KillGracePeriod time.Duration
	// RequestTimeout bounds every RPC to a master (default 10 s).
	RequestTimeout time.Duration
	// RetainedExecutors and RetainedDrivers bound the finished lists shown in
	// the UI (spark.worker.ui.retainedExecutors/Drivers, default 1000).
	RetainedExecutors int
	RetainedDrivers   int
	// Launcher starts executor and driver processes (nil = real processes,
	// the default). A fleet simulator or a test passes an in-memory fake;
	// everything else about executors and drivers is unchanged.
	Launcher Launcher
	// RetainedExecutorDirs is how many directories of finished executors
	// each application keeps in the work dir (default 10): when one more
	// finishes, the oldest is removed, so that executors that keep failing
	// cannot fill the disk. The directories of running executors are never
	// removed; the whole application directory goes with the cleanup.
	RetainedExecutorDirs int
	// Clock drives registration backoff, heartbeats, report retries, kill
	// grace periods and cleanup (nil = real time; tests pass a fake).
	Clock Clock
}

// Defaults returns sparkd's worker defaults. Cores, MemoryMB, Masters and
// WorkDir have no useful default here; the conf package computes them.
func Defaults() Config {
	return Config{
		WebUIPort:                   8081,
		MaxPortRetries:              protocol.DefaultMaxPortRetries,
		Timeout:                     60 * time.Second,
		CleanupEnabled:              true,
		CleanupInterval:             30 * time.Minute,
		AppDataTTL:                  7 * 24 * time.Hour,
		InitialRegistrationRetries:  6,
		MaxRegistrationRetries:      16,
		RegistrationInitialInterval: time.Second,
		RegistrationMaxInterval:     10 * time.Second,
		KillGracePeriod:             10 * time.Second,
		RequestTimeout:              10 * time.Second,
		RetainedExecutors:           1000,
		RetainedDrivers:             1000,
		RetainedExecutorDirs:        10,
	}
}

// withDefaults fills zero durations and counts from Defaults.
func (c Config) withDefaults() Config {
	d := Defaults()
	orDefault(&c.Timeout, d.Timeout)
	orDefault(&c.CleanupInterval, d.CleanupInterval)
	orDefault(&c.AppDataTTL, d.AppDataTTL)
	orDefault(&c.InitialRegistrationRetries, d.InitialRegistrationRetries)
	orDefault(&c.MaxRegistrationRetries, d.MaxRegistrationRetries)
	orDefault(&c.RegistrationInitialInterval, d.RegistrationInitialInterval)
	orDefault(&c.RegistrationMaxInterval, d.RegistrationMaxInterval)
	orDefault(&c.KillGracePeriod, d.KillGracePeriod)
	orDefault(&c.RequestTimeout, d.RequestTimeout)
	orDefault(&c.RetainedExecutors, d.RetainedExecutors)
	orDefault(&c.RetainedDrivers, d.RetainedDrivers)
	orDefault(&c.RetainedExecutorDirs, d.RetainedExecutorDirs)
	if c.Host == "" {
		if h, err := os.Hostname(); err == nil {
			c.Host = h
		}
	}
	return c
}

// orDefault sets *v to def when *v is its zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate checks the fields and their relations; messages name the Spark key.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if len(c.Masters) == 0 {
		return bad("no master URL given (spark://host:port[,host:port...])")
	}
	for _, m := range c.Masters {
		if strings.TrimSpace(m) == "" || strings.Contains(strings.TrimPrefix(m, "spark://"), "/") {
			return bad("master URL %q is malformed", m)
		}
	}
	switch {
	case c.Host == "":
		return bad("host is empty and the hostname is unknown (--host)")
	case c.Port < 0 || c.Port > 65535:
		return bad("port %d is out of range (--port, SPARK_WORKER_PORT)", c.Port)
	case c.WebUIPort < 0 || c.WebUIPort > 65535:
		return bad("web UI port %d is out of range (--webui-port, SPARK_WORKER_WEBUI_PORT)", c.WebUIPort)
	case c.MaxPortRetries < 0:
		return bad("spark.port.maxRetries %d must not be negative", c.MaxPortRetries)
	case c.Cores <= 0:
		return bad("cores %d must be positive (--cores, SPARK_WORKER_CORES)", c.Cores)
	case c.MemoryMB <= 0:
		return bad("memory %d MB must be positive (--memory, SPARK_WORKER_MEMORY)", c.MemoryMB)
	case c.WorkDir == "":
		return bad("work dir is empty (--work-dir, SPARK_WORKER_DIR)")
	case c.Timeout < 4*time.Millisecond:
		return bad("spark.worker.timeout %v is too short", c.Timeout)
	case c.InitialRegistrationRetries < 1:
		return bad("spark.worker.initialRegistrationRetries %d must be at least 1", c.InitialRegistrationRetries)
	case c.MaxRegistrationRetries < c.InitialRegistrationRetries:
		return bad("spark.worker.maxRegistrationRetries %d must be at least spark.worker.initialRegistrationRetries %d",
			c.MaxRegistrationRetries, c.InitialRegistrationRetries)
	case c.RegistrationInitialInterval <= 0 || c.RegistrationMaxInterval < c.RegistrationInitialInterval:
		return bad("registration intervals %v/%v: initial must be positive and at most the max",
			c.RegistrationInitialInterval, c.RegistrationMaxInterval)
	case c.CleanupEnabled && c.CleanupInterval <= 0:
		return bad("spark.worker.cleanup.interval %v must be positive", c.CleanupInterval)
	case c.AppDataTTL < 0:
		return bad("spark.worker.cleanup.appDataTtl %v must not be negative", c.AppDataTTL)
	case c.RetainedExecutorDirs < 0:
		return bad("spark.worker.retainedExecutorDirs %d must not be negative", c.RetainedExecutorDirs)
	case c.KillGracePeriod < 0 || c.RequestTimeout <= 0:
		return bad("kill grace period %v / request timeout %v must be positive", c.KillGracePeriod, c.RequestTimeout)
	}
	return nil
}
