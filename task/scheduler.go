package task

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrConfig: a scheduler or driver setting is invalid.
var ErrConfig = errors.New("task: invalid config")

// Config holds the scheduler's Spark keys. Zero fields take the defaults of
// DefaultConfig, except Speculation (false is its default).
type Config struct {
	MaxFailures           int           // spark.task.maxFailures (4)
	TaskCPUs              int           // spark.task.cpus (1)
	Speculation           bool          // spark.speculation (false)
	SpeculationInterval   time.Duration // spark.speculation.interval (100ms)
	SpeculationMultiplier float64       // spark.speculation.multiplier (1.5)
	SpeculationQuantile   float64       // spark.speculation.quantile (0.75)
	SpeculationMinRuntime time.Duration // spark.speculation.minTaskRuntime (100ms)
	LocalityWait          time.Duration // spark.locality.wait (3s); negative = 0 (no waiting)
	// MaxExecutorLosses bounds how often one task may be lost with its
	// executor (10, like spark.deploy.maxExecutorRetries): losses do not
	// count as failures, so a command that kills its own executor (memory,
	// a stray kill) would otherwise run for ever.
	MaxExecutorLosses int
}

// DefaultConfig returns Spark's defaults.
func DefaultConfig() Config {
	return Config{
		MaxFailures:           4,
		TaskCPUs:              1,
		SpeculationInterval:   100 * time.Millisecond,
		SpeculationMultiplier: 1.5,
		SpeculationQuantile:   0.75,
		SpeculationMinRuntime: 100 * time.Millisecond,
		LocalityWait:          3 * time.Second,
		MaxExecutorLosses:     10,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.MaxFailures == 0 {
		c.MaxFailures = d.MaxFailures
	}
	if c.TaskCPUs == 0 {
		c.TaskCPUs = d.TaskCPUs
	}
	if c.SpeculationInterval == 0 {
		c.SpeculationInterval = d.SpeculationInterval
	}
	if c.SpeculationMultiplier == 0 {
		c.SpeculationMultiplier = d.SpeculationMultiplier
	}
	if c.SpeculationQuantile == 0 {
		c.SpeculationQuantile = d.SpeculationQuantile
	}
	if c.SpeculationMinRuntime == 0 {
		c.SpeculationMinRuntime = d.SpeculationMinRuntime
	}
	if c.LocalityWait == 0 {
		c.LocalityWait = d.LocalityWait
	}
	if c.LocalityWait < 0 {
		c.LocalityWait = 0
	}
	if c.MaxExecutorLosses == 0 {
		c.MaxExecutorLosses = d.MaxExecutorLosses
	}
}

// Validate names the first invalid key.
func (c Config) Validate() error {
	switch {
	case c.MaxFailures < 1:
		return fmt.Errorf("%w: spark.task.maxFailures=%d: want at least 1", ErrConfig, c.MaxFailures)
	case c.TaskCPUs < 1:
		return fmt.Errorf("%w: spark.task.cpus=%d: want at least 1", ErrConfig, c.TaskCPUs)
	case c.SpeculationInterval <= 0:
		return fmt.Errorf("%w: spark.speculation.interval=%s: want a positive duration", ErrConfig, c.SpeculationInterval)
	case c.SpeculationMultiplier < 1 || math.IsNaN(c.SpeculationMultiplier):
		return fmt.Errorf("%w: spark.speculation.multiplier=%v: want at least 1", ErrConfig, c.SpeculationMultiplier)
	case !(c.SpeculationQuantile > 0 && c.SpeculationQuantile <= 1):
		return fmt.Errorf("%w: spark.speculation.quantile=%v: want a fraction in (0, 1]", ErrConfig, c.SpeculationQuantile)
	case c.MaxExecutorLosses < 1:
		return fmt.Errorf("%w: executor losses per task %d: want at least 1", ErrConfig, c.MaxExecutorLosses)
	case c.SpeculationMinRuntime < 0:
		return fmt.Errorf("%w: spark.speculation.minTaskRuntime=%s: want a non-negative duration", ErrConfig, c.SpeculationMinRuntime)
	}
	return nil
}

// Spec is one task: its index (the N of part-N), and optionally the hosts
// it prefers to run on (delay scheduling, spark.locality.wait).
type Spec struct {
	Index     int
	Preferred []string
}

// AttemptID names one attempt of one task, unique within a job.
type AttemptID int64

// Launch tells the driver to start an attempt on an executor.
type Launch struct {
	Attempt     AttemptID
	Task        int // task index
	Number      int // attempt number of that task, from 0 (Spark's attemptNumber)
	Executor    string
	Speculative bool
}

// Kill tells the driver to kill a running attempt (the loser of a
// speculative race, or everything when the job ends).
type Kill struct {
	Attempt  AttemptID
	Executor string
}

// TaskState is the state of a task in the scheduler.
type TaskState int

const (
	TaskPending   TaskState = iota // waiting for a slot
	TaskRunning                    // at least one attempt runs
	TaskSucceeded                  // an attempt succeeded (and committed)
	TaskFailed                     // maxFailures attempts failed
	TaskSkipped                    // done before the job started (--resume)
)

func (s TaskState) String() string {
	return [...]string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED"}[s]
}

// AttemptEnd is how an attempt ended, as its executor reported it.
type AttemptEnd int

const (
	EndSucceeded AttemptEnd = iota // exit status 0 (and its output committed)
	EndFailed                      // the task failed: counts against maxFailures
	EndKilled                      // killed on the driver's request: counts nothing
	EndDenied                      // succeeded but another attempt committed first: counts nothing
)

type attempt struct {
	id          AttemptID
	task        int
	number      int
	executor    string
	started     time.Time
	speculative bool
	done        bool
	released    bool // its process ended; its output is being committed
}

type taskInfo struct {
	spec        Spec
	state       TaskState
	attempts    []*attempt // running ones
	numAttempts int
	failures    int
	losses      int // attempts lost with their executor
	lastError   string
	pendingAt   time.Time
	queued      bool // in a pending queue (may hold stale entries)
	speculate   bool // marked speculatable, copy not launched yet
	speculated  bool // a speculative copy was launched
	duration    time.Duration
}

type execInfo struct {
	id    string
	host  string
	slots int
	busy  int
}

// Counts is a snapshot of the job's progress.
type Counts struct {
	Total, Skipped, Succeeded, Running, Pending, Failed int
	RunningAttempts                                     int
	Launched                                            int // attempts launched
	FailedAttempts                                      int // attempts that failed (counted against maxFailures)
	LostAttempts                                        int // attempts lost with their executor (not counted)
	KilledAttempts                                      int // losers of speculative races and job-end kills
	Speculated                                          int // speculative copies launched
	Executors, Slots                                    int
}

// TaskFailure names a task that has failed attempts, and its last error.
type TaskFailure struct {
	Task      int
	Failures  int
	LastError string
	Failed    bool // reached maxFailures
}

// Scheduler is the driver's task scheduler for one job (Spark's
// TaskSchedulerImpl and TaskSetManager in one): it queues tasks, fills the
// free slots of executors (cores / spark.task.cpus each), and tracks every
// attempt.
//
// Guarantees: a task is failed only by maxFailures attempts that ended
// EndFailed; attempts lost with their executor (RemoveExecutor) put the task
// back in the queue without counting a failure; once a task succeeded, no
// new attempt of it is launched and its other attempts are returned to be
// killed; a speculative copy never runs on the executor of the original.
// Not guaranteed: anything about output (see CommitCoordinator).
//
// A Scheduler is not safe for concurrent use; the driver serialises calls.
// Time comes from the injected now.
type Scheduler struct {
	cfg   Config
	now   func() time.Time
	tasks []*taskInfo

	execs    map[string]*execInfo
	attempts map[AttemptID]*attempt
	nextID   AttemptID

	retry   []int            // re-queued tasks, launched first
	noPref  []int            // FIFO of tasks without preferences (stale entries skipped)
	byHost  map[string][]int // tasks preferring a host
	pref    []int            // all tasks with preferences, FIFO by pendingAt
	specQ   []int            // speculatable tasks waiting for a copy
	lastSpc time.Time

	counts    Counts
	durations []time.Duration // successful attempts' run times, for the speculation median
	abort     *TaskFailure
}

// NewScheduler returns a scheduler for tasks (indexes 0..n-1, in order).
// skip marks tasks already done (their output is committed: --resume).
func NewScheduler(cfg Config, tasks []Spec, skip map[int]bool, now func() time.Time) (*Scheduler, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	s := &Scheduler{cfg: cfg, now: now, execs: map[string]*execInfo{}, attempts: map[AttemptID]*attempt{}, byHost: map[string][]int{}}
	t0 := now()
	for i, sp := range tasks {
		if sp.Index != i {
			return nil, fmt.Errorf("%w: task %d has index %d", ErrConfig, i, sp.Index)
		}
		ti := &taskInfo{spec: sp, pendingAt: t0}
		s.tasks = append(s.tasks, ti)
		if skip[i] {
			ti.state = TaskSkipped
			s.counts.Skipped++
			continue
		}
		s.enqueue(i, false)
	}
	s.counts.Total = len(tasks)
	return s, nil
}

// Config returns the effective configuration (defaults applied).
func (s *Scheduler) Config() Config { return s.cfg }

func (s *Scheduler) enqueue(i int, retry bool) {
	t := s.tasks[i]
	t.state = TaskPending
	t.pendingAt = s.now()
	t.queued = true
	if retry {
		s.retry = append(s.retry, i)
		return
	}
	if len(t.spec.Preferred) == 0 {
		s.noPref = append(s.noPref, i)
		return
	}
	for _, h := range t.spec.Preferred {
		s.byHost[h] = append(s.byHost[h], i)
	}
	s.pref = append(s.pref, i)
}

// AddExecutor adds an executor with cores cores on host. Adding a known id
// again changes nothing.
func (s *Scheduler) AddExecutor(id, host string, cores int) {
	if _, ok := s.execs[id]; ok {
		return
	}
	slots := cores / s.cfg.TaskCPUs
	s.execs[id] = &execInfo{id: id, host: host, slots: slots}
	s.counts.Executors++
	s.counts.Slots += slots
}

// HasExecutor reports whether id is a live executor.
func (s *Scheduler) HasExecutor(id string) bool { _, ok := s.execs[id]; return ok }

// RemoveExecutor forgets an executor that was lost (its process exited, its
// worker was lost, or its heartbeats stopped). Its running attempts are
// lost: each task with no other running attempt goes back to the queue,
// and no failure is counted (Spark's ExecutorLostFailure with
// exitCausedByApp=false). A task lost MaxExecutorLosses times fails the
// job, with why as its last error. It returns the lost attempts.
func (s *Scheduler) RemoveExecutor(id, why string) []Launch {
	e, ok := s.execs[id]
	if !ok {
		return nil
	}
	delete(s.execs, id)
	s.counts.Executors--
	s.counts.Slots -= e.slots
	var lost []AttemptID
	for aid, a := range s.attempts {
		if a.executor == id && !a.released {
			lost = append(lost, aid)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	out := make([]Launch, 0, len(lost))
	for _, aid := range lost {
		a := s.attempts[aid]
		out = append(out, Launch{Attempt: a.id, Task: a.task, Number: a.number, Executor: id, Speculative: a.speculative})
		s.endAttempt(a)
		s.counts.LostAttempts++
		t := s.tasks[a.task]
		t.losses++
		if t.state != TaskRunning {
			continue
		}
		if t.losses >= s.cfg.MaxExecutorLosses {
			t.state = TaskFailed
			t.lastError = fmt.Sprintf("lost with its executor %d times (the last: %s); does its command kill the executor?", t.losses, why)
			s.counts.Failed++
			if s.abort == nil {
				s.abort = &TaskFailure{Task: a.task, Failures: t.failures, LastError: t.lastError, Failed: true}
			}
			continue
		}
		if len(t.attempts) == 0 {
			s.enqueue(a.task, true)
		}
	}
	return out
}

func (s *Scheduler) endAttempt(a *attempt) {
	a.done = true
	delete(s.attempts, a.id)
	if e, ok := s.execs[a.executor]; ok && !a.released {
		e.busy--
	}
	t := s.tasks[a.task]
	for i, x := range t.attempts {
		if x == a {
			t.attempts = append(t.attempts[:i], t.attempts[i+1:]...)
			break
		}
	}
	s.counts.RunningAttempts--
}

// Offer fills the free slots of every executor and returns what to launch.
// Nothing is launched once the job is over.
func (s *Scheduler) Offer() []Launch {
	if s.Over() {
		return nil
	}
	ids := make([]string, 0, len(s.execs))
	for id, e := range s.execs {
		if e.busy < e.slots {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []Launch
	// Round-robin over executors, one slot at a time, so that tasks spread.
	for progress := true; progress; {
		progress = false
		for _, id := range ids {
			e := s.execs[id]
			if e.busy >= e.slots {
				continue
			}
			if l, ok := s.pick(e); ok {
				out = append(out, l)
				progress = true
			}
		}
	}
	return out
}

// pick chooses one task for a free slot of e: re-queued tasks first, then
// tasks preferring e's host, then tasks without preferences, then tasks
// whose locality wait has expired, then speculative copies.
func (s *Scheduler) pick(e *execInfo) (Launch, bool) {
	now := s.now()
	takeFrom := func(q *[]int, ok func(int) bool) (int, bool) {
		for len(*q) > 0 {
			i := (*q)[0]
			t := s.tasks[i]
			if t.state != TaskPending || !t.queued {
				*q = (*q)[1:]
				continue
			}
			if ok != nil && !ok(i) {
				return 0, false
			}
			*q = (*q)[1:]
			return i, true
		}
		return 0, false
	}
	if i, ok := s.takeRetry(e, now); ok {
		return s.launch(i, e, false), true
	}
	if q, ok := s.byHost[e.host]; ok {
		i, found := takeFrom(&q, nil)
		s.byHost[e.host] = q
		if found {
			return s.launch(i, e, false), true
		}
	}
	if i, ok := takeFrom(&s.noPref, nil); ok {
		return s.launch(i, e, false), true
	}
	if i, ok := takeFrom(&s.pref, func(i int) bool { return now.Sub(s.tasks[i].pendingAt) >= s.cfg.LocalityWait }); ok {
		return s.launch(i, e, false), true
	}
	for k := 0; k < len(s.specQ); k++ {
		i := s.specQ[k]
		t := s.tasks[i]
		if t.state != TaskRunning || !t.speculate {
			s.specQ = append(s.specQ[:k], s.specQ[k+1:]...)
			k--
			continue
		}
		if t.attempts[0].executor == e.id {
			continue
		}
		s.specQ = append(s.specQ[:k], s.specQ[k+1:]...)
		t.speculate, t.speculated = false, true
		s.counts.Speculated++
		return s.launch(i, e, true), true
	}
	return Launch{}, false
}

// takeRetry takes the first re-queued task that may run on e now: a task
// with preferences waits for its host up to the locality wait.
func (s *Scheduler) takeRetry(e *execInfo, now time.Time) (int, bool) {
	for k := 0; k < len(s.retry); k++ {
		i := s.retry[k]
		t := s.tasks[i]
		if t.state != TaskPending || !t.queued {
			s.retry = append(s.retry[:k], s.retry[k+1:]...)
			k--
			continue
		}
		if s.localOK(t, e, now) {
			s.retry = append(s.retry[:k], s.retry[k+1:]...)
			return i, true
		}
	}
	return 0, false
}

func (s *Scheduler) localOK(t *taskInfo, e *execInfo, now time.Time) bool {
	if len(t.spec.Preferred) == 0 || now.Sub(t.pendingAt) >= s.cfg.LocalityWait {
		return true
	}
	for _, h := range t.spec.Preferred {
		if h == e.host {
			return true
		}
	}
	return false
}

func (s *Scheduler) launch(i int, e *execInfo, speculative bool) Launch {
	t := s.tasks[i]
	s.nextID++
	a := &attempt{id: s.nextID, task: i, number: t.numAttempts, executor: e.id, started: s.now(), speculative: speculative}
	t.numAttempts++
	t.attempts = append(t.attempts, a)
	t.queued = false
	t.state = TaskRunning
	e.busy++
	s.attempts[a.id] = a
	s.counts.RunningAttempts++
	s.counts.Launched++
	return Launch{Attempt: a.id, Task: i, Number: a.number, Executor: e.id, Speculative: speculative}
}

// Attempt returns the task and attempt number of a running attempt.
func (s *Scheduler) Attempt(id AttemptID) (task, number int, executor string, ok bool) {
	a, ok := s.attempts[id]
	if !ok {
		return 0, 0, "", false
	}
	return a.task, a.number, a.executor, true
}

// Finished records how a running attempt ended. An unknown attempt (already
// lost with its executor, or reported twice) is ignored and ok is false. On
// EndSucceeded the task is done and the other running attempts of it are
// returned to be killed. On EndFailed the task goes back to the queue, or,
// after maxFailures failed attempts, fails the job (Over, Failure).
func (s *Scheduler) Finished(id AttemptID, end AttemptEnd, errMsg string) (kill []Kill, ok bool) {
	a, ok := s.attempts[id]
	if !ok {
		return nil, false
	}
	s.endAttempt(a)
	t := s.tasks[a.task]
	switch end {
	case EndSucceeded:
		if t.state == TaskRunning || t.state == TaskPending {
			t.state = TaskSucceeded
			t.speculate = false
			t.duration = s.now().Sub(a.started)
			s.durations = append(s.durations, t.duration)
			s.counts.Succeeded++
		}
		for _, o := range t.attempts {
			if !o.released {
				kill = append(kill, Kill{Attempt: o.id, Executor: o.executor})
			}
		}
	case EndFailed:
		s.counts.FailedAttempts++
		t.failures++
		t.lastError = errMsg
		if t.state != TaskRunning {
			break
		}
		if t.failures >= s.cfg.MaxFailures {
			t.state = TaskFailed
			s.counts.Failed++
			if s.abort == nil {
				s.abort = &TaskFailure{Task: a.task, Failures: t.failures, LastError: errMsg, Failed: true}
			}
			for _, o := range t.attempts {
				kill = append(kill, Kill{Attempt: o.id, Executor: o.executor})
			}
		} else if len(t.attempts) == 0 {
			s.enqueue(a.task, true)
		}
	case EndKilled, EndDenied:
		s.counts.KilledAttempts++
		if t.state == TaskRunning && len(t.attempts) == 0 {
			s.enqueue(a.task, true)
		}
	}
	if s.Over() {
		kill = s.KillAll() // every running attempt, those above included
	}
	return kill, true
}

// Release frees the slot of a running attempt whose process has ended
// successfully while the driver commits its output: the executor may run
// another task meanwhile, and losing the executor no longer loses the
// attempt. Finished still ends it. Unknown attempts are ignored.
func (s *Scheduler) Release(id AttemptID) {
	a, ok := s.attempts[id]
	if !ok || a.released {
		return
	}
	a.released = true
	if e, ok := s.execs[a.executor]; ok {
		e.busy--
	}
}

// Released reports whether a running attempt was released (its output is
// being committed).
func (s *Scheduler) Released(id AttemptID) bool {
	a, ok := s.attempts[id]
	return ok && a.released
}

// KillAll returns every running attempt whose process still runs (the job
// is over, or is being cancelled).
func (s *Scheduler) KillAll() []Kill {
	var out []Kill
	for id, a := range s.attempts {
		if !a.released {
			out = append(out, Kill{Attempt: id, Executor: a.executor})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attempt < out[j].Attempt })
	return out
}

// CheckSpeculatable marks running tasks for a speculative copy (Spark's
// checkSpeculatableTasks), at most once per spark.speculation.interval:
// once spark.speculation.quantile of the tasks have succeeded, a task whose
// only attempt has run longer than multiplier x the median successful run
// time (and at least minTaskRuntime) gets one copy. It returns how many
// tasks it marked.
func (s *Scheduler) CheckSpeculatable() int {
	if !s.cfg.Speculation || s.Over() {
		return 0
	}
	now := s.now()
	if !s.lastSpc.IsZero() && now.Sub(s.lastSpc) < s.cfg.SpeculationInterval {
		return 0
	}
	s.lastSpc = now
	toRun := s.counts.Total - s.counts.Skipped
	minFinished := int(math.Floor(s.cfg.SpeculationQuantile * float64(toRun)))
	if minFinished < 1 {
		minFinished = 1
	}
	if len(s.durations) < minFinished {
		return 0
	}
	d := append([]time.Duration(nil), s.durations...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	median := d[len(d)/2]
	threshold := time.Duration(s.cfg.SpeculationMultiplier * float64(median))
	if threshold < s.cfg.SpeculationMinRuntime {
		threshold = s.cfg.SpeculationMinRuntime
	}
	marked := 0
	for i, t := range s.tasks {
		if t.state != TaskRunning || t.speculate || t.speculated || len(t.attempts) != 1 || t.attempts[0].released {
			continue
		}
		if now.Sub(t.attempts[0].started) > threshold {
			t.speculate = true
			s.specQ = append(s.specQ, i)
			marked++
		}
	}
	return marked
}

// Over reports whether the job is over: every task succeeded (or was
// skipped), or a task failed maxFailures times.
func (s *Scheduler) Over() bool {
	return s.abort != nil || s.counts.Succeeded+s.counts.Skipped == s.counts.Total
}

// Failure is the task that failed the job (nil if none).
func (s *Scheduler) Failure() *TaskFailure { return s.abort }

// Failures lists every task with failed attempts, by task index.
func (s *Scheduler) Failures() []TaskFailure {
	var out []TaskFailure
	for i, t := range s.tasks {
		if t.failures > 0 || t.state == TaskFailed {
			out = append(out, TaskFailure{Task: i, Failures: t.failures, LastError: t.lastError, Failed: t.state == TaskFailed})
		}
	}
	return out
}

// State returns task i's state and how many attempts it had.
func (s *Scheduler) State(i int) (TaskState, int) {
	t := s.tasks[i]
	return t.state, t.numAttempts
}

// Counts returns a snapshot of the job's progress.
func (s *Scheduler) Counts() Counts {
	c := s.counts
	c.Running, c.Pending = 0, 0
	for _, t := range s.tasks {
		switch t.state {
		case TaskRunning:
			c.Running++
		case TaskPending:
			c.Pending++
		}
	}
	return c
}

// TaskCommitted marks task succeeded when its output was committed by an
// attempt the scheduler no longer tracks (its executor was lost while the
// driver committed its result). The task's running attempts are returned to
// be killed.
func (s *Scheduler) TaskCommitted(task int) []Kill {
	t := s.tasks[task]
	if t.state == TaskSucceeded || t.state == TaskSkipped {
		return nil
	}
	if t.state == TaskFailed {
		s.counts.Failed--
	}
	t.state = TaskSucceeded
	t.speculate = false
	s.counts.Succeeded++
	var kill []Kill
	for _, o := range t.attempts {
		kill = append(kill, Kill{Attempt: o.id, Executor: o.executor})
	}
	if s.Over() {
		kill = s.KillAll() // every running attempt, those above included
	}
	return kill
}
