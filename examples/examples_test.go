package examples_test

// End-to-end tests of the example drivers against a real cluster (ZooKeeper,
// two masters, two workers, all processes): pi, wordcount against the
// coreutils pipeline, the program shipped to executors from a driver whose
// binary is deleted, and wordcount through a SIGKILL of an executor and of
// the leading master.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/task/appui"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// examples builds bin/pi and bin/wordcount once per test process.
func examples(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sparkd-examples-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./examples/pi", "./examples/wordcount")
		cmd.Dir = testbin.Root()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	require.NoError(t, buildErr, "build the examples: %s", buildOut)
	return buildDir
}

// driver is one running example program.
type driver struct {
	cmd         *exec.Cmd
	out, errOut *cluster.SyncBuffer
	done        chan struct{}
}

var conf = []string{"--conf", "spark.executor.memory=64m", "--conf", "spark.ui.port=0",
	"--conf", "spark.network.timeout=4s", "--conf", "spark.executor.heartbeatInterval=500ms"}

func start(t *testing.T, c *cluster.Cluster, bin string, args ...string) *driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	all := append([]string{"--master", c.MasterURLs()}, conf...)
	d := &driver{cmd: exec.CommandContext(ctx, bin, append(all, args...)...), out: &cluster.SyncBuffer{}, errOut: &cluster.SyncBuffer{},
		done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.errOut
	require.NoError(t, d.cmd.Start())
	go func() { _ = d.cmd.Wait(); cancel(); close(d.done) }()
	t.Cleanup(func() {
		cancel()
		<-d.done
		for _, p := range d.executorPids() {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), d.errOut.String())
			files, _ := filepath.Glob(filepath.Join(c.Dir, "work", "*", "*", "*", "stderr"))
			for _, f := range files {
				t.Logf("---- %s ----\n%s", f, cluster.Tail(f, 10))
			}
		}
	})
	return d
}

var pidRE = regexp.MustCompile(`Registered executor \S+ on \S+ \(pid (\d+)\)`)

func (d *driver) executorPids() []int {
	var out []int
	for _, m := range pidRE.FindAllStringSubmatch(d.errOut.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// completed is how many tasks the driver's application UI counts as done.
func (d *driver) completed(*testing.T) int {
	return appui.CompletedTasks(appui.URLFromLog(d.errOut.String()))
}

func (d *driver) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("the driver did not finish within %s", timeout)
	}
	return d.cmd.ProcessState.ExitCode()
}

// words writes n files of random words with every kind of [:space:]
// between them, a leading blank, UTF-8 words, and a first file that does
// not end in a blank (its last word runs into the next file's first).
func words(t *testing.T, dir string, n, size int) []string {
	r := rand.New(rand.NewPCG(7, 13))
	vocab := []string{"spark", "sparkd", "go", "driver", "executor", "naïve", "Zoo", "zoo", "a", "A", "été", "x-y", "42", "{{x}}"}
	blanks := []string{" ", "  ", "\t", "\n", "\n\n", " \r\n", "\v", "\f"}
	var files []string
	for i := 0; i < n; i++ {
		var b strings.Builder
		if i == 0 {
			b.WriteString(" \t")
		}
		for b.Len() < size {
			b.WriteString(vocab[r.IntN(len(vocab))])
			if r.IntN(20) == 0 {
				b.WriteString(strconv.Itoa(r.IntN(1000)))
			}
			b.WriteString(blanks[r.IntN(len(blanks))])
		}
		s := b.String()
		if i == 0 {
			s = strings.TrimRight(s, " \t\n\r\v\f") + "tail"
		}
		f := filepath.Join(dir, fmt.Sprintf("words-%d.txt", i))
		require.NoError(t, os.WriteFile(f, []byte(s), 0o644))
		files = append(files, f)
	}
	return files
}

// coreutils is what the pipeline the wordcount example imitates prints.
func coreutils(t *testing.T, files []string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", `cat "$@" | tr -s '[:space:]' '\n' | sort | uniq -c`, "wc")
	cmd.Args = append(cmd.Args, files...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	require.NoError(t, err)
	return string(out)
}

func TestExamplesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	bins := examples(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 2, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m"})
	dir := t.TempDir()

	t.Run("pi", func(t *testing.T) {
		d := start(t, c, filepath.Join(bins, "pi"), "--samples", "200000", "4")
		require.Equal(t, 0, d.wait(t, 40*time.Second))
		assert.Regexp(t, `^Pi is roughly 3\.1[0-9]*\n$`, d.out.String())
	})

	t.Run("wordcount equals the coreutils pipeline, from a program no worker has", func(t *testing.T) {
		files := words(t, dir, 3, 40<<10)
		// The program is copied, started, and deleted before its tasks
		// run: no file system holds it but the executors' fetched copies.
		progDir := t.TempDir()
		prog := filepath.Join(progDir, "wordcount")
		data, err := os.ReadFile(filepath.Join(bins, "wordcount"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(prog, data, 0o755))
		d := start(t, c, prog, append([]string{"--chunk", "8k", "--task-delay", "100ms"}, files...)...)
		require.Eventually(t, func() bool { return strings.Contains(d.errOut.String(), "Bound SparkUI") }, 20*time.Second, 5*time.Millisecond)
		require.NoError(t, os.Remove(prog))
		var exes []string
		require.Eventually(t, func() bool {
			exes = exes[:0]
			for _, p := range d.executorPids() {
				if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); err == nil {
					exes = append(exes, exe)
				}
			}
			return len(exes) > 0
		}, 20*time.Second, 10*time.Millisecond, "an executor registered")
		for _, exe := range exes {
			assert.True(t, strings.HasPrefix(exe, filepath.Join(c.Dir, "work")+"/"), "executor runs the fetched copy, not %s", exe)
			assert.Contains(t, exe, "/files/")
		}
		require.Equal(t, 0, d.wait(t, 40*time.Second))
		assert.Equal(t, coreutils(t, files), d.out.String())
		logs, _ := filepath.Glob(filepath.Join(c.Dir, "work", "*", "*", "*", "stderr"))
		fetched := 0
		for _, l := range logs {
			if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("Fetched wordcount (sha256 ")) {
				fetched++
			}
		}
		assert.Positive(t, fetched, "an executor log says it fetched the program")
	})

	t.Run("wordcount is exact through a SIGKILL of an executor and of the leading master", func(t *testing.T) {
		files := words(t, t.TempDir(), 2, 100<<10)
		d := start(t, c, filepath.Join(bins, "wordcount"), append([]string{"--chunk", "4k", "--task-delay", "150ms",
			"--conf", "spark.executor.cores=1"}, files...)...)
		var pids []int
		require.Eventually(t, func() bool { pids = d.executorPids(); return len(pids) >= 2 }, 30*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return strings.Count(d.errOut.String(), "Registered executor") >= 3 }, 10*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return d.completed(t) >= 4 }, 20*time.Second, 20*time.Millisecond, "some tasks done")
		require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
		f, err := c.Failover(syscall.SIGKILL, "Word Count", 30*time.Second)
		require.NoError(t, err)
		t.Logf("master failover: %s ALIVE after %s", c.Masters[f.New].Name, f.Alive)
		require.Equal(t, 0, d.wait(t, 45*time.Second))
		assert.Equal(t, coreutils(t, files), d.out.String())
		log := d.errOut.String()
		assert.Regexp(t, `Lost executor \S+ on \S+: .*not counted as failures`, log)
		assert.Contains(t, log, "Master changed")
		assert.Regexp(t, `Job wordcount.count-slowly finished: \d+ task\(s\) in \S+; attempts: \d+ launched, 0 failed, [1-9]\d* lost`, log)
	})
}

// The comparison itself: a few inputs where the pipeline's edge cases show.
func TestWordcountEdgeCases(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	bins := examples(t)
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 1, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m"})
	for name, in := range map[string]string{
		"leading blanks":   "\n\n  a b\ta\n",
		"only blanks":      " \t\n",
		"no final newline": "b a b",
		"bytes":            "\xff\xfe x \x00y é",
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "in.txt")
			require.NoError(t, os.WriteFile(f, []byte(in), 0o644))
			d := start(t, c, filepath.Join(bins, "wordcount"), "--chunk", "2", f)
			require.Equal(t, 0, d.wait(t, 30*time.Second))
			assert.Equal(t, coreutils(t, []string{f}), d.out.String())
		})
	}
	t.Run("empty input", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "empty.txt")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		d := start(t, c, filepath.Join(bins, "wordcount"), f)
		require.Equal(t, 0, d.wait(t, 30*time.Second))
		assert.Equal(t, "", d.out.String())
		assert.Equal(t, coreutils(t, []string{f}), d.out.String())
	})
	t.Run("bad input is refused", func(t *testing.T) {
		d := start(t, c, filepath.Join(bins, "wordcount"), "--chunk", "lots", "x")
		assert.Equal(t, 2, d.wait(t, 10*time.Second))
		assert.Contains(t, d.errOut.String(), `--chunk "lots"`)
		d = start(t, c, filepath.Join(bins, "wordcount"), "/no/such/file")
		assert.Equal(t, 2, d.wait(t, 10*time.Second))
		assert.Contains(t, d.errOut.String(), "/no/such/file")
	})
}
