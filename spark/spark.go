// Package spark lets a Go program be a Spark-style driver on a sparkd
// cluster: it registers named task functions, and runs them as tasks on the
// executors the master grants it, getting their results back in order.
//
// The program is its own executor. Each executor a worker starts for the
// application runs `sparkd executor --fetch`, which downloads this very
// program from the driver (its file server on spark.ui.port), checks its
// sha256, and runs it with SPARKD_GO_EXECUTOR=1: NewContext then serves the
// registered functions and exits instead of returning, so main's job never
// runs on an executor. Workers need no copy of the program.
//
// A program therefore registers its functions before NewContext (in init or
// at the top of main), and registers the same ones whatever its arguments:
//
//	func init() { spark.Register("square", square) }
//
//	func main() {
//		sc, err := spark.NewContext(spark.Config{AppName: "squares"})
//		...
//		defer sc.Close()
//		outs, err := sc.Run(ctx, "square", inputs)
//	}
//
// Guaranteed (by the task runtime, package task): a task that fails is
// retried up to spark.task.maxFailures times, elsewhere if possible; a
// task lost with its executor runs again without counting as a failure;
// with spark.speculation a straggler runs twice; whatever happens, each
// task's result is taken from exactly one successful attempt and the
// results come back in the order of the inputs. A master failover costs a
// running job nothing.
// Not guaranteed: that a function runs once per task (a retried, lost or
// speculated attempt may have run too): task functions should be free of
// side effects outside their result, or idempotent.
//
// Each Run is a job and, in this version, its own application on the
// master (executors are started for it and stop when it ends).
//
// Master "local[N]" runs the tasks in the driver's process instead, N at a
// time, with the same retries: for development, tests and the examples
// below.
package spark

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/sparkd/sparkd/task"
	"github.com/sparkd/sparkd/task/executor"
)

// Func is a task function: it gets a task's input and returns its result.
// It should return soon after ctx is cancelled (the attempt was killed, for
// example the loser of a speculative race). A returned error or a panic
// fails the attempt, which is then retried.
type Func = executor.Func

var (
	regMu    sync.Mutex
	registry = map[string]Func{}
)

// Register makes fn callable as a task under name. Call it before
// NewContext, with the same names in every run of the program (the
// executors are this program too). It panics on an empty name, a nil
// function or a name registered twice, as http.Handle does.
func Register(name string, fn Func) {
	regMu.Lock()
	defer regMu.Unlock()
	switch {
	case strings.TrimSpace(name) == "":
		panic("spark: Register with an empty name")
	case fn == nil:
		panic("spark: Register " + name + " with a nil function")
	}
	if _, ok := registry[name]; ok {
		panic("spark: Register called twice for " + name)
	}
	registry[name] = fn
}

// lookup returns the function registered under name.
func lookup(name string) (Func, bool) {
	regMu.Lock()
	defer regMu.Unlock()
	fn, ok := registry[name]
	return fn, ok
}

// registered lists the registered names, sorted.
func registered() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func funcs() map[string]Func {
	regMu.Lock()
	defer regMu.Unlock()
	m := make(map[string]Func, len(registry))
	for k, v := range registry {
		m[k] = v
	}
	return m
}

// IsExecutor reports whether this process was started as an executor of a
// Go driver (SPARKD_GO_EXECUTOR=1, set by `sparkd executor --fetch`). In
// that case NewContext serves the registered functions and exits.
func IsExecutor() bool { return os.Getenv(executor.EnvGoExecutor) == "1" }

// TaskError is how a job failed because of one task: it failed
// spark.task.maxFailures times.
type TaskError struct {
	Task      int
	Failures  int
	LastError string
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("spark: task %d failed %d time(s); last error: %s", e.Task, e.Failures, e.LastError)
}

// MaxTaskInput bounds one task's input (a launch must fit a message).
const MaxTaskInput = task.MaxCallInput
