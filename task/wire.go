package task

import (
	"strings"

	"github.com/sparkd/sparkd/protocol"
)

// Paths of the driver's task server, which executors call (the master is
// never involved). All are POST with JSON bodies, signed when
// spark.authenticate.secret is set.
const (
	PathRegisterExecutor = "/v1/tasks/register" // RegisterExecutor -> RegisteredExecutor
	PathPoll             = "/v1/tasks/poll"     // Poll -> Orders (held until there is something, or HoldMs)
	PathStatus           = "/v1/tasks/status"   // StatusUpdate -> StatusAck
	PathExecutorFailed   = "/v1/tasks/failed"   // ExecutorFailed -> {}
)

// ExecutorFailed is an executor's launcher telling the driver why the
// executor could not start (for example: its program's download did not
// have the announced sha256), before it exits.
type ExecutorFailed struct {
	AppID      string `json:"appId"`
	ExecutorID string `json:"executorId"`
	Host       string `json:"host,omitempty"`
	Error      string `json:"error"`
}

// Validate names the first missing field.
func (m ExecutorFailed) Validate() error {
	switch {
	case strings.TrimSpace(m.AppID) == "":
		return &protocol.FieldError{Field: "appId", Reason: "is required"}
	case strings.TrimSpace(m.ExecutorID) == "":
		return &protocol.FieldError{Field: "executorId", Reason: "is required"}
	case strings.TrimSpace(m.Error) == "":
		return &protocol.FieldError{Field: "error", Reason: "is required"}
	}
	return nil
}

// RegisterExecutor is an executor backend announcing itself to its driver
// (Spark's RegisterExecutor).
type RegisterExecutor struct {
	AppID      string `json:"appId"`
	ExecutorID string `json:"executorId"` // the master's executor id, e.g. "3"
	WorkerID   string `json:"workerId,omitempty"`
	Host       string `json:"host"`
	Cores      int    `json:"cores"`
	PID        int    `json:"pid,omitempty"`
}

// Validate names the first missing or invalid field.
func (m RegisterExecutor) Validate() error {
	switch {
	case strings.TrimSpace(m.AppID) == "":
		return &protocol.FieldError{Field: "appId", Reason: "is required"}
	case strings.TrimSpace(m.ExecutorID) == "":
		return &protocol.FieldError{Field: "executorId", Reason: "is required"}
	case strings.TrimSpace(m.Host) == "":
		return &protocol.FieldError{Field: "host", Reason: "is required"}
	case m.Cores <= 0:
		return &protocol.FieldError{Field: "cores", Reason: "must be a positive number"}
	}
	return nil
}

// Key is how the driver names the executor: appId/executorId (executor ids
// start again from 0 when the application registers again).
func (m RegisterExecutor) Key() string { return m.AppID + "/" + m.ExecutorID }

// RegisteredExecutor is the driver's answer to a registration.
type RegisteredExecutor struct {
	Executor     string `json:"executor"`     // the key to send in Poll and StatusUpdate
	HoldMs       int64  `json:"holdMs"`       // how long the driver holds a Poll (spark.executor.heartbeatInterval)
	TimeoutMs    int64  `json:"timeoutMs"`    // spark.network.timeout: the driver counts the executor lost after this long without a poll
	Capture      bool   `json:"capture"`      // send each task's stdout back (the job has --output)
	MaxOutput    int64  `json:"maxOutput"`    // bytes of stdout a task may send back
	TaskCPUs     int    `json:"taskCpus"`     // spark.task.cpus
	DriverHostID string `json:"driverHostId"` // informational
}

// Poll is an executor's long poll for orders; it is also its heartbeat.
// Ack is the sequence number of the last Orders it received, so that the
// driver resends orders whose answer was lost.
type Poll struct {
	Executor string      `json:"executor"`
	Ack      int64       `json:"ack"`
	Running  []AttemptID `json:"running,omitempty"`
}

// Orders is what the driver wants from an executor. Launches and kills are
// idempotent (an executor ignores an attempt it already ran).
type Orders struct {
	Seq      int64        `json:"seq"`
	Launch   []TaskLaunch `json:"launch,omitempty"`
	Kill     []AttemptID  `json:"kill,omitempty"`
	Shutdown bool         `json:"shutdown,omitempty"`
}

// TaskLaunch is one attempt to run.
type TaskLaunch struct {
	Attempt AttemptID `json:"attempt"`
	Task    int       `json:"task"`
	Number  int       `json:"number"` // attempt number, from 0
	Command string    `json:"command,omitempty"`
	// Func, when set, names a function the executor's program registered
	// (a Go driver's task, package spark); it is called with Input and
	// its return value is the attempt's output. Command is then empty.
	Func  string `json:"func,omitempty"`
	Input []byte `json:"input,omitempty"`
}

// Attempt states an executor reports (Spark's TaskState).
const (
	StateFinished = "FINISHED"
	StateFailed   = "FAILED"
	StateKilled   = "KILLED"
)

// TaskResult is how one attempt ended.
type TaskResult struct {
	Attempt    AttemptID `json:"attempt"`
	State      string    `json:"state"` // FINISHED, FAILED or KILLED
	ExitCode   int       `json:"exitCode"`
	Error      string    `json:"error,omitempty"`      // why it failed: exit status, signal, or a start error
	StderrTail string    `json:"stderrTail,omitempty"` // the last lines of its stderr
	Output     []byte    `json:"output,omitempty"`     // its stdout, when captured
	DurationUs int64     `json:"durationUs"`           // run time of the process, in microseconds
}

// StatusUpdate carries finished attempts (Spark's StatusUpdate). Ack is
// as in Poll.
type StatusUpdate struct {
	Executor string       `json:"executor"`
	Ack      int64        `json:"ack,omitempty"`
	Results  []TaskResult `json:"results"`
}

// StatusAck answers a StatusUpdate; it may carry the executor's next
// orders (the tasks for the slots the update freed).
type StatusAck struct {
	Orders *Orders `json:"orders,omitempty"`
}
