package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/conf"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/worker"
)

// keyFlag is a string flag that records its value under a spark key, with
// the flag's name for the source. The last occurrence on the command line
// wins, also across aliases (-p and --port).
type keyFlag struct {
	key, name string
	dst       map[string]conf.FlagValue
}

func (f keyFlag) String() string { return "" }

func (f keyFlag) Set(s string) error {
	f.dst[f.key] = conf.FlagValue{Value: s, Flag: f.name}
	return nil
}

// daemonFlags are the flags of Spark's MasterArguments / WorkerArguments:
// spark key, long name, short alias, usage.
var daemonFlags = map[conf.Role][]struct{ key, long, short, usage string }{
	conf.RoleMaster: {
		{conf.KeyMasterHost, "host", "h", "host to bind and advertise (SPARK_MASTER_HOST; default: SPARK_LOCAL_IP, else host name)"},
		{conf.KeyMasterPort, "port", "p", "RPC port (SPARK_MASTER_PORT; default 7077; 0 = random)"},
		{conf.KeyMasterUIPort, "webui-port", "", "web UI port (SPARK_MASTER_WEBUI_PORT; default 8080)"},
	},
	conf.RoleWorker: {
		{conf.KeyWorkerHost, "host", "h", "host to bind and advertise (default: SPARK_LOCAL_IP, else host name)"},
		{conf.KeyWorkerPort, "port", "p", "command port (SPARK_WORKER_PORT; default random)"},
		{conf.KeyWorkerUIPort, "webui-port", "", "web UI port (SPARK_WORKER_WEBUI_PORT; default 8081)"},
		{conf.KeyWorkerCores, "cores", "c", "cores to offer (SPARK_WORKER_CORES; default all)"},
		{conf.KeyWorkerMemory, "memory", "m", "memory to offer, e.g. 4g (SPARK_WORKER_MEMORY; default RAM - 1 GiB)"},
		{conf.KeyWorkerDir, "work-dir", "d", "work directory (SPARK_WORKER_DIR; default $SPARK_HOME/work)"},
	},
}

// loadDaemonLogged is loadDaemon for `sparkd master` and `sparkd worker`: it
// adds --log-level and the usage line (the arguments after "[flags]" are
// usageArgs) and returns the daemon's logger, in Spark's line format with
// the role as component ("Master", "Worker"). A bad --log-level exits 2.
func loadDaemonLogged(role conf.Role, usageArgs string, args []string, stdout, stderr io.Writer) (cfg *conf.Config, log *logrus.Entry, code int, done bool) {
	name := "sparkd " + role.String()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]%s\n\nFlags:\n", name, usageArgs)
		printFlags(stderr, fs)
	}
	cfg, _, code, done = loadDaemon(role, fs, args, stdout, stderr)
	if done {
		return nil, nil, code, true
	}
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --log-level %q: %v\n", name, *logLevel, err)
		return nil, nil, 2, true
	}
	component := strings.ToUpper(role.String()[:1]) + role.String()[1:]
	// Libraries that log through logrus's standard logger (the NONE recovery
	// mode's elector) write in the daemon's format too, not logrus's own.
	std := logrus.StandardLogger()
	std.SetOutput(stderr)
	std.SetLevel(level)
	std.SetFormatter(workerLogFormatter{component: component})
	return cfg, newWorkerLogger(stderr, level, component), 0, false
}

// loadDaemon parses the common daemon flags for role ("master"/"worker") from args with fs (the caller
// may register extra flags on fs before calling), handles --properties-file, --config and
// --print-config (prints and returns done=true, code 0), and returns the loaded config plus the
// positional args. On a bad flag it returns code 2; on a bad config it prints ONE line to stderr
// naming key, value and source and returns code 1.
//
// The worker's positional argument is its master URL list (spark://m1:7077,m2:7077); it becomes
// spark.master with the highest precedence and is also returned in positional. A master takes no
// positional arguments.
func loadDaemon(role conf.Role, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (cfg *conf.Config, positional []string, code int, done bool) {
	return loadDaemonEnv(role, fs, args, nil, stdout, stderr)
}

// loadDaemonEnv is loadDaemon with an explicit environment (nil = the process's), for tests.
func loadDaemonEnv(role conf.Role, fs *flag.FlagSet, args, environ []string, stdout, stderr io.Writer) (cfg *conf.Config, positional []string, code int, done bool) {
	fs.SetOutput(stderr)
	flags := map[string]conf.FlagValue{}
	for _, f := range daemonFlags[role] {
		fs.Var(keyFlag{f.key, "--" + f.long, flags}, f.long, f.usage)
		if f.short != "" {
			fs.Var(keyFlag{f.key, "-" + f.short, flags}, f.short, "same as --"+f.long)
		}
	}
	propsFile := fs.String("properties-file", "", "Java properties file (default $SPARK_CONF_DIR/spark-defaults.conf)")
	tomlFile := fs.String("config", "", "TOML file with spark.* keys")
	printConfig := fs.Bool("print-config", false, "print every effective setting and its source, then exit")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, 0, true
		}
		return nil, nil, 2, true
	}
	positional = fs.Args()
	name := "sparkd " + role.String()
	switch role {
	case conf.RoleWorker:
		if len(positional) > 1 {
			fmt.Fprintf(stderr, "%s: want one master URL argument (a comma list: spark://m1:7077,m2:7077), got %q\n", name, positional)
			return nil, nil, 2, true
		}
		if len(positional) == 1 {
			flags[conf.KeyMaster] = conf.FlagValue{Value: positional[0], Flag: "master URL argument"}
		}
	case conf.RoleMaster:
		if len(positional) > 0 {
			fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, positional[0])
			return nil, nil, 2, true
		}
	}

	logger := logrus.New()
	logger.SetOutput(stderr)
	logger.SetLevel(logrus.WarnLevel)
	logger.SetFormatter(workerLogFormatter{})  // Spark's line format, as the daemons log
	if f := fs.Lookup("log-level"); f != nil { // the caller's --log-level, if it has one
		if lvl, err := logrus.ParseLevel(f.Value.String()); err == nil {
			logger.SetLevel(lvl)
		}
	}
	log := logrus.NewEntry(logger).WithField("component", "conf")
	var hostWarnings []string // logged when the daemon will run on a good configuration
	cfg, err := conf.Load(conf.Options{
		Role:           role,
		PropertiesFile: *propsFile,
		TOMLFile:       *tomlFile,
		Flags:          flags,
		Environ:        environ,
		Log:            log,
		DefaultHost: func(hostname string) (string, string) {
			return defaultHost(hostname, thisMachine, func(w string) { hostWarnings = append(hostWarnings, w) })
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
		return nil, nil, 1, true
	}
	if *printConfig {
		cfg.Print(stdout)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
		return nil, nil, 1, true
	}
	if *printConfig {
		return cfg, positional, 0, true // the host's source says why it was chosen
	}
	for _, w := range hostWarnings {
		log.Warn(w)
	}
	return cfg, positional, 0, false
}

// oneLine keeps an error on one line, whatever a file or script put in it.
func oneLine(err error) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error())
}

// machine is what defaultHost asks of the computer it runs on; tests fake it.
type machine struct {
	lookupIP   func(host string) ([]net.IP, error)
	interfaces func() ([]netInterface, error) // in the system's order
}

// netInterface is a network interface that is up, with its addresses.
type netInterface struct {
	name  string
	addrs []net.IP
}

// thisMachine asks the operating system; the resolver reads /etc/hosts first.
var thisMachine = machine{
	lookupIP: func(host string) ([]net.IP, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return net.DefaultResolver.LookupIP(ctx, "ip", host)
	},
	interfaces: func() ([]netInterface, error) {
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		var up []netInterface
		for _, ifc := range ifs {
			addrs, err := ifc.Addrs()
			if ifc.Flags&net.FlagUp == 0 || err != nil {
				continue
			}
			ni := netInterface{name: ifc.Name}
			for _, a := range addrs {
				switch a := a.(type) {
				case *net.IPNet:
					ni.addrs = append(ni.addrs, a.IP)
				case *net.IPAddr:
					ni.addrs = append(ni.addrs, a.IP)
				}
			}
			up = append(up, ni)
		}
		return up, nil
	},
}

// defaultHost is the host a daemon binds and advertises when none is given,
// chosen as Spark's Utils.findLocalInetAddress chooses it. It is hostname,
// unless the address a listener on hostname binds (its first IPv4 address,
// else its first) is a loopback address, as where /etc/hosts maps the name
// to 127.0.1.1 (Debian's default): the daemon would be reachable from this
// machine only, while other hosts resolve the name elsewhere. Then it is the
// first address that is neither loopback nor link-local (IPv4 first) of the
// first interface that has one, and from names the interface and the
// loopback address, for --print-config. With no such interface (a
// container with only lo), or a name that does not resolve, hostname stays
// and from is "". warn gets Spark's warnings.
func defaultHost(hostname string, m machine, warn func(string)) (host, from string) {
	ips, err := m.lookupIP(hostname)
	if err != nil || len(ips) == 0 {
		return hostname, ""
	}
	bound := ips[0]
	for _, ip := range ips {
		if ip.To4() != nil {
			bound = ip
			break
		}
	}
	if !bound.IsLoopback() {
		return hostname, ""
	}
	ifaces, _ := m.interfaces() // none known: as if there were none
	for _, ifc := range ifaces {
		var pick net.IP
		for _, ip := range ifc.addrs {
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				continue
			}
			if pick == nil || pick.To4() == nil && ip.To4() != nil {
				pick = ip
			}
		}
		if pick != nil {
			warn(fmt.Sprintf("Your hostname, %s resolves to a loopback address: %s; using %s instead (on interface %s)", hostname, bound, pick, ifc.name))
			warn("Set SPARK_LOCAL_IP if you need to bind to another address")
			return pick.String(), fmt.Sprintf("interface %s, as host name %s resolves to loopback %s", ifc.name, hostname, bound)
		}
	}
	warn(fmt.Sprintf("Your hostname, %s resolves to a loopback address: %s, but we couldn't find any external IP address!", hostname, bound))
	warn("Set SPARK_LOCAL_IP if you need to bind to another address")
	return hostname, ""
}

// operatorClient is the RPC client of sparkd's own tools (submit, status):
// a holder of the cluster secret signs with the master key; an application
// credential (see protocol.NewAppCredential) signs as that application; ""
// signs nothing. A malformed credential signs nothing (the master then
// answers 401, naming why).
func operatorClient(timeout time.Duration, secret string) *protocol.Client {
	creds, err := protocol.CredentialsFor(secret, protocol.Identity{Role: protocol.RoleMaster})
	if err != nil {
		creds = nil
	}
	return protocol.NewRoleClient(timeout, creds)
}

// driverCredential is what a client-mode driver gets in
// SPARK_AUTHENTICATE_SECRET: a fresh application credential derived from
// the cluster secret (never the secret itself), or the application
// credential submit was given.
func driverCredential(secret string) string {
	if secret == "" || protocol.IsAppCredential(secret) {
		return secret
	}
	return protocol.NewAppCredential(secret, protocol.NewPrincipal("app-"))
}

// jwsVerifier is the JWSFilter for a listener, nil when off. conf has
// validated the key (Master/Worker fail on a bad one), so an error here is
// a broken invariant.
func jwsVerifier(on bool, key string) *protocol.JWSVerifier {
	if !on {
		return nil
	}
	v, err := protocol.NewJWSVerifier(key)
	if err != nil {
		panic(fmt.Sprintf("sparkd: %s passed validation but: %v", conf.KeyJWSSecretKey, err))
	}
	return v
}

// loadTLS turns one service's spark.ssl settings into protocol.TLS (nil
// when off); the error names the service.
func loadTLS(what string, t conf.TLS) (*protocol.TLS, error) {
	if !t.Enabled {
		return nil, nil
	}
	tl, err := protocol.LoadTLS(protocol.TLSFiles{CertChain: t.CertChain, PrivateKey: t.PrivateKey, TrustStore: t.TrustStore,
		NeedClientAuth: t.NeedClientAuth, Protocol: t.Protocol})
	if err != nil {
		return nil, fmt.Errorf("%s TLS (spark.ssl): %w", what, err)
	}
	return tl, nil
}

// masterTLS loads the master's TLS files (spark.ssl.rpc, .standalone, .rest).
func masterTLS(c *master.Config, mc conf.Master) error {
	var err error
	if c.RPCTLS, err = loadTLS("RPC", mc.RPCTLS); err != nil {
		return err
	}
	if c.UITLS, err = loadTLS("web UI", mc.UITLS); err != nil {
		return err
	}
	c.RESTTLS, err = loadTLS("REST", mc.RESTTLS)
	return err
}

// workerTLS loads the worker's TLS files (spark.ssl.rpc, .standalone).
func workerTLS(c *worker.Config, wc conf.Worker) error {
	var err error
	if c.RPCTLS, err = loadTLS("RPC", wc.RPCTLS); err != nil {
		return err
	}
	c.UITLS, err = loadTLS("web UI", wc.UITLS)
	return err
}

// clientTLS is the TLS of sparkd's own tools and drivers from spark.ssl.rpc.*
// / spark.ssl.* in props: a trust store, and a certificate for mutual TLS
// when given. nil when off.
func clientTLS(props map[string]string, namespaces ...string) (*protocol.TLS, error) {
	if len(namespaces) == 0 {
		namespaces = []string{"rpc"}
	}
	get := func(field string) string {
		for _, ns := range namespaces {
			if v, ok := props["spark.ssl."+ns+"."+field]; ok {
				return v
			}
		}
		return props["spark.ssl."+field]
	}
	if !strings.EqualFold(strings.TrimSpace(get("enabled")), "true") {
		return nil, nil
	}
	return protocol.LoadClientTLS(protocol.TLSFiles{CertChain: get("certChain"), PrivateKey: get("privateKey"), TrustStore: get("trustStore"), Protocol: get("protocol")})
}

// submitTLS is submit's TLS (spark.ssl.rpc.* / spark.ssl.*); a bad file is
// reported once and then calls fail with TLS errors naming the master.
func submitTLS(o *submitOptions) *protocol.TLS {
	tl, err := clientTLS(o.props)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sparkd submit: %v\n", err)
		return &protocol.TLS{Client: &tls.Config{MinVersion: tls.VersionTLS12}}
	}
	return tl
}

// restHTTPClient is the HTTP client of submit's REST calls, over TLS when
// spark.ssl.rest.* / spark.ssl.standalone.* / spark.ssl.* turn it on.
func restHTTPClient(o *submitOptions) (*http.Client, bool) {
	c := &http.Client{Timeout: 10 * time.Second}
	tl, err := clientTLS(o.props, "rest", "standalone")
	if err != nil {
		fmt.Fprintf(os.Stderr, "sparkd submit: %v\n", err)
		tl = &protocol.TLS{Client: &tls.Config{MinVersion: tls.VersionTLS12}}
	}
	if tl == nil {
		return c, false
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tl.Client
	c.Transport = tr
	return c, true
}

// submitClient is submit's RPC client: its credentials and TLS.
func submitClient(o *submitOptions) *protocol.Client {
	c := operatorClient(5*time.Second, o.props["spark.authenticate.secret"])
	submitTLS(o).Apply(c)
	return c
}
