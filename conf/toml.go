package conf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// readTOML reads a --config file. Its keys are the spark.* names; nested
// tables flatten to dotted keys, so these are the same setting:
//
//	"spark.deploy.recoveryMode" = "ZOOKEEPER"
//	[spark.deploy]
//	recoveryMode = "ZOOKEEPER"
//
// Strings, integers, floats and booleans become their text; an array of
// strings or numbers becomes a comma list (handy for spark.deploy.zookeeper.url
// and spark.master). Dates are refused. Setting one key twice is an error.
func readTOML(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %w", ErrFile, err)
	}
	kv, err := parseTOML(string(b))
	if err != nil {
		return nil, fmt.Errorf("conf: %s: %w", path, err)
	}
	return kv, nil
}

func parseTOML(text string) (map[string]string, error) {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrSyntax, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	out := map[string]string{}
	if err := flattenTOML("", raw, out); err != nil {
		return nil, err
	}
	return out, nil
}

func flattenTOML(prefix string, m map[string]any, out map[string]string) error {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			if err := flattenTOML(key, sub, out); err != nil {
				return err
			}
			continue
		}
		s, err := tomlScalar(key, v)
		if err != nil {
			return err
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("%w: key %s is set twice (once as a dotted name, once in a table)", ErrSyntax, key)
		}
		out[key] = s
	}
	return nil
}

func tomlScalar(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case []any, map[string]any:
				return "", fmt.Errorf("%w: key %s: nested arrays and tables in arrays are not supported", ErrSyntax, key)
			}
			s, err := tomlScalar(key, e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	case time.Time:
		return "", fmt.Errorf("%w: key %s: dates are not configuration values; write durations as strings (\"60s\")", ErrSyntax, key)
	}
	return "", fmt.Errorf("%w: key %s: unsupported TOML value %T", ErrSyntax, key, v)
}
