// Package testbin gives end-to-end tests the path of a sparkd binary: the one
// named by $SPARKD_BIN (set by `make test`), or one built once per test
// process from this checkout.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once    sync.Once
	built   string
	buildEr error
	out     []byte
)

// Path returns an executable sparkd binary, building it if needed.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SPARKD_BIN"); p != "" {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "sparkd-bin-")
		if err != nil {
			buildEr = err
			return
		}
		built = filepath.Join(dir, "sparkd")
		cmd := exec.Command("go", "build", "-o", built, "./cmd/sparkd")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, buildEr = cmd.CombinedOutput()
	})
	if buildEr != nil {
		t.Fatalf("build sparkd: %v\n%s", buildEr, out)
	}
	return built
}

// Root returns the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
