package worker

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// Launcher starts the processes of executors and drivers. Config.Launcher
// nil (the default) starts real operating-system processes, each in its own
// process group, with stdout and stderr in files of its directory. Another
// Launcher (a fleet simulator's in-memory fake, a test's) replaces only the
// process: the worker's bookkeeping, state changes, reports, kills with
// their grace period and answers to a new master stay the same.
type Launcher interface {
	// Launch starts cmd. An error makes the executor FAILED (the driver
	// ERROR) with the error's text, as a failed exec does.
	Launch(cmd Command) (Process, error)
}

// Command is what the worker asks a Launcher to start.
type Command struct {
	Kind string   // "executor" or "driver"
	ID   string   // appID/execID for an executor, the driver id for a driver
	Argv []string // the expanded command; Argv[0] is never empty
	Env  []string // the child's whole environment, KEY=value
	Dir  string   // its directory under the work dir (the OS launcher creates it)
}

// Process is one started executor or driver process.
type Process interface {
	// PID is shown in the UI and sent to the master (0 if there is none).
	PID() int
	// Wait blocks until the process has ended and returns its exit code
	// (nil when the worker lost track of it) and a message for the UI and
	// the master (e.g. "Command exited with code 3"). The worker calls it
	// exactly once.
	Wait() (exitCode *int, message string)
	// Signal delivers sig: SIGTERM when the process is to be killed, and
	// SIGKILL when it is still there after the kill grace period. It may be
	// called after the process has ended (it then does nothing).
	Signal(sig syscall.Signal) error
}

// osLauncher starts real processes.
type osLauncher struct{}

func (osLauncher) Launch(c Command) (Process, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", c.Dir, err)
	}
	open := func(name string) (*os.File, error) {
		return os.OpenFile(filepath.Join(c.Dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	}
	stdout, err := open("stdout")
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := open("stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", c.Argv[0], err)
	}
	return &osProcess{cmd: cmd, pid: cmd.Process.Pid}, nil
}

// osProcess is a child process in its own process group.
type osProcess struct {
	cmd *exec.Cmd
	pid int
}

func (p *osProcess) PID() int { return p.pid }

// Signal signals the whole process group. Until Wait has reaped the
// process, neither its pid nor its group id can be reused.
func (p *osProcess) Signal(sig syscall.Signal) error { return syscall.Kill(-p.pid, sig) }

// Wait reaps the process and says how it ended.
//
// Once the process has exited, whatever is left of its process group (the
// children of a driver or executor script, e.g. after a SIGKILL) is killed
// before the process is reaped: the group is the unit the worker runs, and
// left over it would keep running unseen, next to a relaunched driver.
func (p *osProcess) Wait() (*int, string) {
	if waitExited(p.pid) == nil {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	err := p.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		code := 0
		return &code, ""
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ptr(128 + int(ws.Signal())), "killed by signal " + ws.Signal().String()
		}
		return &code, "Command exited with code " + strconv.Itoa(code)
	default:
		return nil, "lost track of the process: " + err.Error()
	}
}

func ptr[T any](v T) *T { return &v }
