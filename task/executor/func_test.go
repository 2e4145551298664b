package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

func startFuncBackend(t *testing.T, d *task.Driver, id string, cores int, funcs map[string]Func) *runningBackend {
	t.Helper()
	rb := &runningBackend{log: &syncBuf{}, out: &syncBuf{}, done: make(chan error, 1)}
	b, err := New(Config{DriverURL: d.URL(), AppID: "app-1", ExecutorID: id, Host: "host-" + id, Cores: cores,
		NetworkTimeout: 2 * time.Second, WorkDir: t.TempDir(), Stdout: rb.out, Stderr: rb.log, Logger: logger(rb.log), Funcs: funcs})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { rb.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rb.done:
		case <-time.After(10 * time.Second):
			t.Errorf("executor %s did not stop", id)
		}
	})
	return rb
}

func calls(fn string, n int) []task.Call {
	cs := make([]task.Call, n)
	for i := range cs {
		cs[i] = task.Call{Func: fn, Input: []byte(fmt.Sprintf("in-%d", i))}
	}
	return cs
}

// Function tasks go through the same scheduler and commit path as shell
// tasks: with one executor hanging, speculation runs its task elsewhere,
// the first result is taken, the straggler is killed (its ctx cancelled),
// and every result comes back once, in order.
func TestFunctionTasksWithSpeculationTakeOneResultEach(t *testing.T) {
	var cancelled atomic.Int32
	echo := func(ctx context.Context, in []byte) ([]byte, error) {
		time.Sleep(20 * time.Millisecond) // work, not synchronisation
		return append([]byte("r-"), in...), nil
	}
	hang := func(ctx context.Context, in []byte) ([]byte, error) {
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	}
	cfg := task.DefaultConfig()
	cfg.Speculation, cfg.SpeculationQuantile, cfg.SpeculationMinRuntime, cfg.SpeculationInterval = true, 0.5, 50*time.Millisecond, 20*time.Millisecond
	var events atomic.Int32
	d := newDriver(t, task.DriverConfig{Scheduler: cfg, Calls: calls("work", 12), Observe: func(task.Event) { events.Add(1) }})
	startFuncBackend(t, d, "slow", 1, map[string]Func{"work": hang})
	startFuncBackend(t, d, "fast", 2, map[string]Func{"work": echo})
	res := runDriver(t, d)
	require.True(t, res.OK, "%+v", res)
	require.Len(t, res.Outputs, 12)
	for i, o := range res.Outputs {
		assert.Equal(t, fmt.Sprintf("r-in-%d", i), string(o))
	}
	assert.Positive(t, res.Counts.Speculated)
	assert.Equal(t, 0, res.Counts.FailedAttempts)
	require.Eventually(t, func() bool { return cancelled.Load() > 0 }, 5*time.Second, 10*time.Millisecond, "the straggler's ctx is cancelled")
	assert.Positive(t, events.Load(), "observers hear of executors and attempts")
}

func TestFunctionTaskFailures(t *testing.T) {
	cfg := task.DefaultConfig()
	cfg.MaxFailures = 2
	for name, c := range map[string]struct {
		funcs map[string]Func
		want  string
	}{
		"unknown function": {map[string]Func{}, `no task function "work" is registered in this executor's program`},
		"error":            {map[string]Func{"work": func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no luck") }}, "no luck"},
		"panic":            {map[string]Func{"work": func(context.Context, []byte) ([]byte, error) { panic("boom") }}, "panic: boom"},
		"result too large": {map[string]Func{"work": func(context.Context, []byte) ([]byte, error) { return make([]byte, 100), nil }}, "output is 100 bytes, more than the 10"},
	} {
		t.Run(name, func(t *testing.T) {
			d := newDriver(t, task.DriverConfig{Scheduler: cfg, Calls: calls("work", 1), MaxOutput: 10})
			startFuncBackend(t, d, "0", 1, c.funcs)
			res := runDriver(t, d)
			require.False(t, res.OK)
			require.NotNil(t, res.Failure)
			assert.Equal(t, 2, res.Failure.Failures)
			assert.Contains(t, res.Failure.LastError, c.want)
		})
	}
}

func TestDriverRefusesBadCalls(t *testing.T) {
	_, err := task.NewDriver(task.DriverConfig{Calls: []task.Call{{Func: " "}}})
	assert.ErrorContains(t, err, "task 0 names no function")
	_, err = task.NewDriver(task.DriverConfig{Calls: []task.Call{{Func: "f", Input: make([]byte, task.MaxCallInput+1)}}})
	assert.ErrorContains(t, err, "more than the 1048576 a function task may take")
	_, err = task.NewDriver(task.DriverConfig{Calls: calls("f", 1), Commands: []string{"true"}})
	assert.ErrorContains(t, err, "not both")
	_, err = task.NewDriver(task.DriverConfig{Calls: calls("f", 1), OutputDir: t.TempDir()})
	assert.ErrorContains(t, err, "take no output directory")
}

func TestFetch(t *testing.T) {
	body := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	var gets atomic.Int32
	srv := httptest.NewServer(protocol.Authenticate("s3cret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		_, _ = w.Write(body)
	})))
	defer srv.Close()
	cache := t.TempDir()
	spec := FetchSpec{Name: "prog", SHA256: good, URL: srv.URL + "/files/prog"}

	_, err := Fetch(context.Background(), spec, cache, "", 0o755)
	require.ErrorContains(t, err, "HTTP 401", "an unsigned fetch is refused when the driver has a secret")

	path, err := Fetch(context.Background(), spec, cache, "s3cret", 0o755)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, good, "prog"), path)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	n := gets.Load()
	_, err = Fetch(context.Background(), spec, cache, "s3cret", 0o755)
	require.NoError(t, err)
	assert.Equal(t, n, gets.Load(), "the cached copy is used")

	bad := spec
	bad.SHA256 = hex.EncodeToString(make([]byte, 32))
	_, err = Fetch(context.Background(), bad, cache, "s3cret", 0o755)
	require.ErrorIs(t, err, ErrChecksum)
	assert.NoFileExists(t, filepath.Join(cache, bad.SHA256, "prog"))
	left, _ := filepath.Glob(filepath.Join(cache, bad.SHA256, "*"))
	assert.Empty(t, left, "no partial download is left")

	// A cached copy that was changed is fetched again.
	require.NoError(t, os.WriteFile(path, []byte("tampered"), 0o755))
	_, err = Fetch(context.Background(), spec, cache, "s3cret", 0o755)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	assert.Equal(t, body, got)

	placed, err := Place(path, t.TempDir())
	require.NoError(t, err)
	got, _ = os.ReadFile(placed)
	assert.Equal(t, body, got)
}
