// Package importcheck enforces the dependency directions of DESIGN.md with
// `go list -deps`, so that a wrong import fails CI.
package importcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/sparkd/sparkd"

// rules: package pattern -> forbidden dependency (project path or module prefix).
// recovery's root package holds only interfaces, NONE and FILESYSTEM; the
// ZooKeeper implementation is recovery/zkrecovery, so that master, which uses
// the interfaces, never links ZooKeeper code.
// A pattern ending in "/..." includes subpackages. A forbidden entry matches
// that path and everything below it; the module path alone forbids every project
// package.
var rules = []struct {
	pkg       string
	forbidden []string
}{
	{"conf/...", []string{module}},
	{"protocol/...", []string{module}},
	{"zkutil/...", []string{module + "/recovery", module + "/master", module + "/worker", module + "/client", module + "/conf"}},
	{"recovery", []string{module + "/zkutil", "github.com/go-zookeeper/zk", module + "/master", module + "/worker", module + "/client", module + "/conf"}},
	{"recovery/zkrecovery/...", []string{module + "/master", module + "/worker", module + "/client", module + "/conf"}},
	{"master/...", []string{module + "/zkutil", "github.com/go-zookeeper/zk", module + "/recovery/zkrecovery", module + "/worker", module + "/client", module + "/conf"}},
	{"worker/...", []string{module + "/master", module + "/recovery", module + "/zkutil", "github.com/go-zookeeper/zk", module + "/client", module + "/conf"}},
	{"client/...", []string{module + "/master", module + "/worker", module + "/recovery", module + "/zkutil", "github.com/go-zookeeper/zk", module + "/conf"}},
	// The task runtime (driver-side scheduler, executor backend) may use
	// client and protocol only; the master and worker never import it.
	{"task/...", []string{module + "/master", module + "/worker", module + "/recovery", module + "/zkutil", "github.com/go-zookeeper/zk", module + "/conf", module + "/internal"}},
	// The Go driver API is for programs outside this module too: the task
	// runtime, client and protocol only.
	{"spark/...", []string{module + "/master", module + "/worker", module + "/recovery", module + "/zkutil", "github.com/go-zookeeper/zk", module + "/conf", module + "/internal"}},
	{"master/...", []string{module + "/task"}},
	{"worker/...", []string{module + "/task"}},
}

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func deps(t *testing.T, root, pattern string) ([]string, bool) {
	dir := strings.TrimSuffix(pattern, "/...")
	if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
		return nil, false
	}
	cmd := exec.Command("go", "list", "-deps", "./"+pattern)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "matched no packages") {
			return nil, false
		}
		t.Fatalf("go list -deps ./%s: %v\n%s", pattern, err, out)
	}
	return strings.Fields(string(out)), true
}

// violations lists the dependencies of pattern (deps, as go list -deps prints
// them) that a rule forbids.
func violations(pattern string, deps, forbidden []string) []string {
	self := module + "/" + strings.TrimSuffix(pattern, "/...")
	var bad []string
	for _, d := range deps {
		if d == self || strings.HasSuffix(pattern, "/...") && strings.HasPrefix(d, self+"/") {
			continue // the package itself and its own subpackages
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

func TestImportRules(t *testing.T) {
	root := repoRoot(t)
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			list, ok := deps(t, root, r.pkg)
			if !ok {
				t.Fatalf("package %s does not exist; DESIGN.md's layout names it", r.pkg)
			}
			for _, d := range violations(r.pkg, list, r.forbidden) {
				t.Errorf("%s depends on %s, which DESIGN.md forbids", r.pkg, d)
			}
		})
	}
}

func TestViolationsMatcher(t *testing.T) {
	forbidden := []string{module + "/zkutil", "github.com/go-zookeeper/zk"}
	deps := []string{"net/http", module + "/master", module + "/master/ui", module + "/protocol",
		module + "/zkutil", "github.com/go-zookeeper/zk", module + "/zkutilx"}
	got := violations("master/...", deps, forbidden)
	want := []string{module + "/zkutil", "github.com/go-zookeeper/zk"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("violations = %v, want %v", got, want)
	}
	if got := violations("conf/...", []string{module + "/conf", module + "/conf/x", "fmt", module + "/protocol"}, []string{module}); len(got) != 1 || got[0] != module+"/protocol" {
		t.Fatalf("a leaf importing a project package must be caught, got %v", got)
	}
	if got := violations("recovery", []string{module + "/recovery", module + "/recovery/zkrecovery"}, []string{module + "/recovery/zkrecovery"}); len(got) != 1 {
		t.Fatalf("without /... a subpackage is not the package itself, got %v", got)
	}
}
