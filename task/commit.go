package task

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// CommitCoordinator authorizes exactly one attempt of each task to commit
// its output (Spark's OutputCommitCoordinator): the first attempt to ask is
// authorized, later ones are denied. An authorized attempt whose commit then
// fails is released (AttemptFailed), so that another attempt may commit.
// It is not safe for concurrent use; the driver serialises calls.
type CommitCoordinator struct {
	authorized map[int]AttemptID
	committed  map[int]bool
}

// NewCommitCoordinator returns a coordinator with no commits.
func NewCommitCoordinator() *CommitCoordinator {
	return &CommitCoordinator{authorized: map[int]AttemptID{}, committed: map[int]bool{}}
}

// CanCommit reports whether attempt a of task may commit: true for the
// first to ask (and again for it), false for every other attempt.
func (c *CommitCoordinator) CanCommit(task int, a AttemptID) bool {
	if w, ok := c.authorized[task]; ok {
		return w == a
	}
	c.authorized[task] = a
	return true
}

// Committed records that task's authorized attempt finished its commit; the
// authorization can no longer be released.
func (c *CommitCoordinator) Committed(task int) { c.committed[task] = true }

// AttemptFailed releases task's authorization if a holds it and has not
// committed.
func (c *CommitCoordinator) AttemptFailed(task int, a AttemptID) {
	if w, ok := c.authorized[task]; ok && w == a && !c.committed[task] {
		delete(c.authorized, task)
	}
}

// PartName is the committed output file of task i: part-00000, part-00001, ...
func PartName(i int) string { return fmt.Sprintf("part-%05d", i) }

var partRE = regexp.MustCompile(`^part-([0-9]{5,})$`)

// TempDir is where attempts' outputs are written before their commit
// (Hadoop's _temporary); only renamed part files count as committed.
const TempDir = "_temporary"

// OutputDir is a job's output directory: task i's output is committed to
// DIR/part-NNNNN by writing DIR/_temporary/part-NNNNN.attempt-A, syncing
// it, and renaming it into place (then syncing the directory).
type OutputDir struct {
	Dir string
}

// Prepare creates the directory and removes left-over attempt files (a
// killed driver's half-written outputs).
func (o OutputDir) Prepare() error {
	if err := os.MkdirAll(filepath.Join(o.Dir, TempDir), 0o755); err != nil {
		return fmt.Errorf("task: output dir: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(o.Dir, TempDir))
	if err != nil {
		return fmt.Errorf("task: output dir: %w", err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(o.Dir, TempDir, e.Name())); err != nil {
			return fmt.Errorf("task: remove left-over attempt output: %w", err)
		}
	}
	return nil
}

// Committed returns the indexes (below n) of tasks whose part file exists
// as a regular file. A task index at or above n is an error: the output
// directory belongs to another job.
func (o OutputDir) Committed(n int) (map[int]bool, error) {
	ents, err := os.ReadDir(o.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("task: read output dir: %w", err)
	}
	done := map[int]bool{}
	for _, e := range ents {
		m := partRE.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		i, err := strconv.Atoi(m[1])
		if err != nil || i >= n {
			return nil, fmt.Errorf("task: output dir %s holds %s, but the job has %d tasks: is it another job's output?", o.Dir, e.Name(), n)
		}
		done[i] = true
	}
	return done, nil
}

// Part is one attempt's output to commit.
type Part struct {
	Task    int
	Attempt AttemptID
	Data    []byte
}

// Commit writes data as task's committed output, atomically: the data is
// synced before the rename, so a crash (even of the machine) leaves either
// no part file or the whole one. The directory itself is synced by Sync,
// once per job, not per commit: after a power failure a commit may be
// missing (its task runs again on --resume), never half there. A part file
// already there is an error (it would be a second commit).
func (o OutputDir) Commit(task int, a AttemptID, data []byte) error {
	return o.CommitBatch([]Part{{Task: task, Attempt: a, Data: data}})[0]
}

// CommitBatch commits several parts as Commit does, as a group: every
// attempt file is written first, then all are synced, then renamed, so
// that one journal commit serves many. errs[i] is parts[i]'s outcome.
func (o OutputDir) CommitBatch(parts []Part) (errs []error) {
	errs = make([]error, len(parts))
	files := make([]*os.File, len(parts))
	tmps := make([]string, len(parts))
	fail := func(i int, err error) {
		errs[i] = fmt.Errorf("task: commit task %d: %w", parts[i].Task, err)
		if files[i] != nil {
			_ = files[i].Close()
			files[i] = nil
		}
		_ = os.Remove(tmps[i])
	}
	for i, p := range parts {
		final := filepath.Join(o.Dir, PartName(p.Task))
		if _, err := os.Lstat(final); err == nil {
			errs[i] = fmt.Errorf("task: commit %s: already committed", final)
			continue
		}
		tmps[i] = filepath.Join(o.Dir, TempDir, fmt.Sprintf("%s.attempt-%d", PartName(p.Task), p.Attempt))
		f, err := os.OpenFile(tmps[i], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			errs[i] = fmt.Errorf("task: commit task %d: %w", p.Task, err)
			continue
		}
		files[i] = f
		if _, err := f.Write(p.Data); err != nil {
			fail(i, err)
		}
	}
	for i, f := range files {
		if f == nil {
			continue
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			files[i] = nil
			fail(i, err)
			continue
		}
		files[i] = nil
		if err := os.Rename(tmps[i], filepath.Join(o.Dir, PartName(parts[i].Task))); err != nil {
			fail(i, err)
		}
	}
	return errs
}

// Sync makes the renames of the commits so far durable.
func (o OutputDir) Sync() error { return syncDir(o.Dir) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("task: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("task: sync %s: %w", dir, err)
	}
	return nil
}
