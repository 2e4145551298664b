package protocol

import (
	"fmt"
	"strings"
)

// Stamp fences a master command: the epoch of the master that sent it and the
// master's RPC URL (spark://host:port). Receivers refuse a Stamp whose Epoch is
// lower than the highest they have seen.
type Stamp struct {
	Epoch     int64  `json:"epoch"`
	MasterURL string `json:"masterUrl"`
}

// Validate checks the stamp's required fields.
func (s Stamp) Validate() error {
	if s.Epoch <= 0 {
		return missing("epoch")
	}
	if s.MasterURL == "" {
		return missing("masterUrl")
	}
	return nil
}

// LeaderHint is returned by a non-ALIVE master (HTTP 503) so that a caller can
// go straight to the leader. LeaderURL is empty when no leader is known.
type LeaderHint struct {
	State       MasterState `json:"state"`
	LeaderURL   string      `json:"leaderUrl,omitempty"`
	LeaderWebUI string      `json:"leaderWebUiUrl,omitempty"`
	LeaderREST  string      `json:"leaderRestUrl,omitempty"`
	Epoch       int64       `json:"epoch"`
}

// ErrorBody is the JSON body of every non-2xx sparkd RPC response.
type ErrorBody struct {
	Error string      `json:"error"`
	Hint  *LeaderHint `json:"leaderHint,omitempty"`
}

// Paths of the master's RPC listener (the spark://host:7077 address).
const (
	PathLeader             = "/v1/leader"                      // GET  -> LeaderInfo
	PathRegisterWorker     = "/v1/workers"                     // POST RegisterWorker -> RegisteredWorker
	PathWorkerHeartbeat    = "/v1/workers/{id}/heartbeat"      // POST Heartbeat -> HeartbeatResponse
	PathExecutorState      = "/v1/workers/{id}/executor-state" // POST ExecutorStateChanged
	PathDriverState        = "/v1/workers/{id}/driver-state"   // POST DriverStateChanged
	PathWorkerLatestState  = "/v1/workers/{id}/latest-state"   // POST WorkerLatestState -> WorkerLatestStateResponse
	PathWorkerDecommission = "/v1/workers/{id}/decommission"   // POST WorkerDecommissioning
	PathWorkerUnregister   = "/v1/workers/{id}/unregister"     // POST (worker shutting down)
	PathRegisterApp        = "/v1/apps"                        // POST RegisterApplication -> RegisteredApplication
	PathUnregisterApp      = "/v1/apps/{id}/unregister"        // POST UnregisterApplication
	PathKillApp            = "/v1/apps/{id}/kill"              // POST
	PathRequestExecutors   = "/v1/apps/{id}/executors"         // POST RequestExecutors
	PathAppHeartbeat       = "/v1/apps/{id}/heartbeat"         // POST AppHeartbeat -> AppHeartbeatResponse
	PathSubmitDriver       = "/v1/drivers"                     // POST SubmitDriver -> SubmitDriverResponse
	PathDriverStatus       = "/v1/drivers/{id}"                // GET  -> DriverStatus
	PathKillDriver         = "/v1/drivers/{id}/kill"           // POST
	PathMasterStateJSON    = "/v1/state"                       // GET  master /json document
)

// Paths of a worker's command listener (pushed by the master).
const (
	PathWorkerMasterChanged = "/v1/master-changed" // POST MasterChanged -> WorkerSchedulerState
	PathLaunchExecutor      = "/v1/executors/launch"
	PathKillExecutor        = "/v1/executors/kill"
	PathLaunchDriver        = "/v1/drivers/launch"
	PathKillDriverOnWorker  = "/v1/drivers/kill"
	PathApplicationFinished = "/v1/apps/finished"
	PathReconnectWorker     = "/v1/reconnect"
)

// Paths of an application client's (driver's) listener.
const (
	PathAppMasterChanged   = "/v1/app/master-changed" // POST MasterChanged -> MasterChangeAcknowledged
	PathExecutorAdded      = "/v1/app/executor-added"
	PathExecutorUpdated    = "/v1/app/executor-updated"
	PathExecutorRemoved    = "/v1/app/executor-removed"
	PathApplicationRemoved = "/v1/app/removed"
	PathWorkerRemoved      = "/v1/app/worker-removed"
	// PathAppPing asks a driver that sent no AppHeartbeat for too long
	// whether it is alive (POST, empty body -> 200) before the master
	// removes its application.
	PathAppPing = "/v1/app/ping"
)

// LeaderInfo is what any master answers on PathLeader.
type LeaderInfo struct {
	ID          string      `json:"id"`
	URL         string      `json:"url"`
	State       MasterState `json:"state"`
	Epoch       int64       `json:"epoch"`
	LeaderID    string      `json:"leaderId,omitempty"`
	LeaderURL   string      `json:"leaderUrl,omitempty"`
	LeaderWebUI string      `json:"leaderWebUiUrl,omitempty"`
	LeaderREST  string      `json:"leaderRestUrl,omitempty"`
	LeaderSince string      `json:"leaderSince,omitempty"` // RFC 3339
}

// ---- worker -> master ----

// RegisterWorker is sent by a worker to every master it knows.
type RegisterWorker struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	URL        string `json:"url"`        // http://host:port of the worker's command listener
	WebUIURL   string `json:"webUiUrl"`   // http://host:8081
	Cores      int    `json:"cores"`      // cores offered
	MemoryMB   int    `json:"memoryMb"`   // memory offered, MB
	MasterHint string `json:"masterHint"` // the URL the worker used to reach this master
}

// Validate names the first missing required field.
func (m RegisterWorker) Validate() error {
	switch {
	case m.ID == "":
		return missing("id")
	case m.Host == "":
		return missing("host")
	case m.Port <= 0 || m.Port > 65535:
		return invalid("port", m.Port)
	case m.URL == "":
		return missing("url")
	case m.Cores <= 0:
		return invalid("cores", m.Cores)
	case m.MemoryMB <= 0:
		return invalid("memoryMb", m.MemoryMB)
	}
	return nil
}

// RegisteredWorker acknowledges a registration; the worker is persisted first.
type RegisteredWorker struct {
	Stamp
	MasterWebUIURL string `json:"masterWebUiUrl"`
	Duplicate      bool   `json:"duplicate"`
}

// Heartbeat is sent by a registered worker every spark.worker.timeout/4
// (jittered).
type Heartbeat struct {
	WorkerID string `json:"workerId"`
	Epoch    int64  `json:"epoch"` // the highest epoch the worker has seen
	// Running is what the worker runs right now, so that the master can
	// reconcile both ways: kill what it does not know, and mark lost what it
	// has on this worker that the worker does not run. Nil from a worker
	// that does not report it.
	Running *Running `json:"running,omitempty"`
}

// Running lists the executors and drivers a worker runs, and the ends it
// has not yet had acknowledged (their reports are still queued): the master
// applies those at once rather than take the executor for lost.
type Running struct {
	Executors []ExecutorRef         `json:"executors"`
	Drivers   []string              `json:"drivers"`
	Ended     []ExecutorDescription `json:"ended,omitempty"`
}

// ExecutorRef names one executor.
type ExecutorRef struct {
	AppID      string `json:"appId"`
	ExecutorID int    `json:"executorId"`
}

// HeartbeatResponse tells a worker the master no longer knows it.
type HeartbeatResponse struct {
	Stamp
	Reregister bool `json:"reregister"`
}

// ExecutorStateChanged reports an executor's transition. Workers retry it
// until a master acknowledges, and re-send unacknowledged ones after a
// master change.
type ExecutorStateChanged struct {
	WorkerID   string        `json:"workerId"`
	AppID      string        `json:"appId"`
	ExecutorID int           `json:"executorId"`
	State      ExecutorState `json:"state"`
	Message    string        `json:"message,omitempty"`
	ExitCode   *int          `json:"exitCode,omitempty"`
}

// Validate names the first missing required field.
func (m ExecutorStateChanged) Validate() error {
	switch {
	case m.AppID == "":
		return missing("appId")
	case m.State == "":
		return missing("state")
	}
	return nil
}

// DriverStateChanged reports a driver's transition.
type DriverStateChanged struct {
	WorkerID  string      `json:"workerId"`
	DriverID  string      `json:"driverId"`
	State     DriverState `json:"state"`
	Exception string      `json:"exception,omitempty"`
}

// Validate names the first missing required field.
func (m DriverStateChanged) Validate() error {
	switch {
	case m.DriverID == "":
		return missing("driverId")
	case m.State == "":
		return missing("state")
	}
	return nil
}

// ExecutorDescription describes a running executor (worker state sync).
type ExecutorDescription struct {
	AppID      string        `json:"appId"`
	ExecutorID int           `json:"executorId"`
	Cores      int           `json:"cores"`
	MemoryMB   int           `json:"memoryMb"`
	State      ExecutorState `json:"state"`
	PID        int           `json:"pid,omitempty"`
	// ExitCode and Message describe how a finished executor ended.
	ExitCode *int   `json:"exitCode,omitempty"`
	Message  string `json:"message,omitempty"`
}

// DriverDescription describes a driver a worker runs (worker state sync).
type DriverDescription struct {
	DriverID  string      `json:"driverId"`
	Cores     int         `json:"cores"`
	MemoryMB  int         `json:"memoryMb"`
	State     DriverState `json:"state"`
	Exception string      `json:"exception,omitempty"` // how a finished driver ended
}

// WorkerSchedulerState answers MasterChanged: everything the worker runs,
// and what ended recently (FinishedExecutors, FinishedDrivers: within the
// last few minutes, newest last, bounded), so that a new leader learns of
// ends that happened while no master led even when their report was
// acknowledged by a master that died before acting on it.
type WorkerSchedulerState struct {
	WorkerID          string                `json:"workerId"`
	Executors         []ExecutorDescription `json:"executors"`
	Drivers           []DriverDescription   `json:"drivers"`
	FinishedExecutors []ExecutorDescription `json:"finishedExecutors,omitempty"`
	FinishedDrivers   []DriverDescription   `json:"finishedDrivers,omitempty"`
}

// WorkerLatestState is sent after registration so the master can kill what it
// does not know (SPARK-13604).
type WorkerLatestState = WorkerSchedulerState

// WorkerDecommissioning tells the master the worker refuses new work.
type WorkerDecommissioning struct {
	WorkerID string `json:"workerId"`
}

// ---- master -> worker ----

// MasterChanged is pushed by a newly elected master to every stored worker
// and application during RECOVERING.
type MasterChanged struct {
	Stamp
	MasterWebUIURL string `json:"masterWebUiUrl"`
}

// LaunchExecutor asks a worker to start one executor.
type LaunchExecutor struct {
	Stamp
	AppID      string         `json:"appId"`
	ExecutorID int            `json:"executorId"`
	App        AppDescription `json:"app"`
	Cores      int            `json:"cores"`
	MemoryMB   int            `json:"memoryMb"`
}

// KillExecutor asks a worker to kill one executor.
type KillExecutor struct {
	Stamp
	AppID      string `json:"appId"`
	ExecutorID int    `json:"executorId"`
}

// LaunchDriver asks a worker to start a cluster-mode driver.
type LaunchDriver struct {
	Stamp
	DriverID string     `json:"driverId"`
	Desc     DriverSpec `json:"desc"`
	// Attempt counts the master's relaunches of the driver under its id
	// (after its worker was lost; 0 the first time). A worker starts a
	// driver it already ran only for a higher attempt.
	Attempt int `json:"attempt,omitempty"`
}

// KillDriver asks a worker to kill a driver.
type KillDriver struct {
	Stamp
	DriverID string `json:"driverId"`
}

// ApplicationFinished tells a worker to clean up after an application.
type ApplicationFinished struct {
	Stamp
	AppID string `json:"appId"`
}

// ReconnectWorker asks a worker the master has forgotten to register again.
type ReconnectWorker struct {
	Stamp
}

// ---- application client <-> master ----

// AppDescription is what an application asks for. ExecutorCores == 0 means
// "one executor per worker, taking all the cores it can" (Spark's default).
// MaxCores == 0 means "spark.deploy.defaultCores" (unlimited by default).
type AppDescription struct {
	Name          string            `json:"name"`
	User          string            `json:"user,omitempty"`
	Command       []string          `json:"command"` // executor command and args, with {{...}} placeholders
	Env           map[string]string `json:"env,omitempty"`
	ExecutorCores int               `json:"executorCores,omitempty"`
	ExecutorMemMB int               `json:"executorMemoryMb"`
	MaxCores      int               `json:"maxCores,omitempty"`
	InitialLimit  int               `json:"initialExecutorLimit,omitempty"` // 0 = unlimited
	DriverURL     string            `json:"driverUrl,omitempty"`
	// AppUIURL is the driver's application UI (spark.ui.port, 4040), which
	// the master UI links as "Application Detail UI".
	AppUIURL string `json:"appUiUrl,omitempty"`
	// Principal is the application principal the registration was signed
	// by (set by the master, not the driver, when authentication is on).
	// Workers derive the executors' application credential from it.
	Principal string `json:"principal,omitempty"`
}

// Validate names the first missing or invalid field.
func (d AppDescription) Validate() error {
	switch {
	case strings.TrimSpace(d.Name) == "":
		return missing("name")
	case len(d.Command) == 0 || d.Command[0] == "":
		return missing("command")
	case d.ExecutorCores < 0:
		return invalid("executorCores", d.ExecutorCores)
	case d.ExecutorMemMB <= 0:
		return invalid("executorMemoryMb", d.ExecutorMemMB)
	case d.MaxCores < 0:
		return invalid("maxCores", d.MaxCores)
	}
	return nil
}

// RegisterApplication is sent by a driver to every master it knows.
type RegisterApplication struct {
	App AppDescription `json:"app"`
	// ClientURL is the http://host:port listener that receives master pushes.
	ClientURL string `json:"clientUrl"`
}

// Validate names the first missing or invalid field.
func (m RegisterApplication) Validate() error {
	if m.ClientURL == "" {
		return missing("clientUrl")
	}
	if err := m.App.Validate(); err != nil {
		return fmt.Errorf("app.%w", err)
	}
	return nil
}

// RegisteredApplication acknowledges a registration; the app is persisted first.
type RegisteredApplication struct {
	Stamp
	AppID string `json:"appId"`
}

// UnregisterApplication ends an application normally.
type UnregisterApplication struct {
	AppID string `json:"appId"`
}

// RequestExecutors sets the application's total executor target.
type RequestExecutors struct {
	Total int `json:"total"`
}

// AppHeartbeat lets a driver check that its master still knows it.
type AppHeartbeat struct {
	AppID string `json:"appId"`
	Epoch int64  `json:"epoch"`
}

// AppHeartbeatResponse mirrors HeartbeatResponse for applications.
type AppHeartbeatResponse struct {
	Stamp
	State      AppState `json:"state"`
	Reregister bool     `json:"reregister"`
	// WaitingReason says why the application has no executor ("" when it
	// has one, or the master does not know): the /json waitingreason.
	WaitingReason string `json:"waitingReason,omitempty"`
}

// MasterChangeAcknowledged answers MasterChanged on a client.
type MasterChangeAcknowledged struct {
	AppID string `json:"appId"`
}

// ExecutorAdded tells a driver an executor was granted.
type ExecutorAdded struct {
	Stamp
	ExecutorID int    `json:"executorId"`
	WorkerID   string `json:"workerId"`
	HostPort   string `json:"hostPort"`
	Cores      int    `json:"cores"`
	MemoryMB   int    `json:"memoryMb"`
}

// ExecutorUpdated tells a driver an executor changed state.
type ExecutorUpdated struct {
	Stamp
	ExecutorID int           `json:"executorId"`
	State      ExecutorState `json:"state"`
	Message    string        `json:"message,omitempty"`
	ExitCode   *int          `json:"exitCode,omitempty"`
	WorkerLost bool          `json:"workerLost,omitempty"`
}

// ExecutorRemoved tells a driver an executor is gone for good.
type ExecutorRemoved = ExecutorUpdated

// ApplicationRemoved tells a driver the master ended its application.
type ApplicationRemoved struct {
	Stamp
	State   AppState `json:"state"`
	Message string   `json:"message"`
}

// WorkerRemoved tells a driver a worker it had executors on was lost.
type WorkerRemoved struct {
	Stamp
	WorkerID string `json:"workerId"`
	Host     string `json:"host"`
	Message  string `json:"message"`
}

// ---- drivers (cluster deploy mode) ----

// DriverSpec describes a cluster-mode driver program.
type DriverSpec struct {
	Name      string            `json:"name,omitempty"`
	Command   []string          `json:"command"` // appResource followed by appArgs
	Env       map[string]string `json:"env,omitempty"`
	Cores     int               `json:"cores"`
	MemoryMB  int               `json:"memoryMb"`
	Supervise bool              `json:"supervise"`
	MainClass string            `json:"mainClass,omitempty"`
	// Masters is the full master URL list handed to the driver as
	// SPARK_MASTER, so a relaunched driver reaches any leader (SPARK-24794).
	Masters    string            `json:"masters,omitempty"`
	Properties map[string]string `json:"sparkProperties,omitempty"`
}

// Validate names the first missing or invalid field.
func (d DriverSpec) Validate() error {
	switch {
	case len(d.Command) == 0 || d.Command[0] == "":
		return missing("command")
	case d.Cores <= 0:
		return invalid("cores", d.Cores)
	case d.MemoryMB <= 0:
		return invalid("memoryMb", d.MemoryMB)
	}
	return nil
}

// SubmitDriverResponse acknowledges a persisted driver submission.
type SubmitDriverResponse struct {
	Stamp
	DriverID string `json:"driverId"`
}

// DriverStatus answers a driver status request.
type DriverStatus struct {
	DriverID       string      `json:"driverId"`
	Found          bool        `json:"found"`
	State          DriverState `json:"state,omitempty"`
	WorkerID       string      `json:"workerId,omitempty"`
	WorkerHostPort string      `json:"workerHostPort,omitempty"`
	Exception      string      `json:"exception,omitempty"`
}

func missing(field string) error {
	return &FieldError{Field: field, Reason: "is required"}
}

func invalid(field string, v any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf("is invalid: %v", v)}
}

// FieldError names a missing or malformed message field. Handlers answer it
// with HTTP 400.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }
