package spark

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparkd/sparkd/task"
)

// parseLocal reads Spark's local master URLs: local (1 thread), local[N],
// local[*] (one per CPU). It returns 0 for anything else.
func parseLocal(m string) (int, error) {
	m = strings.TrimSpace(m)
	if m == "local" {
		return 1, nil
	}
	rest, ok := strings.CutPrefix(m, "local[")
	if !ok {
		return 0, nil
	}
	n, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return 0, fmt.Errorf("spark: master %q: want local, local[N] or local[*]", m)
	}
	if n == "*" {
		return runtime.NumCPU(), nil
	}
	k, err := strconv.Atoi(n)
	if err != nil || k < 1 {
		return 0, fmt.Errorf("spark: master %q: want local, local[N] with N at least 1, or local[*]", m)
	}
	return k, nil
}

// runLocal runs a job in this process, c.local tasks at a time, each
// retried up to spark.task.maxFailures times, recorded in the UI as on a
// cluster (executor "driver").
func (c *Context) runLocal(ctx context.Context, fn string, calls []task.Call) ([][]byte, error) {
	f, _ := lookup(fn)
	job := c.ui.StartJob(fn, len(calls))
	const app, executor = "local", "local/driver"
	job.SetApp(app)
	now := time.Now
	job.Observe(task.Event{Kind: task.ExecutorAdded, Time: now(), Executor: executor, Host: "localhost", Cores: c.local})
	outs := make([][]byte, len(calls))
	errs := make([]error, len(calls))
	sem := make(chan struct{}, c.local)
	var wg sync.WaitGroup
	var mu sync.Mutex
	attemptID := task.AttemptID(0)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < c.set.sched.MaxFailures; n++ {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
				mu.Lock()
				attemptID++
				id := attemptID
				mu.Unlock()
				job.Observe(task.Event{Kind: task.AttemptLaunched, Time: now(), Executor: executor, Host: "localhost", Task: i, Number: n, Attempt: id})
				out, err := callLocal(ctx, f, call.Input)
				<-sem
				e := task.Event{Kind: task.AttemptEnded, Time: now(), Executor: executor, Host: "localhost", Task: i, Number: n, Attempt: id, State: task.AttemptSuccess}
				if err != nil {
					e.State, e.Error = task.AttemptFailed, err.Error()
				}
				job.Observe(e)
				if err == nil {
					outs[i] = out
					return
				}
				errs[i] = &TaskError{Task: i, Failures: n + 1, LastError: err.Error()}
				if ctx.Err() != nil {
					return
				}
			}
			cancel() // maxFailures reached: the job fails
		}()
	}
	wg.Wait()
	for _, err := range errs {
		var te *TaskError
		if errors.As(err, &te) && te.Failures >= c.set.sched.MaxFailures {
			job.End(false, err.Error())
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			job.End(false, err.Error())
			return nil, fmt.Errorf("spark: job %s: %w", fn, err)
		}
	}
	job.End(true, "")
	return outs, nil
}

func callLocal(ctx context.Context, f Func, input []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(ctx, input)
}
