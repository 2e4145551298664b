package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
)

// execScript is every executor's command: `sh execScript DIR SECONDS`. It
// creates DIR/<app>-<executor id> with O_EXCL (noclobber): a second launch
// of the same executor of the same application cannot, and records itself
// in DIR/dup-<app>-<executor id> instead (and exits 0 at once, so that the
// duplicate shows as exactly one violation). Otherwise it records its pid
// in DIR/pids (teardown kills leftovers), sleeps, and writes
// DIR/<app>-<executor id>.done when its command has finished.
const execScript = `#!/bin/sh
d="$1"; secs="$2"
m="$d/$SPARK_APP_ID-$SPARK_EXECUTOR_ID"
now() { date -u +%H:%M:%S.%N | cut -c1-12; }
# In a subshell: a failed redirection of a special builtin ends the shell.
if ! (set -C; : > "$m") 2>/dev/null; then
  echo "$(now) pid $$ worker $SPARK_WORKER_ID" >> "$d/dup-$SPARK_APP_ID-$SPARK_EXECUTOR_ID"
  exit 0
fi
echo "$(now) pid $$ worker $SPARK_WORKER_ID" >> "$m"
echo $$ > "$d/pids/$$"
sleep "$secs"
echo "$(now)" > "$m.done"
rm -f "$d/pids/$$"
exit 0
`

// App is one `sparkd submit --exec` application of the workload.
type App struct {
	N         int
	Name      string
	Executors int
	Sleep     string // seconds each executor sleeps
	Started   time.Time
	out, errb cluster.SyncBuffer
	cmd       *exec.Cmd
	done      chan struct{}

	mu    sync.Mutex
	ended time.Time
	exit  int
}

var registeredRE = regexp.MustCompile(`application (\S+) \(([^)]*)\) registered with master (\S+) \(epoch (\d+)\)`)

// AppID is the id submit printed when the master acknowledged the
// registration ("" when it was not acknowledged).
func (a *App) AppID() string {
	if m := registeredRE.FindStringSubmatch(a.out.String()); m != nil {
		return m[1]
	}
	return ""
}

var reregisteredRE = regexp.MustCompile(`(\S+) application registered again as (\S+) with master (\S+) \(epoch (\d+)\): (.*)`)

// Reregistrations are submit's lines saying a master forgot the
// application and it registered again under a new id.
func (a *App) Reregistrations() []string {
	return reregisteredRE.FindAllString(a.out.String(), -1)
}

// CurrentID is the application's latest id (after re-registrations).
func (a *App) CurrentID() string {
	ms := reregisteredRE.FindAllStringSubmatch(a.out.String(), -1)
	if len(ms) > 0 {
		return ms[len(ms)-1][2]
	}
	return a.AppID()
}

// LastActivity is the time of submit's last timestamped line (Started if
// none).
func (a *App) LastActivity() time.Time {
	last := a.Started
	day := a.Started.UTC().Truncate(24 * time.Hour)
	for _, l := range strings.Split(a.out.String(), "\n") {
		if len(l) < 12 {
			continue
		}
		t, err := time.Parse("15:04:05.000", l[:12])
		if err != nil {
			continue
		}
		at := day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
			time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond()))
		if at.Before(a.Started.Add(-time.Hour)) {
			at = at.Add(24 * time.Hour) // past midnight
		}
		if at.After(last) {
			last = at
		}
	}
	return last
}

// Acked reports whether submit printed that the application was registered.
func (a *App) Acked() bool { return a.AppID() != "" }

// Ended reports whether submit exited, when, and its exit code.
func (a *App) Ended() (bool, time.Time, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.ended.IsZero(), a.ended, a.exit
}

// Stdout and Stderr are submit's output so far.
func (a *App) Stdout() string { return a.out.String() }
func (a *App) Stderr() string { return a.errb.String() }

// workload keeps applications running: a new one every few seconds until
// stopped.
type workload struct {
	c         *cluster.Cluster
	h         *History
	dir       string // markers
	script    string
	rng       *rand.Rand
	maxEvery  time.Duration
	maxExecs  int
	submitCtx context.Context // bounds every submit

	mu   sync.Mutex
	apps []*App
	wg   sync.WaitGroup
}

func newWorkload(c *cluster.Cluster, h *History, dir string, seed uint64, maxEvery time.Duration, maxExecs int) (*workload, error) {
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "..", "exec.sh")
	if err := os.WriteFile(script, []byte(execScript), 0o755); err != nil {
		return nil, err
	}
	c.TrackPids(filepath.Join(dir, "pids"))
	return &workload{c: c, h: h, dir: dir, script: script, rng: rand.New(rand.NewPCG(seed, 0x61707073)), // "apps"
		maxEvery: maxEvery, maxExecs: maxExecs}, nil
}

// run submits applications until stop is closed (or ctx ends).
func (w *workload) run(ctx context.Context, stop <-chan struct{}) {
	for n := 1; ; n++ {
		w.submit(n)
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-time.After(ms(w.rng, 500*time.Millisecond, w.maxEvery)):
		}
	}
}

func (w *workload) submit(n int) {
	execs := 1 + w.rng.IntN(w.maxExecs)
	sleep := strconv.FormatFloat(float64(2+w.rng.IntN(5))/2, 'f', 1, 64) // 1.0 .. 3.0 s
	a := &App{N: n, Name: fmt.Sprintf("chaos-%d", n), Executors: execs, Sleep: sleep, done: make(chan struct{})}
	args := []string{"submit", "--master", w.c.MasterURLs(), "--name", a.Name,
		"--executor-cores", "1", "--total-executor-cores", strconv.Itoa(execs), "--executors", strconv.Itoa(execs),
		"--executor-memory", "64m", "--wait", "30s", "--exec", "--", "/bin/sh", w.script, w.dir, sleep}
	a.cmd = w.c.Command(w.submitCtx, args...)
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.errb
	a.cmd.WaitDelay = 5 * time.Second
	a.Started = time.Now()
	if err := a.cmd.Start(); err != nil {
		w.h.Eventf("app %s: could not start submit: %v", a.Name, err)
		close(a.done)
		a.mu.Lock()
		a.ended, a.exit = time.Now(), -1
		a.mu.Unlock()
	} else {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			err := a.cmd.Wait()
			code := a.cmd.ProcessState.ExitCode()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				code = -1
			}
			a.mu.Lock()
			a.ended, a.exit = time.Now(), code
			a.mu.Unlock()
			close(a.done)
		}()
	}
	w.mu.Lock()
	w.apps = append(w.apps, a)
	w.mu.Unlock()
}

// Apps returns every application submitted so far.
func (w *workload) Apps() []*App {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*App(nil), w.apps...)
}

// drain waits until every submit has exited or the deadline passes, and
// returns those still running.
func (w *workload) drain(ctx context.Context, deadline time.Time) []*App {
	for _, a := range w.Apps() {
		select {
		case <-a.done:
		case <-ctx.Done():
		case <-time.After(time.Until(deadline)):
		}
	}
	var out []*App
	for _, a := range w.Apps() {
		if ok, _, _ := a.Ended(); !ok {
			out = append(out, a)
		}
	}
	return out
}

// killAll ends every submit still running (SIGKILL to its process group)
// and waits for them.
func (w *workload) killAll() {
	for _, a := range w.Apps() {
		if ok, _, _ := a.Ended(); !ok && a.cmd.Process != nil {
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	w.wg.Wait()
}

// markers describes what the executors of app id left in the marker dir:
// the executor ids started and the ids whose command finished.
func (w *workload) markers(id string) (started, finished []int) {
	ents, _ := os.ReadDir(w.dir)
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), id+"-")
		if !ok {
			continue
		}
		if base, ok := strings.CutSuffix(name, ".done"); ok {
			if n, err := strconv.Atoi(base); err == nil {
				finished = append(finished, n)
			}
		} else if n, err := strconv.Atoi(name); err == nil {
			started = append(started, n)
		}
	}
	sort.Ints(started)
	sort.Ints(finished)
	return started, finished
}

// duplicates returns the dup-<app>-<exec> marker files and their contents,
// and the first-launch marker of the same executor.
func (w *workload) duplicates() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(w.dir)
	for _, e := range ents {
		key, ok := strings.CutPrefix(e.Name(), "dup-")
		if !ok {
			continue
		}
		dup, _ := os.ReadFile(filepath.Join(w.dir, e.Name()))
		first, _ := os.ReadFile(filepath.Join(w.dir, key))
		out[key] = fmt.Sprintf("first launch: %s; again: %s", strings.TrimSpace(string(first)), strings.ReplaceAll(strings.TrimSpace(string(dup)), "\n", "; "))
	}
	return out
}

// endingSoon reports whether some executor's command started and, by its
// application's sleep, ends between lo and hi from now.
func (w *workload) endingSoon(lo, hi time.Duration) (string, bool) {
	sleeps := map[string]time.Duration{}
	for _, a := range w.Apps() {
		if id := a.AppID(); id != "" {
			if f, err := strconv.ParseFloat(a.Sleep, 64); err == nil {
				sleeps[id] = time.Duration(f * float64(time.Second))
			}
		}
	}
	ents, _ := os.ReadDir(w.dir)
	now := time.Now()
	for _, e := range ents {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if i < 0 || strings.HasPrefix(name, "dup-") || strings.Contains(name, ".") {
			continue
		}
		sleep, ok := sleeps[name[:i]]
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		left := info.ModTime().Add(sleep).Sub(now)
		if left >= lo && left <= hi {
			return fmt.Sprintf("executor %s ends in about %s", name, left.Round(10*time.Millisecond)), true
		}
	}
	return "", false
}
