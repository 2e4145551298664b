package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every subcommand's --help writes flags as the README does (--flag, and
// -x for a one-letter alias), not Go's single-dash -flag.
func TestHelpShowsDoubleDashFlags(t *testing.T) {
	singleDashLong := regexp.MustCompile(`(?m)^\s+-[a-z][a-z-]+\b`)
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"master", []string{"  -h, --host string", "  -p, --port string", "  --webui-port string", "  --properties-file string", "  --log-level string"}},
		{"worker", []string{"  -c, --cores string", "  -m, --memory string", "  -d, --work-dir string", "  --webui-port string"}},
		{"submit", []string{"  --master string", "  --executor-memory string", "  --deploy-mode string", "  --wait duration", "  --supervise\n"}},
		{"status", []string{"  --master string", "  --zk string", "  --json\n", "  --timeout duration"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{tc.cmd, "--help"}, &out, &errb)
			help := out.String() + errb.String()
			assert.Equal(t, 0, code, help)
			for _, w := range tc.want {
				assert.Contains(t, help, w)
			}
			assert.NotRegexp(t, singleDashLong, help)
		})
	}
}
