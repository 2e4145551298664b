package spark

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sparkd/sparkd/task"
)

// settings are the Spark properties a Context reads, parsed.
type settings struct {
	sched             task.Config
	heartbeat         time.Duration // spark.executor.heartbeatInterval (10s)
	networkTimeout    time.Duration // spark.network.timeout (120s)
	executorCores     int           // spark.executor.cores (0: all a worker has)
	maxCores          int           // spark.cores.max (0: unlimited)
	executorMemMB     int           // spark.executor.memory (1g)
	uiPort            int           // spark.ui.port (4040; 0: any free port)
	portRetries       int           // spark.port.maxRetries (16)
	driverHost        string        // spark.driver.host
	secret            string        // spark.authenticate.secret
	registerTimeout   time.Duration // how long to look for a leading master
	starvationTimeout time.Duration // spark.starvation.timeout (15s)
}

// Keys lists the Spark properties Config.Conf may set.
var Keys = []string{
	"spark.authenticate.secret", "spark.cores.max", "spark.driver.host",
	"spark.executor.cores", "spark.executor.heartbeatInterval", "spark.executor.memory",
	"spark.locality.wait", "spark.network.timeout", "spark.port.maxRetries",
	"spark.speculation", "spark.speculation.interval", "spark.speculation.minTaskRuntime",
	"spark.speculation.multiplier", "spark.speculation.quantile", "spark.starvation.timeout",
	"spark.task.cpus", "spark.task.maxFailures", "spark.ui.port",
}

// DefaultUIPort is spark.ui.port's default.
const DefaultUIPort = 4040

func parseSettings(p map[string]string) (settings, error) {
	s := settings{sched: task.DefaultConfig(), heartbeat: 10 * time.Second, networkTimeout: 120 * time.Second,
		executorMemMB: 1024, uiPort: DefaultUIPort, portRetries: 16, registerTimeout: 60 * time.Second,
		starvationTimeout: 15 * time.Second}
	known := map[string]bool{}
	for _, k := range Keys {
		known[k] = true
	}
	var errs []error
	var unknown []string
	for k := range p {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("spark: unknown property %s (known: %s)", k, strings.Join(Keys, ", ")))
	}
	intKey := func(key string, min int, dst *int) {
		if v, ok := p[key]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < min {
				errs = append(errs, fmt.Errorf("spark: %s=%q: want an integer of at least %d", key, v, min))
				return
			}
			*dst = n
		}
	}
	floatKey := func(key string, dst *float64) {
		if v, ok := p[key]; ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("spark: %s=%q: want a number", key, v))
				return
			}
			*dst = f
		}
	}
	durKey := func(key string, unit time.Duration, dst *time.Duration) {
		if v, ok := p[key]; ok {
			d, err := parseDuration(v, unit)
			if err != nil {
				errs = append(errs, fmt.Errorf("spark: %s: %w", key, err))
				return
			}
			*dst = d
		}
	}
	intKey("spark.task.maxFailures", 1, &s.sched.MaxFailures)
	intKey("spark.task.cpus", 1, &s.sched.TaskCPUs)
	intKey("spark.executor.cores", 1, &s.executorCores)
	intKey("spark.cores.max", 1, &s.maxCores)
	intKey("spark.ui.port", 0, &s.uiPort)
	intKey("spark.port.maxRetries", 0, &s.portRetries)
	floatKey("spark.speculation.multiplier", &s.sched.SpeculationMultiplier)
	floatKey("spark.speculation.quantile", &s.sched.SpeculationQuantile)
	durKey("spark.speculation.interval", time.Millisecond, &s.sched.SpeculationInterval)
	durKey("spark.speculation.minTaskRuntime", time.Millisecond, &s.sched.SpeculationMinRuntime)
	durKey("spark.locality.wait", time.Millisecond, &s.sched.LocalityWait)
	durKey("spark.executor.heartbeatInterval", time.Millisecond, &s.heartbeat)
	durKey("spark.network.timeout", time.Second, &s.networkTimeout)
	durKey("spark.starvation.timeout", time.Second, &s.starvationTimeout)
	if v, ok := p["spark.speculation"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("spark: spark.speculation=%q: want true or false", v))
		}
		s.sched.Speculation = b
	}
	if v, ok := p["spark.executor.memory"]; ok {
		mb, err := parseMemoryMB(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("spark: spark.executor.memory: %w", err))
		}
		s.executorMemMB = mb
	}
	if s.uiPort > 65535 {
		errs = append(errs, fmt.Errorf("spark: spark.ui.port=%d: want a port number (0-65535)", s.uiPort))
	}
	s.driverHost = strings.TrimSpace(p["spark.driver.host"])
	s.secret = p["spark.authenticate.secret"]
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	if s.sched.LocalityWait == 0 {
		s.sched.LocalityWait = -1 // 0 means "no wait" here, not "default"
	}
	if err := s.sched.Validate(); err != nil {
		return s, fmt.Errorf("spark: %w", err)
	}
	if s.heartbeat <= 0 || s.networkTimeout <= 0 || s.heartbeat >= s.networkTimeout {
		return s, fmt.Errorf("spark: spark.executor.heartbeatInterval (%s) must be positive and less than spark.network.timeout (%s)",
			s.heartbeat, s.networkTimeout)
	}
	if s.executorCores > 0 && s.sched.TaskCPUs > s.executorCores {
		return s, fmt.Errorf("spark: spark.task.cpus=%d is more than spark.executor.cores=%d: no task could run", s.sched.TaskCPUs, s.executorCores)
	}
	return s, nil
}

// parseDuration reads Spark's durations: "500ms", "3s", "2min", "1h", or a
// bare number in unit.
func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	t := strings.TrimSpace(strings.ToLower(v))
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * unit, nil
	}
	t = strings.Replace(t, "min", "m", 1)
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (500ms, 3s, 2min)", v)
	}
	return d, nil
}

// parseMemoryMB reads Spark's sizes in MiB: "512m", "1g", "2048" (MiB).
func parseMemoryMB(v string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(v))
	t = strings.TrimSuffix(t, "b")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1.0/1024, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		t = strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1024, strings.TrimSuffix(t, "g")
	case strings.HasSuffix(t, "t"):
		mult, t = 1024*1024, strings.TrimSuffix(t, "t")
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 || n*mult < 1 {
		return 0, fmt.Errorf("%q is not a memory size of at least 1m (512m, 1g)", v)
	}
	return int(n * mult), nil
}

// parseMasters splits spark://h1:7077,h2:7077 into host:port addresses.
func parseMasters(url string) ([]string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(url), "spark://")
	if !ok {
		return nil, fmt.Errorf("spark: master %q: want spark://host:port[,host:port...]", url)
	}
	var out []string
	for _, hp := range strings.Split(rest, ",") {
		hp = strings.TrimSpace(hp)
		h, p, err := net.SplitHostPort(hp)
		if err != nil || h == "" {
			return nil, fmt.Errorf("spark: master %q: %q is not host:port", url, hp)
		}
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("spark: master %q: port %q is not a port number", url, p)
		}
		out = append(out, hp)
	}
	return out, nil
}

// allLoopback reports whether every master is on this machine's loopback.
func allLoopback(masters []string) bool {
	for _, m := range masters {
		h, _, _ := net.SplitHostPort(m)
		ip := net.ParseIP(h)
		if !(h == "localhost" || ip != nil && ip.IsLoopback()) {
			return false
		}
	}
	return true
}
