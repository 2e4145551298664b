package protocol

// MasterState is a master's recovery state (Spark's RecoveryState).
type MasterState string

const (
	MasterStandby            MasterState = "STANDBY"
	MasterRecovering         MasterState = "RECOVERING"
	MasterCompletingRecovery MasterState = "COMPLETING_RECOVERY"
	MasterAlive              MasterState = "ALIVE"
)

// WorkerState is a worker's state as the master sees it.
type WorkerState string

const (
	WorkerAlive          WorkerState = "ALIVE"
	WorkerDead           WorkerState = "DEAD"
	WorkerDecommissioned WorkerState = "DECOMMISSIONED"
	WorkerUnknown        WorkerState = "UNKNOWN"
)

// AppState is an application's state.
type AppState string

const (
	AppWaiting  AppState = "WAITING"
	AppRunning  AppState = "RUNNING"
	AppFinished AppState = "FINISHED"
	AppFailed   AppState = "FAILED"
	AppKilled   AppState = "KILLED"
	AppUnknown  AppState = "UNKNOWN"
)

// Finished reports whether the application has ended.
func (s AppState) Finished() bool {
	return s == AppFinished || s == AppFailed || s == AppKilled
}

// DriverState is a driver's state.
type DriverState string

const (
	DriverSubmitted   DriverState = "SUBMITTED"
	DriverRunning     DriverState = "RUNNING"
	DriverFinished    DriverState = "FINISHED"
	DriverRelaunching DriverState = "RELAUNCHING"
	DriverUnknown     DriverState = "UNKNOWN"
	DriverKilled      DriverState = "KILLED"
	DriverFailed      DriverState = "FAILED"
	DriverError       DriverState = "ERROR"
)

// Finished reports whether the driver has ended for good.
func (s DriverState) Finished() bool {
	switch s {
	case DriverFinished, DriverKilled, DriverFailed, DriverError:
		return true
	}
	return false
}

// ExecutorState is an executor's state (Spark's ExecutorState).
type ExecutorState string

const (
	ExecutorLaunching      ExecutorState = "LAUNCHING"
	ExecutorRunning        ExecutorState = "RUNNING"
	ExecutorKilled         ExecutorState = "KILLED"
	ExecutorFailed         ExecutorState = "FAILED"
	ExecutorLost           ExecutorState = "LOST"
	ExecutorExited         ExecutorState = "EXITED"
	ExecutorDecommissioned ExecutorState = "DECOMMISSIONED"
)

// Finished reports whether the executor has ended.
func (s ExecutorState) Finished() bool {
	switch s {
	case ExecutorKilled, ExecutorFailed, ExecutorLost, ExecutorExited, ExecutorDecommissioned:
		return true
	}
	return false
}
