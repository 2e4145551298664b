package conf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultMasterPort is the master RPC port when a URL has none.
const DefaultMasterPort = 7077

// ParseMasterURLs parses a standalone master URL as Spark does
// (Utils.parseStandaloneMasterUrls): "spark://h1:7077,h2:7077" lists every
// master after a single spark:// prefix. It returns host:port addresses:
// "spark://h1:7077,h2" -> ["h1:7077", "h2:7077"]. A host without a port gets
// 7077; IPv6 hosts must be bracketed ("[::1]:7077", returned bracketed). Each
// element may repeat the spark:// prefix, and one trailing "/" is allowed.
// Any other scheme, an empty host, a bad port (0 included) or an empty list
// element is an error wrapping ErrInvalid.
func ParseMasterURLs(s string) ([]string, error) {
	orig := s
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "spark://")
	if !ok {
		if i := strings.Index(s, "://"); i >= 0 {
			return nil, fmt.Errorf("%w: master URL %q: scheme %q is not supported; want spark://host:port[,host:port...]", ErrInvalid, orig, s[:i])
		}
		return nil, fmt.Errorf("%w: master URL %q: want spark://host:port[,host:port...]", ErrInvalid, orig)
	}
	rest = strings.TrimSuffix(rest, "/")
	parts := strings.Split(rest, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.TrimPrefix(p, "spark://")
		p = strings.TrimSuffix(p, "/")
		addr, err := parseHostPort(p)
		if err != nil {
			return nil, fmt.Errorf("%w: master URL %q: %w", ErrInvalid, orig, err)
		}
		out = append(out, addr)
	}
	return out, nil
}

func parseHostPort(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty host")
	}
	host, port := p, ""
	switch {
	case strings.HasPrefix(p, "["):
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return "", fmt.Errorf("%q: missing ] after IPv6 address", p)
		}
		host = p[1:end]
		after := p[end+1:]
		if after != "" {
			var ok bool
			if port, ok = strings.CutPrefix(after, ":"); !ok {
				return "", fmt.Errorf("%q: unexpected %q after ]", p, after)
			}
			if port == "" {
				return "", fmt.Errorf("%q: empty port", p)
			}
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil && !strings.Contains(host, ":") {
			return "", fmt.Errorf("%q: %q in brackets is not an IPv6 address", p, host)
		}
	case strings.Count(p, ":") > 1:
		return "", fmt.Errorf("%q: IPv6 addresses must be in brackets, e.g. [::1]:7077", p)
	default:
		if h, pt, ok := strings.Cut(p, ":"); ok {
			if pt == "" {
				return "", fmt.Errorf("%q: empty port", p)
			}
			host, port = h, pt
		}
		if host == "" {
			return "", fmt.Errorf("%q: empty host", p)
		}
		for _, c := range host {
			if !(c == '-' || c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return "", fmt.Errorf("%q: bad character %q in host", p, c)
			}
		}
	}
	n := DefaultMasterPort
	if port != "" {
		v, err := strconv.Atoi(port)
		if err != nil || v < 1 || v > 65535 || strings.HasPrefix(port, "+") {
			return "", fmt.Errorf("%q: port %q is not in 1-65535", p, port)
		}
		n = v
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// ParseMemoryMB parses a memory size as Spark's worker memory
// (Utils.memoryStringToMb): a plain number is MB; suffixes b, k/kb, m/mb,
// g/gb, t/tb, p/pb (case-insensitive, powers of 1024). The result is whole MB,
// rounded down ("1536k" = 1). Negative, fractional, empty and overflowing
// sizes are errors wrapping ErrInvalid.
func ParseMemoryMB(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: memory size %q: want a number with an optional unit (512m, 2g, 1t; plain number = MB)", ErrInvalid, s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: memory size %q: too large", ErrInvalid, s)
	}
	var shift uint // bytes = n << shift
	switch strings.TrimSpace(t[i:]) {
	case "b":
		shift = 0
	case "k", "kb":
		shift = 10
	case "", "m", "mb":
		shift = 20
	case "g", "gb":
		shift = 30
	case "t", "tb":
		shift = 40
	case "p", "pb":
		shift = 50
	default:
		return 0, fmt.Errorf("%w: memory size %q: unknown unit %q; want b, k, m, g, t or p", ErrInvalid, s, t[i:])
	}
	var mb uint64
	if shift >= 20 {
		if n > math.MaxInt32>>(shift-20) {
			return 0, fmt.Errorf("%w: memory size %q: too large", ErrInvalid, s)
		}
		mb = n << (shift - 20)
	} else {
		mb = n >> (20 - shift)
	}
	return int(mb), nil
}

// ParseDuration parses a duration as Spark's time strings
// (JavaUtils.timeStringAs): an integer with a suffix us, ms, s, m or min, h,
// d ("60s", "500ms", "2min"); a bare number is in unit, the key's Spark unit
// (seconds for spark.worker.timeout). Go's compound form ("1m30s") is
// accepted too. Negative, empty and overflowing durations are errors
// wrapping ErrInvalid.
func ParseDuration(s string, unit time.Duration) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: duration %q: %s", ErrInvalid, s, why)
	}
	if i == 0 {
		return 0, bad("want a number with an optional unit (500ms, 60s, 2min, 1h)")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, bad("too large")
	}
	var u time.Duration
	switch strings.TrimSpace(t[i:]) {
	case "":
		u = unit
	case "us":
		u = time.Microsecond
	case "ms":
		u = time.Millisecond
	case "s":
		u = time.Second
	case "m", "min":
		u = time.Minute
	case "h":
		u = time.Hour
	case "d":
		u = 24 * time.Hour
	default:
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 {
			return 0, bad("unknown unit; want us, ms, s, m/min, h or d")
		}
		return d, nil
	}
	if u <= 0 {
		return 0, bad("no unit given and the key has none")
	}
	if n > math.MaxInt64/int64(u) {
		return 0, bad("too large")
	}
	return time.Duration(n) * u, nil
}
