package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables `sparkd submit --deploy-mode client` hands to the
// driver it runs, read back by ConfigFromEnv.
const (
	EnvMaster           = "SPARK_MASTER"               // full list: spark://h1:7077,h2:7077
	EnvAppName          = "SPARK_APP_NAME"             // spark.app.name
	EnvExecutorCores    = "SPARK_EXECUTOR_CORES"       // spark.executor.cores ("" = all cores of a worker)
	EnvExecutorMemory   = "SPARK_EXECUTOR_MEMORY"      // spark.executor.memory as given ("1g")
	EnvExecutorMemoryMB = "SPARKD_EXECUTOR_MEMORY_MB"  // the same in MB
	EnvTotalCores       = "SPARK_TOTAL_EXECUTOR_CORES" // spark.cores.max ("" = unlimited)
	EnvDriverMemory     = "SPARK_DRIVER_MEMORY"        // spark.driver.memory as given
	EnvExecutorCommand  = "SPARKD_EXECUTOR_COMMAND"    // optional: executor command, one argument per line
	EnvConf             = "SPARKD_CONF"                // every spark property, one k=v per line
	EnvAuthSecret       = "SPARK_AUTHENTICATE_SECRET"  // spark.authenticate.secret, when set
)

// DefaultExecutorMemoryMB is spark.executor.memory's default (1g).
const DefaultExecutorMemoryMB = 1024

const (
	envListSeparator    = ","  // between master URLs
	envCommandSeparator = "\n" // between executor command arguments
)

// ConfigFromEnv builds a Config from the environment a client-mode driver is
// given by `sparkd submit` (getenv is usually os.Getenv). The executor
// command comes from SPARKD_EXECUTOR_COMMAND unless the caller sets
// App.Command afterwards. Errors name the variable and its value.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	masters := strings.TrimSpace(getenv(EnvMaster))
	if masters == "" {
		return cfg, fmt.Errorf("%w: %s is not set", ErrConfig, EnvMaster)
	}
	hosts, err := SplitMasters(masters)
	if err != nil {
		return cfg, fmt.Errorf("%w: %s=%q: %w", ErrConfig, EnvMaster, masters, err)
	}
	cfg.Masters = hosts
	cfg.App.Name = getenv(EnvAppName)
	if cfg.App.Name == "" {
		cfg.App.Name = "sparkd-app"
	}
	num := func(name string) (int, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: %s=%q is not a non-negative integer", ErrConfig, name, v)
		}
		return n, nil
	}
	if cfg.App.ExecutorCores, err = num(EnvExecutorCores); err != nil {
		return cfg, err
	}
	if cfg.App.MaxCores, err = num(EnvTotalCores); err != nil {
		return cfg, err
	}
	if cfg.App.ExecutorMemMB, err = num(EnvExecutorMemoryMB); err != nil {
		return cfg, err
	}
	if cfg.App.ExecutorMemMB == 0 {
		cfg.App.ExecutorMemMB = DefaultExecutorMemoryMB
	}
	if cmd := getenv(EnvExecutorCommand); cmd != "" {
		cfg.App.Command = strings.Split(cmd, envCommandSeparator)
	}
	cfg.Secret = getenv(EnvAuthSecret)
	return cfg, nil
}

// SplitMasters splits a master list ("spark://h1:7077,h2:7077" or
// "spark://h1:7077,spark://h2:7077") into host:port entries; a missing port
// is 7077. It is a small client-side helper; daemons use conf.ParseMasterURLs.
func SplitMasters(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "spark://")
	var out []string
	for _, part := range strings.Split(s, envListSeparator) {
		p := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(part), "spark://"))
		if p == "" {
			return nil, fmt.Errorf("empty entry in master list %q", s)
		}
		if strings.ContainsAny(p, "/ ") {
			return nil, fmt.Errorf("master %q is not host[:port]", p)
		}
		if !hasPort(p) {
			p += ":7077"
		}
		if err := checkMasterURL(p); err != nil {
			return nil, fmt.Errorf("master %q: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func hasPort(p string) bool {
	if strings.HasPrefix(p, "[") {
		return strings.Contains(p, "]:")
	}
	return strings.Count(p, ":") == 1
}
