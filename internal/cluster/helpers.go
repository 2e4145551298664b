package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// SyncBuffer is a bytes.Buffer that is safe for a child process writing
// (as its Stdout or Stderr) while a test or command reads. The zero value
// is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns a copy of everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// HoldScript is a long-running executor (and driver) program for
// `sh HoldScript PIDDIR RELEASE`: it records its pid as a file named after
// the pid in PIDDIR, polls every 100 ms until the file RELEASE exists, then
// exits 0.
const HoldScript = `#!/bin/sh
echo $$ > "$1/$$"
while [ ! -e "$2" ]; do sleep 0.1; done
exit 0
`

// Job is HoldScript installed in a directory: every copy started with Argv
// writes its pid into PidDir (read them with ReadPids); creating Release
// makes every copy exit 0.
type Job struct {
	Script, PidDir, Release string
}

// NewJob writes HoldScript to dir/hold.sh and creates dir/pids; Release is
// dir/release (not created). Pass PidDir to Cluster.TrackPids so that
// teardown kills copies still running.
func NewJob(dir string) (Job, error) {
	j := Job{
		Script:  filepath.Join(dir, "hold.sh"),
		PidDir:  filepath.Join(dir, "pids"),
		Release: filepath.Join(dir, "release"),
	}
	if err := os.MkdirAll(j.PidDir, 0o755); err != nil {
		return Job{}, fmt.Errorf("cluster: job pid dir: %w", err)
	}
	if err := os.WriteFile(j.Script, []byte(HoldScript), 0o755); err != nil {
		return Job{}, fmt.Errorf("cluster: job script: %w", err)
	}
	return j, nil
}

// Argv is the command line that runs one copy of the job.
func (j Job) Argv() []string { return []string{"/bin/sh", j.Script, j.PidDir, j.Release} }

// ReleaseAll creates Release, so that every copy exits 0.
func (j Job) ReleaseAll() error { return os.WriteFile(j.Release, nil, 0o644) }

// WaitFor polls cond every 20 ms until it holds (true) or timeout passes
// (false). It is for commands outside `go test`; tests use require.Eventually.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
