// Package cli holds what the example drivers share: --master and --conf
// flags.
package cli

import (
	"fmt"
	"strings"
)

// Conf is a repeatable --conf key=value flag.
type Conf map[string]string

func (c Conf) String() string {
	var parts []string
	for k, v := range c {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// Set parses key=value.
func (c Conf) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("--conf %q: want key=value", s)
	}
	c[strings.TrimSpace(k)] = v
	return nil
}
