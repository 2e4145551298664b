package conf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// KeyError is a bad value: it names the key, the value and where it came
// from. It matches ErrInvalid with errors.Is, and its cause too.
type KeyError struct {
	Key   string
	Value Value
	Err   error // what is wrong
}

func (e *KeyError) Error() string {
	raw := e.Value.Raw
	if raw != "" && isSecretKey(e.Key) {
		raw = printable(e.Key, raw)
	}
	return fmt.Sprintf("conf: %s=%q (from %s): %s", e.Key, raw, e.Value.Source, strings.TrimPrefix(e.Err.Error(), "conf: invalid value: "))
}

// Unwrap returns ErrInvalid and the cause.
func (e *KeyError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Recovery modes sparkd supports.
const (
	RecoveryNone       = "NONE"
	RecoveryFilesystem = "FILESYSTEM"
	RecoveryZooKeeper  = "ZOOKEEPER"
)

// Master is the typed configuration of a master daemon. Durations are
// positive; ports are 0-65535, where 0 asks for a random port (tests).
type Master struct {
	Host      string // SPARK_MASTER_HOST / --host; default: SPARK_LOCAL_IP, else this host's name
	Port      int    // SPARK_MASTER_PORT / --port; 7077
	WebUIPort int    // spark.master.ui.port, SPARK_MASTER_WEBUI_PORT, --webui-port; 8080
	PublicDNS string // SPARK_PUBLIC_DNS; "" = Host

	RESTEnabled bool // spark.master.rest.enabled; true (sparkd; Spark 4: false)
	RESTPort    int  // spark.master.rest.port; 6066

	MaxPortRetries int // spark.port.maxRetries; 16; a busy port P is retried on P+1..P+16

	RecoveryMode      string // NONE | FILESYSTEM | ZOOKEEPER (upper case)
	RecoveryDirectory string // spark.deploy.recoveryDirectory; required for FILESYSTEM
	ZooKeeper         ZooKeeper

	WorkerTimeout         time.Duration // spark.worker.timeout; 60s
	RecoveryTimeout       time.Duration // spark.deploy.recoveryTimeout; default WorkerTimeout
	DeadWorkerPersistence int           // spark.dead.worker.persistence; 15

	SpreadOut            bool // spark.deploy.spreadOut; true
	DefaultCores         int  // spark.deploy.defaultCores; 0 = unlimited (unset)
	MaxExecutorRetries   int  // spark.deploy.maxExecutorRetries; 10; -1 disables
	RetainedApplications int  // spark.deploy.retainedApplications; 200
	RetainedDrivers      int  // spark.deploy.retainedDrivers; 200
	UIKillEnabled        bool // spark.ui.killEnabled; true

	AuthEnabled bool   // spark.authenticate; false
	AuthSecret  string // spark.authenticate.secret; required when AuthEnabled
	// AllowAppSubmit is spark.authenticate.allowApplicationSubmit (false).
	AllowAppSubmit bool
	// UIJWS and RESTJWS: spark.ui.filters / spark.master.rest.filters name
	// the JWSFilter; JWSSecretKey is its key (base64url).
	UIJWS, RESTJWS bool
	JWSSecretKey   string
	// Record limits (spark.deploy.maxWorkers/maxApplications/maxDrivers)
	// and spark.deploy.trustWorkerAddress.
	MaxWorkers, MaxApps, MaxDrivers int
	TrustWorkerAddress              bool
	// RPCTLS, UITLS, RESTTLS: spark.ssl.rpc.*, spark.ssl.standalone.* /
	// spark.ssl.ui.*, spark.ssl.rest.* / spark.ssl.standalone.*, each over
	// spark.ssl.*.
	RPCTLS, UITLS, RESTTLS TLS
}

// TLS is one service's spark.ssl settings.
type TLS struct {
	Enabled        bool
	CertChain      string // PEM
	PrivateKey     string // PEM
	TrustStore     string // PEM CA bundle; "" = the system's
	NeedClientAuth bool
	Protocol       string // TLSv1.2 (default) or TLSv1.3
}

// ZooKeeper is the ZOOKEEPER recovery mode's connection configuration.
type ZooKeeper struct {
	URL               string        // spark.deploy.zookeeper.url: zk1:2181,zk2:2181[/chroot]
	Dir               string        // spark.deploy.zookeeper.dir; /spark
	SessionTimeout    time.Duration // requested session timeout; 10s; at least 2s
	ConnectionTimeout time.Duration // 15s
	Auth              string        // "user:password" digest credentials; "" = none
	ACL               bool          // protect created znodes with a digest ACL for Auth
	// EpochFloor is the lowest epoch a leader opens (0: none); for a
	// fleet moved to a rebuilt ensemble, whose zxids restart low.
	EpochFloor int64
}

// FenceBound is how long a leader may go without hearing from ZooKeeper
// before it stops acting as leader: 2/3 of the requested session timeout,
// the point at which a client considers the connection lost. Callers should
// recompute it from the negotiated timeout, which may be lower.
func (z ZooKeeper) FenceBound() time.Duration { return z.SessionTimeout * 2 / 3 }

// MinSessionTimeout is the smallest spark.deploy.zookeeper.sessionTimeout
// accepted, so that the self-fence bound leaves a useful margin.
const MinSessionTimeout = 2 * time.Second

// Worker is the typed configuration of a worker daemon.
type Worker struct {
	Masters   []string // host:port of every master (positional argument or spark.master); required
	Host      string   // --host, SPARK_LOCAL_HOSTNAME; default: SPARK_LOCAL_IP, else this host's name
	Port      int      // SPARK_WORKER_PORT / --port; 0 = random
	WebUIPort int      // spark.worker.ui.port, SPARK_WORKER_WEBUI_PORT, --webui-port; 8081
	PublicDNS string   // SPARK_PUBLIC_DNS

	MaxPortRetries int // spark.port.maxRetries; 16

	Cores    int    // SPARK_WORKER_CORES / --cores; default all cores
	MemoryMB int    // SPARK_WORKER_MEMORY / --memory; default total RAM - 1 GiB (at least 1 GiB)
	WorkDir  string // SPARK_WORKER_DIR / --work-dir; default <home>/work

	Timeout time.Duration // spark.worker.timeout; 60s; heartbeat every Timeout/4

	CleanupEnabled  bool          // spark.worker.cleanup.enabled; true
	CleanupInterval time.Duration // spark.worker.cleanup.interval; 1800s
	AppDataTTL      time.Duration // spark.worker.cleanup.appDataTtl; 604800s
	// RetainedExecutorDirs is spark.worker.retainedExecutorDirs (sparkd;
	// 10, at least 1): the directories of this many finished executors of
	// an application are kept, older ones removed.
	RetainedExecutorDirs int

	InitialRegistrationRetries  int           // spark.worker.initialRegistrationRetries; 6
	MaxRegistrationRetries      int           // spark.worker.maxRegistrationRetries; 16
	RegistrationInitialInterval time.Duration // spark.worker.registration.initialInterval; 1s (sparkd)
	RegistrationMaxInterval     time.Duration // spark.worker.registration.maxInterval; 10s (sparkd)

	AuthEnabled bool
	AuthSecret  string
	// UIJWS: spark.ui.filters names the JWSFilter (log pages);
	// JWSSecretKey is its key.
	UIJWS        bool
	JWSSecretKey string
	// RPCTLS, UITLS: as in Master.
	RPCTLS, UITLS TLS

	DecommissionEnabled bool // spark.decommission.enabled; false
}

// HeartbeatInterval is Timeout/4, as in Spark.
func (w Worker) HeartbeatInterval() time.Duration { return w.Timeout / 4 }

// reader parses keys of a Config, keeping the first error.
type reader struct {
	c   *Config
	err error
}

func (r *reader) fail(key string, err error) {
	if r.err == nil {
		r.err = &KeyError{Key: key, Value: r.c.values[key], Err: err}
	}
}

func (r *reader) str(key string) string { return strings.TrimSpace(r.c.values[key].Raw) }

func (r *reader) integer(key string, min int) int {
	s := r.str(key)
	n, err := strconv.Atoi(s)
	if err != nil {
		r.fail(key, errors.New("not an integer"))
		return 0
	}
	if n < min {
		r.fail(key, fmt.Errorf("must be at least %d", min))
	}
	return n
}

// optInt is an integer that may be unset (empty): 0 then.
func (r *reader) optInt(key string, min int) int {
	if r.str(key) == "" {
		return 0
	}
	return r.integer(key, min)
}

func (r *reader) boolean(key string) bool {
	s := strings.ToLower(r.str(key))
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.fail(key, errors.New("not a boolean; want true or false"))
	}
	return b
}

func (r *reader) port(key string) int {
	s := r.str(key)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		r.fail(key, errors.New("not a port number; want 0-65535 (0 = random)"))
		return 0
	}
	return n
}

func (r *reader) duration(key string, unit time.Duration) time.Duration {
	d, err := ParseDuration(r.str(key), unit)
	if err != nil {
		r.fail(key, err)
		return 0
	}
	if d <= 0 {
		r.fail(key, errors.New("must be positive"))
	}
	return d
}

func (r *reader) memoryMB(key string) int {
	n, err := ParseMemoryMB(r.str(key))
	if err != nil {
		r.fail(key, err)
		return 0
	}
	if n < 1 {
		r.fail(key, errors.New("must be at least 1m"))
	}
	return n
}

// localIP checks spark.local.ip (SPARK_LOCAL_IP): empty, an IP address or
// a host name (Spark resolves it with InetAddress.getByName).
func (r *reader) localIP() {
	s := r.str(KeyLocalIP)
	if s == "" || net.ParseIP(s) != nil {
		return
	}
	for _, c := range s {
		if !(c == '-' || c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			r.fail(KeyLocalIP, fmt.Errorf("bad character %q; want an IP address or a host name", c))
			return
		}
	}
}

// Master returns the typed master configuration, validated. The error is a
// *KeyError naming the key, the value and its source.
func (c *Config) Master() (Master, error) {
	r := &reader{c: c}
	m := Master{
		Host:                  r.str(KeyMasterHost),
		Port:                  r.port(KeyMasterPort),
		WebUIPort:             r.port(KeyMasterUIPort),
		PublicDNS:             r.str(KeyPublicDNS),
		RESTEnabled:           r.boolean(KeyMasterRESTEnabled),
		RESTPort:              r.port(KeyMasterRESTPort),
		MaxPortRetries:        r.integer(KeyPortMaxRetries, 0),
		RecoveryMode:          strings.ToUpper(r.str(KeyRecoveryMode)),
		RecoveryDirectory:     r.str(KeyRecoveryDirectory),
		WorkerTimeout:         r.duration(KeyWorkerTimeout, time.Second),
		RecoveryTimeout:       r.duration(KeyRecoveryTimeout, time.Second),
		DeadWorkerPersistence: r.integer(KeyDeadWorkerPersistence, 1),
		SpreadOut:             r.boolean(KeySpreadOut),
		DefaultCores:          r.optInt(KeyDefaultCores, 1),
		MaxExecutorRetries:    r.integer(KeyMaxExecutorRetries, -1),
		RetainedApplications:  r.integer(KeyRetainedApplications, 1),
		RetainedDrivers:       r.integer(KeyRetainedDrivers, 1),
		UIKillEnabled:         r.boolean(KeyUIKillEnabled),
		AuthEnabled:           r.boolean(KeyAuthenticate),
		AuthSecret:            c.values[KeyAuthSecret].Raw,
		AllowAppSubmit:        r.boolean(KeyAuthAllowAppSubmit),
		UIJWS:                 r.filters(KeyUIFilters),
		RESTJWS:               r.filters(KeyRESTFilters),
		JWSSecretKey:          c.values[KeyJWSSecretKey].Raw,
		MaxWorkers:            r.integer(KeyMaxWorkers, 1),
		MaxApps:               r.integer(KeyMaxApplications, 1),
		MaxDrivers:            r.integer(KeyMaxDrivers, 1),
		TrustWorkerAddress:    r.boolean(KeyTrustWorkerAddress),
		RPCTLS:                r.tls("rpc"),
		UITLS:                 r.tls("standalone", "ui"),
		RESTTLS:               r.tls("rest", "standalone"),
		ZooKeeper: ZooKeeper{
			URL:               r.str(KeyZKURL),
			Dir:               r.str(KeyZKDir),
			SessionTimeout:    r.duration(KeyZKSessionTimeout, time.Millisecond),
			ConnectionTimeout: r.duration(KeyZKConnectionTimeout, time.Millisecond),
			Auth:              c.values[KeyZKAuth].Raw,
			ACL:               r.boolean(KeyZKACL),
			EpochFloor:        int64(r.integer(KeyZKEpochFloor, 0)),
		},
	}
	if r.err != nil {
		return Master{}, r.err
	}
	if m.Host == "" {
		r.fail(KeyMasterHost, errors.New("empty host"))
	}
	r.localIP()
	switch m.RecoveryMode {
	case RecoveryNone:
	case RecoveryFilesystem:
		if m.RecoveryDirectory == "" {
			r.fail(KeyRecoveryMode, fmt.Errorf("FILESYSTEM needs %s", KeyRecoveryDirectory))
		}
	case RecoveryZooKeeper:
		r.validateZK(m.ZooKeeper)
	case "ROCKSDB", "CUSTOM":
		r.fail(KeyRecoveryMode, errors.New("not supported by sparkd; want NONE, FILESYSTEM or ZOOKEEPER"))
	default:
		r.fail(KeyRecoveryMode, errors.New("unknown recovery mode; want NONE, FILESYSTEM or ZOOKEEPER"))
	}
	r.validateAuth(m.AuthEnabled, m.AuthSecret)
	// As in Spark 4.1 (SPARK-57451), the REST server may run with
	// spark.authenticate on; spark.master.rest.filters protects it.
	r.validateJWS(m.UIJWS || m.RESTJWS, m.JWSSecretKey)
	if r.err != nil {
		return Master{}, r.err
	}
	return m, nil
}

func (r *reader) validateZK(z ZooKeeper) {
	if z.URL == "" {
		r.fail(KeyZKURL, fmt.Errorf("%s=ZOOKEEPER needs %s (zk1:2181,zk2:2181,...)", KeyRecoveryMode, KeyZKURL))
		return
	}
	if err := checkZKConnect(z.URL); err != nil {
		r.fail(KeyZKURL, err)
	}
	if !strings.HasPrefix(z.Dir, "/") || z.Dir == "/" || strings.HasSuffix(z.Dir, "/") || path.Clean(z.Dir) != z.Dir {
		r.fail(KeyZKDir, errors.New("want an absolute znode path like /spark (no trailing or double slash)"))
	}
	if z.SessionTimeout < MinSessionTimeout {
		r.fail(KeyZKSessionTimeout, fmt.Errorf("must be at least %v, so that the self-fence bound (2/3 of it) stays safely below it", MinSessionTimeout))
	}
	if z.Auth != "" {
		if user, pass, ok := strings.Cut(z.Auth, ":"); !ok || user == "" || pass == "" {
			r.fail(KeyZKAuth, errors.New("want user:password"))
		}
	}
	if z.ACL && z.Auth == "" {
		r.fail(KeyZKACL, fmt.Errorf("an ACL needs credentials in %s", KeyZKAuth))
	}
}

// checkZKConnect checks a ZooKeeper connect string: host:port[,host:port...]
// with an optional /chroot.
func checkZKConnect(s string) error {
	hosts, chroot, _ := strings.Cut(s, "/")
	if chroot != "" && (strings.HasSuffix(chroot, "/") || path.Clean("/"+chroot) != "/"+chroot) {
		return errors.New("bad chroot; want host:port[,host:port...][/path]")
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return errors.New("empty server in list; want host:port[,host:port...]")
		}
		if strings.ContainsAny(h, " \t") {
			return errors.New("blank inside a server address")
		}
		if i := strings.LastIndex(h, ":"); i >= 0 && !strings.HasSuffix(h, "]") {
			if p, err := strconv.Atoi(h[i+1:]); err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("server %q: bad port", h)
			}
			if i == 0 {
				return fmt.Errorf("server %q: empty host", h)
			}
		}
	}
	return nil
}

// filters reads a servlet filter list: only the JWSFilter is supported.
// It returns whether the JWSFilter is named.
func (r *reader) filters(key string) bool {
	on := false
	for _, f := range strings.Split(r.str(key), ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case jwsFilterClass:
			on = true
		default:
			r.fail(key, fmt.Errorf("unsupported filter %q; sparkd supports only %s", f, jwsFilterClass))
		}
	}
	return on
}

const jwsFilterClass = "org.apache.spark.ui.JWSFilter"

func (r *reader) validateJWS(on bool, key string) {
	if !on {
		return
	}
	key = strings.TrimSpace(key)
	if key == "" {
		r.fail(KeyJWSSecretKey, fmt.Errorf("%s needs a key here (base64url, at least 256 bits)", jwsFilterClass))
		return
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if k, err := enc.DecodeString(key); err == nil {
			if len(k) < 32 {
				r.fail(KeyJWSSecretKey, fmt.Errorf("too short: %d bits, want at least 256", 8*len(k)))
			}
			return
		}
	}
	r.fail(KeyJWSSecretKey, errors.New("not base64url"))
}

// tls reads one service's spark.ssl settings: each field from the first
// namespace that sets it, else from spark.ssl.
func (r *reader) tls(namespaces ...string) TLS {
	pick := func(field string) string {
		for _, ns := range namespaces {
			if k := KeySSLPrefix + ns + "." + field; r.c.values[k].IsSet() {
				return k
			}
		}
		return KeySSLPrefix + field
	}
	boolOf := func(field string) bool {
		k := pick(field)
		if r.str(k) == "" {
			return false
		}
		return r.boolean(k)
	}
	t := TLS{Enabled: boolOf("enabled")}
	if !t.Enabled {
		return t
	}
	t.CertChain, t.PrivateKey, t.TrustStore = r.str(pick("certChain")), r.str(pick("privateKey")), r.str(pick("trustStore"))
	t.NeedClientAuth, t.Protocol = boolOf("needClientAuth"), r.str(pick("protocol"))
	if k := pick("keyStore"); r.str(k) != "" && t.CertChain == "" {
		r.fail(k, errors.New("sparkd reads PEM files, not a Java keystore: set certChain and privateKey (and trustStore) instead"))
	}
	// In a fixed order, so that the first error named is always the same.
	for _, f := range []struct{ field, v string }{{"certChain", t.CertChain}, {"privateKey", t.PrivateKey}} {
		field, v := f.field, f.v
		if v == "" {
			r.fail(pick(field), fmt.Errorf("TLS is on (%s) and needs a PEM file here", pick("enabled")))
		} else if _, err := os.Stat(v); err != nil {
			r.fail(pick(field), err)
		}
	}
	if t.NeedClientAuth && t.TrustStore == "" {
		r.fail(pick("trustStore"), errors.New("needClientAuth needs a trust store (PEM CA bundle) to verify peers with"))
	}
	switch strings.ToUpper(t.Protocol) {
	case "", "TLS", "TLSV1.2", "TLSV1.3":
	default:
		r.fail(pick("protocol"), errors.New("want TLSv1.2 or TLSv1.3"))
	}
	return t
}

func (r *reader) validateAuth(enabled bool, secret string) {
	if enabled && secret == "" {
		r.fail(KeyAuthenticate, fmt.Errorf("needs a secret in %s", KeyAuthSecret))
	}
}

// Worker returns the typed worker configuration, validated. The error is a
// *KeyError naming the key, the value and its source.
func (c *Config) Worker() (Worker, error) {
	r := &reader{c: c}
	w := Worker{
		Host:                        r.str(KeyWorkerHost),
		Port:                        r.port(KeyWorkerPort),
		WebUIPort:                   r.port(KeyWorkerUIPort),
		PublicDNS:                   r.str(KeyPublicDNS),
		MaxPortRetries:              r.integer(KeyPortMaxRetries, 0),
		Cores:                       r.integer(KeyWorkerCores, 1),
		MemoryMB:                    r.memoryMB(KeyWorkerMemory),
		WorkDir:                     r.str(KeyWorkerDir),
		Timeout:                     r.duration(KeyWorkerTimeout, time.Second),
		CleanupEnabled:              r.boolean(KeyWorkerCleanupEnabled),
		CleanupInterval:             r.duration(KeyWorkerCleanupInterval, time.Second),
		AppDataTTL:                  r.duration(KeyWorkerCleanupAppDataTTL, time.Second),
		RetainedExecutorDirs:        r.integer(KeyWorkerRetainedExecDirs, 1),
		InitialRegistrationRetries:  r.integer(KeyWorkerInitialRegRetries, 0),
		MaxRegistrationRetries:      r.integer(KeyWorkerMaxRegRetries, 1),
		RegistrationInitialInterval: r.duration(KeyWorkerRegInitialInterval, time.Second),
		RegistrationMaxInterval:     r.duration(KeyWorkerRegMaxInterval, time.Second),
		AuthEnabled:                 r.boolean(KeyAuthenticate),
		AuthSecret:                  c.values[KeyAuthSecret].Raw,
		DecommissionEnabled:         r.boolean(KeyDecommissionEnabled),
		UIJWS:                       r.filters(KeyUIFilters),
		JWSSecretKey:                c.values[KeyJWSSecretKey].Raw,
		RPCTLS:                      r.tls("rpc"),
		UITLS:                       r.tls("standalone", "ui"),
	}
	if r.err != nil {
		return Worker{}, r.err
	}
	if s := r.str(KeyMaster); s == "" {
		r.fail(KeyMaster, errors.New("no master URL; give spark://host:port[,host:port] as the argument or set spark.master"))
	} else if ms, err := ParseMasterURLs(s); err != nil {
		r.fail(KeyMaster, err)
	} else {
		w.Masters = ms
	}
	if w.Host == "" {
		r.fail(KeyWorkerHost, errors.New("empty host"))
	}
	r.localIP()
	if w.WorkDir == "" {
		r.fail(KeyWorkerDir, errors.New("empty directory"))
	}
	if w.HeartbeatInterval() <= 0 || w.HeartbeatInterval() >= w.Timeout {
		r.fail(KeyWorkerTimeout, errors.New("too small: the heartbeat (timeout/4) must be positive and below it"))
	}
	if w.InitialRegistrationRetries > w.MaxRegistrationRetries {
		r.fail(KeyWorkerInitialRegRetries, fmt.Errorf("must not exceed %s (%d)", KeyWorkerMaxRegRetries, w.MaxRegistrationRetries))
	}
	if w.RegistrationInitialInterval > w.RegistrationMaxInterval {
		r.fail(KeyWorkerRegInitialInterval, fmt.Errorf("must not exceed %s (%v)", KeyWorkerRegMaxInterval, w.RegistrationMaxInterval))
	}
	r.validateAuth(w.AuthEnabled, w.AuthSecret)
	r.validateJWS(w.UIJWS, w.JWSSecretKey)
	if r.err != nil {
		return Worker{}, r.err
	}
	return w, nil
}

// Validate checks the configuration of the role it was loaded for (Master
// or Worker); a client configuration checks spark.master if set.
func (c *Config) Validate() error {
	switch c.role {
	case RoleMaster:
		_, err := c.Master()
		return err
	case RoleWorker:
		_, err := c.Worker()
		return err
	}
	r := &reader{c: c}
	if s := r.str(KeyMaster); s != "" {
		if _, err := ParseMasterURLs(s); err != nil {
			r.fail(KeyMaster, err)
		}
	}
	r.boolean(KeyAuthenticate)
	return r.err
}
