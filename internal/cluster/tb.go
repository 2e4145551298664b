package cluster

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// TB lets commands (the demo, the failover benchmark) use the harnesses,
// which take a testing.TB, outside `go test`. It implements the methods the
// harnesses call; the others panic (they are never called). Fatal and
// Fatalf run the cleanups and exit the process with status 1.
type TB struct {
	testing.TB // nil: only to satisfy the interface's private method

	mu       sync.Mutex
	out      io.Writer
	verbose  bool
	failed   bool
	cleanups []func()
	dirs     []string
	name     string
}

// NewTB returns a TB that writes Log output to out when verbose is set
// (errors always).
func NewTB(name string, out io.Writer, verbose bool) *TB {
	return &TB{out: out, verbose: verbose, name: name}
}

func (t *TB) Helper()      {}
func (t *TB) Name() string { return t.name }

func (t *TB) Logf(format string, args ...any) {
	t.mu.Lock()
	v, failed := t.verbose, t.failed
	t.mu.Unlock()
	if v || failed {
		fmt.Fprintf(t.out, format+"\n", args...)
	}
}

func (t *TB) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }

func (t *TB) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(t.out, "error: "+format+"\n", args...)
}

func (t *TB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *TB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	t.RunCleanups()
	os.Exit(1)
}

func (t *TB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

func (t *TB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *TB) TempDir() string {
	dir, err := os.MkdirTemp("", "sparkd-"+t.name+"-")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, dir)
	t.mu.Unlock()
	return dir
}

func (t *TB) Setenv(key, value string) { _ = os.Setenv(key, value) }

func (t *TB) Skipf(format string, args ...any) { t.Fatalf("skipped: "+format, args...) }

// RunCleanups runs the registered cleanups, last first, then removes the
// temporary directories (kept when the run failed, or when SPARKD_KEEP_LOGS
// is set).
// It is safe to call more than once.
func (t *TB) RunCleanups() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	dirs := t.dirs
	t.dirs = nil
	failed := t.failed
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	if failed || os.Getenv("SPARKD_KEEP_LOGS") != "" {
		if len(dirs) > 0 {
			fmt.Fprintf(t.out, "logs kept in %v\n", dirs)
		}
		return
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
