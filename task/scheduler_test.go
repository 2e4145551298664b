package task

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is the injected clock of the scheduler tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newSched(t *testing.T, cfg Config, n int, skip map[int]bool) (*Scheduler, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	specs := make([]Spec, n)
	for i := range specs {
		specs[i] = Spec{Index: i}
	}
	s, err := NewScheduler(cfg, specs, skip, clk.now)
	require.NoError(t, err)
	return s, clk
}

func byTask(ls []Launch) map[int]Launch {
	m := map[int]Launch{}
	for _, l := range ls {
		m[l.Task] = l
	}
	return m
}

func TestSchedulerSlots(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cpus, cores, n  int
		wantFirstOffer  int
		wantOnOneFinish int
	}{
		{"one slot per core", 1, 4, 10, 4, 1},
		{"spark.task.cpus=2 halves the slots", 2, 4, 10, 2, 1},
		{"fewer tasks than slots", 1, 8, 3, 3, 0},
		{"cores below task cpus: no slot", 3, 2, 5, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSched(t, Config{TaskCPUs: tc.cpus}, tc.n, nil)
			s.AddExecutor("e1", "h1", tc.cores)
			first := s.Offer()
			assert.Len(t, first, tc.wantFirstOffer)
			assert.Empty(t, s.Offer(), "no slot is free")
			if len(first) == 0 {
				return
			}
			_, ok := s.Finished(first[0].Attempt, EndSucceeded, "")
			require.True(t, ok)
			assert.Len(t, s.Offer(), tc.wantOnOneFinish)
		})
	}
}

func TestSchedulerMaxFailures(t *testing.T) {
	s, _ := newSched(t, Config{MaxFailures: 3}, 2, nil)
	s.AddExecutor("e1", "h1", 1)
	s.AddExecutor("e2", "h1", 1)
	var numbers []int
	for i := 0; i < 3; i++ {
		l := byTask(s.Offer())
		a, ok := l[0]
		require.True(t, ok, "task 0 is (re)launched, attempt %d", i)
		numbers = append(numbers, a.Number)
		require.False(t, s.Over())
		_, ok = s.Finished(a.Attempt, EndFailed, "exit status 3; stderr: boom")
		require.True(t, ok)
	}
	assert.Equal(t, []int{0, 1, 2}, numbers, "attempt numbers count up")
	require.True(t, s.Over(), "3 failures of one task fail the job")
	f := s.Failure()
	require.NotNil(t, f)
	assert.Equal(t, 0, f.Task)
	assert.Equal(t, 3, f.Failures)
	assert.Equal(t, "exit status 3; stderr: boom", f.LastError)
	assert.Empty(t, s.Offer(), "nothing is launched once the job failed")
	c := s.Counts()
	assert.Equal(t, 3, c.FailedAttempts)
	assert.Equal(t, 1, c.Failed)
}

func TestSchedulerExecutorLossIsNotAFailure(t *testing.T) {
	s, _ := newSched(t, Config{MaxFailures: 1}, 4, nil)
	s.AddExecutor("e1", "h1", 2)
	s.AddExecutor("e2", "h2", 2)
	launched := s.Offer()
	require.Len(t, launched, 4)
	var onE1 []int
	for _, l := range launched {
		if l.Executor == "e1" {
			onE1 = append(onE1, l.Task)
		}
	}
	require.Len(t, onE1, 2)
	lost := s.RemoveExecutor("e1", "gone")
	require.Len(t, lost, 2)
	assert.False(t, s.Over(), "maxFailures=1, yet losing an executor fails nothing")
	assert.Nil(t, s.Failure())
	assert.Empty(t, s.Offer(), "e2's slots are busy")
	for _, l := range launched {
		if l.Executor == "e2" {
			_, ok := s.Finished(l.Attempt, EndSucceeded, "")
			require.True(t, ok)
		}
	}
	again := byTask(s.Offer())
	for _, task := range onE1 {
		l, ok := again[task]
		require.True(t, ok, "task %d re-runs", task)
		assert.Equal(t, "e2", l.Executor, "elsewhere")
		assert.Equal(t, 1, l.Number, "as a new attempt")
		_, ok = s.Finished(l.Attempt, EndSucceeded, "")
		require.True(t, ok)
	}
	require.True(t, s.Over())
	assert.Nil(t, s.Failure())
	c := s.Counts()
	assert.Equal(t, 0, c.FailedAttempts)
	assert.Equal(t, 2, c.LostAttempts)
	assert.Equal(t, 4, c.Succeeded)
	_, ok := s.Finished(lost[0].Attempt, EndSucceeded, "")
	assert.False(t, ok, "a lost attempt's late report is ignored")
	assert.Nil(t, s.RemoveExecutor("e1", "gone"), "removing twice is a no-op")
}

func TestSchedulerSpeculation(t *testing.T) {
	cfg := Config{Speculation: true}
	s, clk := newSched(t, cfg, 4, nil)
	for _, e := range []string{"e1", "e2", "e3", "e4"} {
		s.AddExecutor(e, "h", 1)
	}
	ls := byTask(s.Offer())
	require.Len(t, ls, 4)
	clk.advance(time.Second)
	for i := 0; i < 3; i++ {
		_, ok := s.Finished(ls[i].Attempt, EndSucceeded, "")
		require.True(t, ok)
	}
	// Median 1s, multiplier 1.5: task 3 (running 1s) is not slow yet.
	assert.Equal(t, 0, s.CheckSpeculatable())
	clk.advance(600 * time.Millisecond)
	assert.Equal(t, 1, s.CheckSpeculatable(), "task 3 ran 1.6s > 1.5 x 1s")
	copies := s.Offer()
	require.Len(t, copies, 1)
	cp := copies[0]
	assert.Equal(t, 3, cp.Task)
	assert.True(t, cp.Speculative)
	assert.NotEqual(t, ls[3].Executor, cp.Executor, "never on the original's executor")
	assert.Equal(t, 1, cp.Number)
	clk.advance(time.Second)
	assert.Equal(t, 0, s.CheckSpeculatable(), "one copy per task")
	kill, ok := s.Finished(cp.Attempt, EndSucceeded, "")
	require.True(t, ok)
	assert.Equal(t, []Kill{{Attempt: ls[3].Attempt, Executor: ls[3].Executor}}, kill, "the first to succeed wins; the other is killed")
	require.True(t, s.Over())
	_, ok = s.Finished(ls[3].Attempt, EndKilled, "")
	require.True(t, ok)
	c := s.Counts()
	assert.Equal(t, 1, c.Speculated)
	assert.Equal(t, 1, c.KilledAttempts)
	assert.Equal(t, 0, c.FailedAttempts)
	assert.Equal(t, 4, c.Succeeded)
}

func TestSchedulerSpeculationRules(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		s, clk := newSched(t, Config{}, 2, nil)
		s.AddExecutor("e1", "h", 1)
		s.AddExecutor("e2", "h", 1)
		ls := s.Offer()
		clk.advance(time.Second)
		_, _ = s.Finished(ls[0].Attempt, EndSucceeded, "")
		clk.advance(time.Hour)
		assert.Equal(t, 0, s.CheckSpeculatable())
	})
	t.Run("waits for the quantile", func(t *testing.T) {
		s, clk := newSched(t, Config{Speculation: true}, 4, nil)
		for _, e := range []string{"e1", "e2", "e3", "e4"} {
			s.AddExecutor(e, "h", 1)
		}
		ls := byTask(s.Offer())
		clk.advance(time.Second)
		_, _ = s.Finished(ls[0].Attempt, EndSucceeded, "")
		_, _ = s.Finished(ls[1].Attempt, EndSucceeded, "")
		clk.advance(time.Hour)
		assert.Equal(t, 0, s.CheckSpeculatable(), "2 of 4 finished, below 0.75")
	})
	t.Run("minTaskRuntime", func(t *testing.T) {
		s, clk := newSched(t, Config{Speculation: true, SpeculationMinRuntime: 5 * time.Second}, 2, nil)
		s.AddExecutor("e1", "h", 1)
		s.AddExecutor("e2", "h", 1)
		ls := byTask(s.Offer())
		clk.advance(10 * time.Millisecond)
		_, _ = s.Finished(ls[0].Attempt, EndSucceeded, "")
		clk.advance(4 * time.Second)
		assert.Equal(t, 0, s.CheckSpeculatable(), "below spark.speculation.minTaskRuntime")
		clk.advance(2 * time.Second)
		assert.Equal(t, 1, s.CheckSpeculatable())
	})
	t.Run("no other executor: no copy", func(t *testing.T) {
		s, clk := newSched(t, Config{Speculation: true}, 2, nil)
		s.AddExecutor("e1", "h", 2)
		ls := byTask(s.Offer())
		clk.advance(time.Second)
		_, _ = s.Finished(ls[0].Attempt, EndSucceeded, "")
		clk.advance(time.Hour)
		require.Equal(t, 1, s.CheckSpeculatable())
		assert.Empty(t, s.Offer(), "the only free slot is on the original's executor")
	})
}

func TestSchedulerDelayScheduling(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s, err := NewScheduler(Config{LocalityWait: 3 * time.Second}, []Spec{{Index: 0, Preferred: []string{"h2"}}, {Index: 1}}, nil, clk.now)
	require.NoError(t, err)
	s.AddExecutor("e1", "h1", 2)
	ls := s.Offer()
	require.Len(t, ls, 1, "the task without preferences runs at once; the other waits for h2")
	assert.Equal(t, 1, ls[0].Task)
	clk.advance(2 * time.Second)
	assert.Empty(t, s.Offer(), "still within spark.locality.wait")
	clk.advance(time.Second)
	ls = s.Offer()
	require.Len(t, ls, 1, "after the wait it runs anywhere")
	assert.Equal(t, 0, ls[0].Task)

	s, err = NewScheduler(Config{}, []Spec{{Index: 0, Preferred: []string{"h2"}}}, nil, clk.now)
	require.NoError(t, err)
	s.AddExecutor("e1", "h1", 1)
	s.AddExecutor("e2", "h2", 1)
	ls = s.Offer()
	require.Len(t, ls, 1)
	assert.Equal(t, "e2", ls[0].Executor, "a slot on the preferred host is taken at once")
}

func TestSchedulerResumeSkips(t *testing.T) {
	s, _ := newSched(t, Config{}, 3, map[int]bool{0: true, 2: true})
	s.AddExecutor("e1", "h", 4)
	ls := s.Offer()
	require.Len(t, ls, 1)
	assert.Equal(t, 1, ls[0].Task)
	_, _ = s.Finished(ls[0].Attempt, EndSucceeded, "")
	assert.True(t, s.Over())
	c := s.Counts()
	assert.Equal(t, 2, c.Skipped)
	assert.Equal(t, 1, c.Succeeded)
	st, n := s.State(0)
	assert.Equal(t, TaskSkipped, st)
	assert.Equal(t, 0, n)
}

func TestSchedulerKilledAndDeniedAreNotFailures(t *testing.T) {
	s, _ := newSched(t, Config{MaxFailures: 1}, 1, nil)
	s.AddExecutor("e1", "h", 1)
	for _, end := range []AttemptEnd{EndKilled, EndDenied} {
		ls := s.Offer()
		require.Len(t, ls, 1)
		_, ok := s.Finished(ls[0].Attempt, end, "")
		require.True(t, ok)
		assert.False(t, s.Over())
	}
	assert.Equal(t, 0, s.Counts().FailedAttempts)
	assert.Len(t, s.Offer(), 1, "the task is queued again")
}

func TestSchedulerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxFailures: -1}, "spark.task.maxFailures"},
		{Config{TaskCPUs: -2}, "spark.task.cpus"},
		{Config{SpeculationMultiplier: 0.5}, "spark.speculation.multiplier"},
		{Config{SpeculationQuantile: 1.5}, "spark.speculation.quantile"},
		{Config{SpeculationInterval: -time.Second}, "spark.speculation.interval"},
	} {
		_, err := NewScheduler(tc.cfg, []Spec{{Index: 0}}, nil, nil)
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrConfig)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestCommitCoordinator(t *testing.T) {
	c := NewCommitCoordinator()
	assert.True(t, c.CanCommit(0, 1), "the first attempt to ask is authorized")
	assert.False(t, c.CanCommit(0, 2), "a second is denied")
	assert.True(t, c.CanCommit(0, 1), "asking again changes nothing")
	c.AttemptFailed(0, 2)
	assert.False(t, c.CanCommit(0, 2), "a denied attempt's failure releases nothing")
	c.AttemptFailed(0, 1)
	assert.True(t, c.CanCommit(0, 2), "the authorized attempt failed before committing: another may commit")
	c.Committed(0)
	c.AttemptFailed(0, 2)
	assert.False(t, c.CanCommit(0, 3), "after the commit nobody else ever commits")
	assert.True(t, c.CanCommit(1, 3), "tasks are independent")
}

func TestOutputDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	o := OutputDir{Dir: dir}
	done, err := o.Committed(3)
	require.NoError(t, err)
	assert.Empty(t, done, "a missing directory holds nothing")
	require.NoError(t, o.Prepare())
	require.NoError(t, os.WriteFile(filepath.Join(dir, TempDir, "part-00001.attempt-7"), []byte("half"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "part-00002.tmp"), []byte("x"), 0o644))
	require.NoError(t, o.Commit(0, 1, []byte("zero\n")))
	require.Error(t, o.Commit(0, 2, []byte("again\n")), "a second commit of a task is refused")
	data, err := os.ReadFile(filepath.Join(dir, "part-00000"))
	require.NoError(t, err)
	assert.Equal(t, "zero\n", string(data))
	done, err = o.Committed(3)
	require.NoError(t, err)
	assert.Equal(t, map[int]bool{0: true}, done, "only renamed part files count, not half-written attempts")
	require.NoError(t, o.Prepare())
	left, err := os.ReadDir(filepath.Join(dir, TempDir))
	require.NoError(t, err)
	assert.Empty(t, left, "Prepare removes a killed driver's attempt files")
	_, err = o.Committed(0)
	assert.ErrorContains(t, err, "another job's output", "a part file beyond the job's tasks")
}

func TestSchedulerReleaseFreesTheSlotWhileCommitting(t *testing.T) {
	s, _ := newSched(t, Config{}, 2, nil)
	s.AddExecutor("e1", "h", 1)
	ls := s.Offer()
	require.Len(t, ls, 1)
	s.Release(ls[0].Attempt)
	assert.True(t, s.Released(ls[0].Attempt))
	next := s.Offer()
	require.Len(t, next, 1, "the released slot runs the next task")
	assert.Empty(t, s.RemoveExecutor("e1", "gone")[1:], "only the running attempt is lost, not the one being committed")
	_, ok := s.Finished(ls[0].Attempt, EndSucceeded, "")
	require.True(t, ok, "a released attempt still ends with its commit")
	assert.Equal(t, 1, s.Counts().Succeeded)
	assert.Equal(t, 1, s.Counts().LostAttempts)
}

func TestOutputDirCommitBatch(t *testing.T) {
	o := OutputDir{Dir: filepath.Join(t.TempDir(), "out")}
	require.NoError(t, o.Prepare())
	require.NoError(t, o.Commit(1, 1, []byte("one")))
	errs := o.CommitBatch([]Part{{Task: 0, Attempt: 2, Data: []byte("zero")}, {Task: 1, Attempt: 3, Data: []byte("again")}, {Task: 2, Attempt: 4}})
	assert.NoError(t, errs[0])
	assert.ErrorContains(t, errs[1], "already committed")
	assert.NoError(t, errs[2], "an empty output is an output")
	for i, want := range []string{"zero", "one", ""} {
		data, err := os.ReadFile(filepath.Join(o.Dir, PartName(i)))
		require.NoError(t, err)
		assert.Equal(t, want, string(data))
	}
	left, err := os.ReadDir(filepath.Join(o.Dir, TempDir))
	require.NoError(t, err)
	assert.Empty(t, left)
	require.NoError(t, o.Sync())
}

func TestNewDriverRefusesCommittedOutputWithoutResume(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, PartName(0)), []byte("x"), 0o644))
	_, err := NewDriver(DriverConfig{Commands: []string{"true", "true"}, OutputDir: dir})
	assert.ErrorContains(t, err, "already holds 1 committed part file(s); use --resume")
	d, err := NewDriver(DriverConfig{Commands: []string{"true", "true"}, OutputDir: dir, Resume: true})
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, 1, d.Skipped())
	_, err = NewDriver(DriverConfig{Commands: []string{"true"}, Resume: true})
	assert.ErrorContains(t, err, "resume needs an output directory")
}

func TestSchedulerBoundsExecutorLossesPerTask(t *testing.T) {
	s, _ := newSched(t, Config{MaxExecutorLosses: 3}, 1, nil)
	for i := 0; i < 3; i++ {
		id := fmt.Sprint("e", i)
		s.AddExecutor(id, "h", 1)
		require.Len(t, s.Offer(), 1)
		assert.False(t, s.Over())
		s.RemoveExecutor(id, "executor FAILED with exit code 137")
	}
	require.True(t, s.Over(), "a task that keeps losing its executor fails the job")
	f := s.Failure()
	require.NotNil(t, f)
	assert.Equal(t, 0, f.Failures, "the losses are not task failures")
	assert.Equal(t, "lost with its executor 3 times (the last: executor FAILED with exit code 137); does its command kill the executor?", f.LastError)
	assert.Equal(t, 0, s.Counts().FailedAttempts)
}
