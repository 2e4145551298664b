// Package conf owns sparkd's configuration: it reads spark-env.sh (sourced by
// bash, as Spark does), spark-defaults.conf (Java properties), an optional
// TOML file, -Dkey=value options from SPARK_DAEMON_JAVA_OPTS and
// SPARK_MASTER_OPTS / SPARK_WORKER_OPTS, SPARK_* environment variables and
// command-line flags; merges them in one precedence chain; and turns the result
// into typed, validated Master and Worker configurations. It also parses
// master URLs, memory sizes and durations the way Spark does.
//
// Every value remembers where it came from (its Source), so that errors and
// `sparkd master --print-config` can tell an operator which file, variable or
// flag set it. A key that nobody set has the default Source, so "unset" is
// always distinguishable from "false" or "0".
//
// conf is a leaf: it imports nothing from the project.
package conf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sirupsen/logrus"
)

// Errors. Every error returned by this package wraps one of them.
var (
	// ErrInvalid: a key has a value that cannot be used (bad number, unknown
	// recovery mode, broken timing invariant...). The error is a *KeyError.
	ErrInvalid = errors.New("conf: invalid value")
	// ErrSyntax: a properties file, TOML file or -D option string is malformed.
	ErrSyntax = errors.New("conf: syntax error")
	// ErrEnvScript: spark-env.sh could not be sourced (syntax error, exit).
	ErrEnvScript = errors.New("conf: spark-env.sh failed")
	// ErrFile: a configuration file named explicitly could not be read.
	ErrFile = errors.New("conf: cannot read file")
)

// Role says which daemon (or client) is loading its configuration: it picks
// the -D option variable (SPARK_MASTER_OPTS or SPARK_WORKER_OPTS), the
// environment variables and the keys that apply.
type Role int

// Roles.
const (
	RoleMaster Role = iota + 1
	RoleWorker
	RoleClient
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleWorker:
		return "worker"
	case RoleClient:
		return "client"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// SourceKind is the kind of place a value came from. Kinds are ordered by
// precedence: a higher kind overrides a lower one.
type SourceKind int

// Source kinds, lowest precedence first (DESIGN.md, "Configuration").
const (
	SourceDefault    SourceKind = iota // built-in default (the key was never set)
	SourceProperties                   // spark-defaults.conf or --properties-file
	SourceTOML                         // --config file.toml
	SourceDaemonOpts                   // -D in SPARK_DAEMON_JAVA_OPTS
	SourceRoleOpts                     // -D in SPARK_MASTER_OPTS / SPARK_WORKER_OPTS
	SourceEnv                          // a SPARK_* environment variable
	SourceFlag                         // a command-line flag
)

// Source says where a value came from.
type Source struct {
	Kind SourceKind
	// Name is the variable (SPARK_MASTER_PORT, SPARK_DAEMON_JAVA_OPTS) or the
	// flag (--port); for a derived default, the key or fact it was derived
	// from.
	Name string
	// File is the file that set it: the properties or TOML file, or
	// spark-env.sh when the script set the variable. Empty for a variable
	// inherited from the process environment.
	File string
	Line int // properties files only; 0 = unknown
}

// String renders the source for messages and --print-config, e.g.
// "SPARK_DAEMON_JAVA_OPTS in /x/conf/spark-env.sh" or "flag --port".
func (s Source) String() string {
	switch s.Kind {
	case SourceDefault:
		if s.Name != "" {
			return "default, from " + s.Name
		}
		return "default"
	case SourceProperties:
		if s.Line > 0 {
			return s.File + ":" + strconv.Itoa(s.Line)
		}
		return s.File
	case SourceTOML:
		return s.File
	case SourceDaemonOpts, SourceRoleOpts, SourceEnv:
		if s.File != "" {
			return s.Name + " in " + s.File
		}
		return s.Name + " (environment)"
	case SourceFlag:
		if strings.HasPrefix(s.Name, "-") {
			return "flag " + s.Name
		}
		return "command-line " + s.Name
	}
	return "unknown source"
}

// Value is one effective setting: its raw text and where it came from.
type Value struct {
	Raw    string
	Source Source
}

// IsSet reports whether anything but a built-in default set the value.
func (v Value) IsSet() bool { return v.Source.Kind != SourceDefault }

// FlagValue is a value given on the command line; Flag is the flag's name as
// the user knows it ("--port"), for the source.
type FlagValue struct{ Value, Flag string }

// Options say where Load looks.
type Options struct {
	Role Role
	// Home is sparkd's home: "" means $SPARK_HOME, else the directory above
	// the binary's bin/. Conf dir = $SPARK_CONF_DIR, else <home>/conf.
	Home string
	// PropertiesFile is --properties-file; "" means
	// $SPARK_CONF_DIR/spark-defaults.conf if it exists.
	PropertiesFile string
	// TOMLFile is --config; "" means none.
	TOMLFile string
	// Flags maps a spark key to the value given on the command line.
	Flags map[string]FlagValue
	// Environ is the process environment; nil means os.Environ().
	Environ []string
	// Log receives debug lines (ignored JVM flags, what was read); nil
	// discards them.
	Log *logrus.Entry
	// DefaultHost, when set, may replace the default host of a master or
	// worker that neither a host setting nor spark.local.ip (SPARK_LOCAL_IP)
	// names: it gets the machine's host name and returns the host to use
	// and what it was derived from (shown as the source), or "" to keep the
	// host name. nil keeps the host name.
	DefaultHost func(hostname string) (host, from string)
}

// Config is the merged configuration of one process.
type Config struct {
	role    Role
	home    string
	confDir string
	envFile string // spark-env.sh that was sourced, "" if none
	values  map[string]Value
}

// Role is the role the configuration was loaded for.
func (c *Config) Role() Role { return c.role }

// Home is sparkd's home directory (see Options.Home).
func (c *Config) Home() string { return c.home }

// ConfDir is the configuration directory ($SPARK_CONF_DIR or <home>/conf).
func (c *Config) ConfDir() string { return c.confDir }

// Get returns the effective value of key: the one from the highest source
// that set it, else its built-in default. ok is false for a key that has
// neither (an unknown key nobody set).
func (c *Config) Get(key string) (Value, bool) {
	v, ok := c.values[key]
	return v, ok
}

// Keys returns every key with an effective value, sorted.
func (c *Config) Keys() []string {
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Print writes every effective key, its value and its source, one per line
// and aligned, for --print-config. Secrets are masked.
func (c *Config) Print(w io.Writer) {
	order := "default, properties file, TOML, SPARK_DAEMON_JAVA_OPTS, " + roleOptsVar(c.role) + ", environment, flag"
	if c.role == RoleClient {
		order = "default, properties file, TOML, environment, flag"
	}
	fmt.Fprintf(w, "# sparkd %s configuration; precedence, lowest first: %s\n", c.role, order)
	env := c.envFile
	if env == "" {
		env = "(not sourced)"
	}
	fmt.Fprintf(w, "# home %s; conf dir %s; spark-env.sh %s\n", c.home, c.confDir, env)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range c.Keys() {
		v := c.values[k]
		fmt.Fprintf(tw, "%s\t= %s\t# %s\n", k, printable(k, v.Raw), v.Source)
	}
	_ = tw.Flush()
}

// printable masks secrets and quotes values that would otherwise be
// ambiguous (empty, spaces, control characters).
func printable(key, raw string) string {
	if raw != "" && isSecretKey(key) {
		if key == KeyZKAuth {
			if user, _, ok := strings.Cut(raw, ":"); ok {
				return user + ":******"
			}
		}
		return "******"
	}
	if raw == "" || strings.TrimSpace(raw) != raw || strings.ContainsAny(raw, " \t\"#") || strconv.Quote(raw) != `"`+raw+`"` {
		return strconv.Quote(raw)
	}
	return raw
}

func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	return key == KeyZKAuth || strings.Contains(k, "secret") || strings.Contains(k, "password")
}

// Load gathers every source in DESIGN.md's precedence order (lowest first):
// built-in defaults; spark-defaults.conf (or --properties-file); TOML
// (--config); -D in SPARK_DAEMON_JAVA_OPTS; -D in SPARK_MASTER_OPTS /
// SPARK_WORKER_OPTS (by role); SPARK_* environment variables; command-line
// flags. $SPARK_CONF_DIR/spark-env.sh is sourced by bash first, unless
// SPARK_ENV_LOADED is set (the scripts already sourced it).
//
// Load checks syntax only; Master and Worker parse and validate the values.
func Load(opts Options) (*Config, error) {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	if opts.Role < RoleMaster || opts.Role > RoleClient {
		return nil, fmt.Errorf("%w: unknown role %d", ErrInvalid, int(opts.Role))
	}
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := envMap(environ)

	home := opts.Home
	if home == "" {
		home = env["SPARK_HOME"]
	}
	if home == "" {
		home = binaryHome()
	}
	confDir := env["SPARK_CONF_DIR"]
	if confDir == "" {
		confDir = filepath.Join(home, "conf")
	}
	c := &Config{role: opts.Role, home: home, confDir: confDir, values: map[string]Value{}}

	// spark-env.sh: sourced once, as bin/load-spark-env.sh does.
	envFrom := map[string]string{} // variable -> file that set it
	if env["SPARK_ENV_LOADED"] == "" {
		script := filepath.Join(confDir, "spark-env.sh")
		if st, err := os.Stat(script); err == nil && !st.IsDir() {
			withHome := map[string]string{}
			for k, v := range env {
				withHome[k] = v
			}
			if withHome["SPARK_HOME"] == "" {
				withHome["SPARK_HOME"] = home
			}
			if withHome["SPARK_CONF_DIR"] == "" {
				withHome["SPARK_CONF_DIR"] = confDir
			}
			after, err := sourceEnvScript(script, withHome, log)
			if err != nil {
				return nil, err
			}
			for k, v := range after {
				if old, ok := env[k]; !ok || old != v {
					envFrom[k] = script
				}
			}
			env = after
			c.envFile = script
		}
	}

	// Layer 0: defaults.
	for k, v := range defaults(opts.Role, home) {
		c.values[k] = Value{Raw: v, Source: Source{Kind: SourceDefault}}
	}
	set := func(key, raw string, src Source) { c.values[key] = Value{Raw: raw, Source: src} }

	// Layer 1: properties file. Spark trims property values.
	propsFile := opts.PropertiesFile
	explicit := propsFile != ""
	if !explicit {
		propsFile = filepath.Join(confDir, "spark-defaults.conf")
	}
	if f, err := os.Open(propsFile); err == nil {
		props, perr := ParseProperties(f)
		_ = f.Close()
		if perr != nil {
			return nil, fmt.Errorf("conf: %s: %w", propsFile, perr)
		}
		for _, p := range props {
			set(p.Key, strings.TrimSpace(p.Value), Source{Kind: SourceProperties, File: propsFile, Line: p.Line})
		}
		log.WithField("file", propsFile).Debugf("read %d properties", len(props))
	} else if explicit || !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: properties file: %w", ErrFile, err)
	}

	// Layer 2: TOML.
	if opts.TOMLFile != "" {
		kv, err := readTOML(opts.TOMLFile)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(kv) {
			set(k, kv[k], Source{Kind: SourceTOML, File: opts.TOMLFile})
		}
	}

	// Layers 3 and 4: -D options.
	optVars := []struct {
		name string
		kind SourceKind
	}{{"SPARK_DAEMON_JAVA_OPTS", SourceDaemonOpts}, {roleOptsVar(opts.Role), SourceRoleOpts}}
	if opts.Role == RoleClient {
		optVars = nil // spark-submit does not read the daemon options
	}
	for _, ov := range optVars {
		s := env[ov.name]
		if s == "" {
			continue
		}
		src := Source{Kind: ov.kind, Name: ov.name, File: envFrom[ov.name]}
		props, err := ParseJavaOpts(s, func(ignored string) {
			log.WithField("var", ov.name).Debugf("ignoring JVM option %q (only -Dspark.* options are read)", ignored)
		})
		if err != nil {
			return nil, fmt.Errorf("conf: %s: %w", src, err)
		}
		for _, p := range props {
			set(p.Key, p.Value, src)
		}
	}

	// Layer 5: SPARK_* variables. Empty means unset, as in Spark's scripts.
	for _, ev := range envVars {
		if !ev.roles.has(opts.Role) {
			continue
		}
		if v := env[ev.name]; v != "" {
			set(ev.key, v, Source{Kind: SourceEnv, Name: ev.name, File: envFrom[ev.name]})
		}
	}

	// Layer 6: flags.
	for _, k := range sortedKeys(opts.Flags) {
		fv := opts.Flags[k]
		set(k, fv.Value, Source{Kind: SourceFlag, Name: fv.Flag})
	}

	warnMisspelled(c.values, log)

	// Derived default: a daemon's host, when nobody set it, is
	// spark.local.ip (SPARK_LOCAL_IP, as in Spark), else DefaultHost's pick,
	// else the host name.
	if hk := hostKey(opts.Role); hk != "" && !c.values[hk].IsSet() {
		if ip := strings.TrimSpace(c.values[KeyLocalIP].Raw); ip != "" {
			c.values[hk] = Value{Raw: ip, Source: Source{Kind: SourceDefault, Name: KeyLocalIP}}
		} else if opts.DefaultHost != nil {
			if h, from := opts.DefaultHost(c.values[hk].Raw); h != "" && h != c.values[hk].Raw {
				c.values[hk] = Value{Raw: h, Source: Source{Kind: SourceDefault, Name: from}}
			}
		}
	}

	// Derived default: recoveryTimeout falls back to spark.worker.timeout.
	if opts.Role == RoleMaster {
		if v := c.values[KeyRecoveryTimeout]; !v.IsSet() {
			wt := c.values[KeyWorkerTimeout]
			c.values[KeyRecoveryTimeout] = Value{Raw: wt.Raw, Source: Source{Kind: SourceDefault, Name: KeyWorkerTimeout}}
		}
		// Derived default: spark.authenticate does not cover the REST
		// submission server (spark.master.rest.filters does, as in Spark
		// 4.1), so with spark.authenticate=true and no REST filter it is
		// off unless asked for.
		if v := c.values[KeyMasterRESTEnabled]; !v.IsSet() && strings.EqualFold(strings.TrimSpace(c.values[KeyAuthenticate].Raw), "true") &&
			strings.TrimSpace(c.values[KeyRESTFilters].Raw) == "" {
			c.values[KeyMasterRESTEnabled] = Value{Raw: "false", Source: Source{Kind: SourceDefault, Name: KeyAuthenticate + "=true"}}
		}
	}
	return c, nil
}

func roleOptsVar(r Role) string {
	switch r {
	case RoleMaster:
		return "SPARK_MASTER_OPTS"
	case RoleWorker:
		return "SPARK_WORKER_OPTS"
	}
	return "no role options"
}

// binaryHome is the directory above the running binary's bin/.
func binaryHome() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(filepath.Dir(exe))
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			m[k] = v
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// warnMisspelled warns about set keys that differ from a known key only in
// case ("spark.deploy.recoverymode"): Spark keys are case-sensitive, so such
// a key would be silently ignored.
func warnMisspelled(values map[string]Value, log *logrus.Entry) {
	known := map[string]string{}
	for _, r := range []Role{RoleMaster, RoleWorker, RoleClient} {
		for k := range defaults(r, "") {
			known[strings.ToLower(k)] = k
		}
	}
	known[strings.ToLower(KeyRecoveryTimeout)] = KeyRecoveryTimeout
	for _, k := range sortedKeys(values) {
		v := values[k]
		if !v.IsSet() {
			continue
		}
		if want, ok := known[strings.ToLower(k)]; ok && want != k {
			log.WithField("source", v.Source.String()).Warnf("%s is not a key sparkd knows (keys are case-sensitive); did you mean %s?", k, want)
			continue
		}
		if _, ok := known[strings.ToLower(k)]; ok || !typoNamespace(k) {
			continue
		}
		// A typo in a key of sparkd's own namespaces
		// ("spark.deploy.zookeper.url") is otherwise silently ignored, and
		// the error that follows names only the key it left unset.
		best, bestDist := "", 3
		for _, want := range sortedKeys(known) {
			if d := editDistance(strings.ToLower(k), want); d < bestDist {
				best, bestDist = known[want], d
			}
		}
		if best != "" {
			log.WithField("source", v.Source.String()).Warnf("%s is not a key sparkd knows; did you mean %s?", k, best)
		}
	}
}

// typoNamespace reports whether key is in a namespace whose every key sparkd
// knows, so that a near miss is worth a warning. Other spark.* keys (for
// applications) are legitimately unknown to the daemons.
func typoNamespace(key string) bool {
	for _, p := range []string{"spark.deploy.", "spark.master.", "spark.worker."} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
