package conf

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Keys sparkd reads. Spark's names where Spark has the key; sparkd's own
// keys are marked. Units of bare numbers are given for durations.
const (
	KeyMaster    = "spark.master"     // spark://h1:7077,h2:7077 (worker, client)
	KeyPublicDNS = "spark.public.dns" // sparkd name for SPARK_PUBLIC_DNS
	KeyLocalIP   = "spark.local.ip"   // sparkd name for SPARK_LOCAL_IP: a daemon's host when none is given

	KeyMasterHost        = "spark.master.host" // sparkd name for SPARK_MASTER_HOST / --host
	KeyMasterPort        = "spark.master.port" // sparkd name for SPARK_MASTER_PORT / --port; 7077
	KeyMasterUIPort      = "spark.master.ui.port"
	KeyMasterRESTEnabled = "spark.master.rest.enabled"
	KeyMasterRESTPort    = "spark.master.rest.port"

	KeyRecoveryMode          = "spark.deploy.recoveryMode"
	KeyRecoveryDirectory     = "spark.deploy.recoveryDirectory"
	KeyRecoveryTimeout       = "spark.deploy.recoveryTimeout" // bare number: seconds; default spark.worker.timeout
	KeyZKURL                 = "spark.deploy.zookeeper.url"
	KeyZKDir                 = "spark.deploy.zookeeper.dir"
	KeyZKSessionTimeout      = "spark.deploy.zookeeper.sessionTimeout"    // sparkd; bare number: ms
	KeyZKConnectionTimeout   = "spark.deploy.zookeeper.connectionTimeout" // sparkd; bare number: ms
	KeyZKAuth                = "spark.deploy.zookeeper.auth"              // sparkd; "user:password" digest
	KeyZKACL                 = "spark.deploy.zookeeper.acl"               // sparkd; bool
	KeyZKEpochFloor          = "spark.deploy.zookeeper.epochFloor"        // sparkd; lowest epoch a leader opens
	KeyWorkerTimeout         = "spark.worker.timeout"                     // bare number: seconds
	KeyDeadWorkerPersistence = "spark.dead.worker.persistence"
	KeySpreadOut             = "spark.deploy.spreadOut"
	KeyDefaultCores          = "spark.deploy.defaultCores"
	KeyMaxExecutorRetries    = "spark.deploy.maxExecutorRetries"
	KeyRetainedApplications  = "spark.deploy.retainedApplications"
	KeyRetainedDrivers       = "spark.deploy.retainedDrivers"
	KeyUIKillEnabled         = "spark.ui.killEnabled"
	KeyMaxWorkers            = "spark.deploy.maxWorkers"         // sparkd; 10000
	KeyMaxApplications       = "spark.deploy.maxApplications"    // sparkd; 10000 active
	KeyMaxDrivers            = "spark.deploy.maxDrivers"         // sparkd; 10000 active
	KeyTrustWorkerAddress    = "spark.deploy.trustWorkerAddress" // sparkd; false

	KeyPortMaxRetries = "spark.port.maxRetries" // every listener: busy port P is retried on P+1..P+N

	KeyAuthenticate = "spark.authenticate"
	KeyAuthSecret   = "spark.authenticate.secret"
	// KeyAuthAllowAppSubmit lets applications (holders of an application
	// credential, not the cluster secret) submit drivers. sparkd; false.
	KeyAuthAllowAppSubmit = "spark.authenticate.allowApplicationSubmit"

	// Spark 4's JWSFilter: spark.ui.filters (web UIs' kill forms and log
	// pages) and spark.master.rest.filters (the REST API) accept only
	// org.apache.spark.ui.JWSFilter; its key is base64url, >= 256 bits.
	KeyUIFilters    = "spark.ui.filters"
	KeyRESTFilters  = "spark.master.rest.filters"
	KeyJWSSecretKey = "spark.org.apache.spark.ui.JWSFilter.param.secretKey"

	// TLS: spark.ssl.<field>, overridden per service by
	// spark.ssl.<namespace>.<field> (namespaces rpc: RPC listeners and
	// calls; standalone, then ui: web UIs; rest, then standalone: the REST
	// server). Fields: enabled, certChain, privateKey (PEM files; a JKS
	// keyStore is refused), trustStore (PEM CA bundle), needClientAuth,
	// protocol.
	KeySSLPrefix = "spark.ssl."

	KeyWorkerHost               = "spark.worker.host" // sparkd name for --host
	KeyWorkerPort               = "spark.worker.port" // sparkd name for SPARK_WORKER_PORT; 0 = random
	KeyWorkerUIPort             = "spark.worker.ui.port"
	KeyWorkerCores              = "spark.worker.cores"  // sparkd name for SPARK_WORKER_CORES
	KeyWorkerMemory             = "spark.worker.memory" // sparkd name for SPARK_WORKER_MEMORY; plain number = MB
	KeyWorkerDir                = "spark.worker.dir"    // sparkd name for SPARK_WORKER_DIR
	KeyWorkerCleanupEnabled     = "spark.worker.cleanup.enabled"
	KeyWorkerCleanupInterval    = "spark.worker.cleanup.interval"     // bare number: seconds
	KeyWorkerCleanupAppDataTTL  = "spark.worker.cleanup.appDataTtl"   // bare number: seconds
	KeyWorkerRetainedExecDirs   = "spark.worker.retainedExecutorDirs" // sparkd; finished executor dirs kept per app
	KeyWorkerInitialRegRetries  = "spark.worker.initialRegistrationRetries"
	KeyWorkerMaxRegRetries      = "spark.worker.maxRegistrationRetries"
	KeyWorkerRegInitialInterval = "spark.worker.registration.initialInterval" // sparkd; bare number: seconds
	KeyWorkerRegMaxInterval     = "spark.worker.registration.maxInterval"     // sparkd; bare number: seconds
	KeyDecommissionEnabled      = "spark.decommission.enabled"
)

type roleSet uint8

func roles(rs ...Role) roleSet {
	var s roleSet
	for _, r := range rs {
		s |= 1 << uint(r)
	}
	return s
}

func (s roleSet) has(r Role) bool { return s&(1<<uint(r)) != 0 }

// envVars maps SPARK_* variables to keys, per role, as Spark's
// MasterArguments / WorkerArguments and the sbin scripts read them.
// SPARK_MASTER is spark-daemon.sh's rsync source for daemons, so only the
// client reads it as the master URL.
var envVars = []struct {
	name  string
	key   string
	roles roleSet
}{
	{"SPARK_MASTER_HOST", KeyMasterHost, roles(RoleMaster)},
	{"SPARK_MASTER_PORT", KeyMasterPort, roles(RoleMaster)},
	{"SPARK_MASTER_WEBUI_PORT", KeyMasterUIPort, roles(RoleMaster)},
	{"SPARK_LOCAL_HOSTNAME", KeyWorkerHost, roles(RoleWorker)},
	{"SPARK_WORKER_PORT", KeyWorkerPort, roles(RoleWorker)},
	{"SPARK_WORKER_WEBUI_PORT", KeyWorkerUIPort, roles(RoleWorker)},
	{"SPARK_WORKER_CORES", KeyWorkerCores, roles(RoleWorker)},
	{"SPARK_WORKER_MEMORY", KeyWorkerMemory, roles(RoleWorker)},
	{"SPARK_WORKER_DIR", KeyWorkerDir, roles(RoleWorker)},
	{"SPARK_PUBLIC_DNS", KeyPublicDNS, roles(RoleMaster, RoleWorker)},
	{"SPARK_LOCAL_IP", KeyLocalIP, roles(RoleMaster, RoleWorker)},
	{"SPARK_MASTER", KeyMaster, roles(RoleClient)},
}

// defaults returns every built-in default for role: Spark's defaults, and
// sparkd's own where Spark has none or sparkd differs (noted). This is the
// only place defaults live. Host-dependent defaults (host name, cores,
// memory) are computed here.
func defaults(role Role, home string) map[string]string {
	common := map[string]string{
		KeyPortMaxRetries:   "16",
		KeyAuthenticate:     "false",
		KeyAuthSecret:       "",
		KeyUIFilters:        "",
		KeyJWSSecretKey:     "",
		"spark.ssl.enabled": "false",
	}
	switch role {
	case RoleMaster:
		m := map[string]string{
			KeyMasterHost:        hostname(),
			KeyMasterPort:        "7077",
			KeyMasterUIPort:      "8080",
			KeyPublicDNS:         "",
			KeyLocalIP:           "",
			KeyMasterRESTEnabled: "true", // sparkd: Spark 4 defaults to false; sparkd submit uses it
			KeyMasterRESTPort:    "6066",

			KeyRecoveryMode:        "NONE",
			KeyRecoveryDirectory:   "",
			KeyZKURL:               "",
			KeyZKDir:               "/spark",
			KeyZKSessionTimeout:    "10s", // sparkd: Spark hard-codes 60 s
			KeyZKConnectionTimeout: "15s", // Spark's hard-coded value
			KeyZKAuth:              "",
			KeyZKACL:               "false",
			KeyZKEpochFloor:        "0",
			KeyWorkerTimeout:       "60",
			// KeyRecoveryTimeout: derived from spark.worker.timeout in Load.
			KeyDeadWorkerPersistence: "15",
			KeySpreadOut:             "true",
			KeyDefaultCores:          "", // unlimited (Spark: Int.MaxValue)
			KeyMaxExecutorRetries:    "10",
			KeyRetainedApplications:  "200",
			KeyRetainedDrivers:       "200",
			KeyUIKillEnabled:         "true",
			KeyAuthAllowAppSubmit:    "false",
			KeyRESTFilters:           "",
			KeyMaxWorkers:            "10000",
			KeyMaxApplications:       "10000",
			KeyMaxDrivers:            "10000",
			KeyTrustWorkerAddress:    "false",
		}
		for k, v := range common {
			m[k] = v
		}
		return m
	case RoleWorker:
		m := map[string]string{
			KeyMaster:                   "",
			KeyWorkerHost:               hostname(),
			KeyWorkerPort:               "0",
			KeyWorkerUIPort:             "8081",
			KeyPublicDNS:                "",
			KeyLocalIP:                  "",
			KeyWorkerCores:              strconv.Itoa(runtime.NumCPU()),
			KeyWorkerMemory:             strconv.Itoa(defaultWorkerMemoryMB()) + "m",
			KeyWorkerDir:                filepath.Join(home, "work"),
			KeyWorkerTimeout:            "60",
			KeyWorkerCleanupEnabled:     "true",
			KeyWorkerCleanupInterval:    "1800",
			KeyWorkerCleanupAppDataTTL:  "604800",
			KeyWorkerRetainedExecDirs:   "10",
			KeyWorkerInitialRegRetries:  "6",
			KeyWorkerMaxRegRetries:      "16",
			KeyWorkerRegInitialInterval: "1s",  // sparkd: Spark waits 5-15 s
			KeyWorkerRegMaxInterval:     "10s", // sparkd: Spark waits 30-90 s
			KeyDecommissionEnabled:      "false",
		}
		for k, v := range common {
			m[k] = v
		}
		return m
	}
	m := map[string]string{KeyMaster: ""}
	for k, v := range common {
		m[k] = v
	}
	return m
}

// hostKey is the key of role's host to bind and advertise ("" for a client).
func hostKey(r Role) string {
	switch r {
	case RoleMaster:
		return KeyMasterHost
	case RoleWorker:
		return KeyWorkerHost
	}
	return ""
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// defaultWorkerMemoryMB is Spark's default: total RAM - 1 GiB, at least 1 GiB.
func defaultWorkerMemoryMB() int {
	total := 0
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				fields := strings.Fields(rest)
				if len(fields) > 0 {
					if kb, err := strconv.Atoi(fields[0]); err == nil {
						total = kb / 1024
					}
				}
				break
			}
		}
		_ = f.Close()
	}
	return max(total-1024, 1024)
}
