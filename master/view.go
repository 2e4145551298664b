package master

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
)

// View is a read-only snapshot of the master's state, built on demand by the
// master core and rendered by the web UI, /json, the REST server and metrics.
// A View is never mutated after it is returned.
type View struct {
	ID, URL, WebUIURL, RESTURL string // URL = spark://host:7077; RESTURL = spark://host:6066 or ""
	Status                     protocol.MasterState
	Epoch                      int64
	LeaderID, LeaderURL        string
	LeaderWebUIURL             string
	LeaderRESTURL              string // the leader's REST server, spark://host:6066, or ""
	LeaderSince                time.Time
	Workers                    []WorkerView
	ActiveApps, CompletedApps  []AppView
	ActiveDrivers              []DriverView
	CompletedDrivers           []DriverView
	HA                         HAStats
}

// WorkerView describes one worker. Memory is in MB.
type WorkerView struct {
	ID, Host      string
	Port          int
	WebUIAddress  string
	Cores         int
	CoresUsed     int
	MemoryMB      int
	MemoryUsedMB  int
	State         protocol.WorkerState
	LastHeartbeat time.Time
}

// AppView describes one application. Cores is the number of cores granted;
// MaxCores 0 means unlimited.
type AppView struct {
	ID, Name, User      string
	Cores               int
	MaxCores            int
	ExecutorCores       int
	MemoryPerExecutorMB int
	Executors           int
	SubmitTime, EndTime time.Time
	State               protocol.AppState
	WaitingReason       string
	Command             []string
	// AppUIURL is the driver's application UI (Spark's "Application Detail
	// UI"), when the driver gave one.
	AppUIURL string
	// ExecutorLimit is the total the driver asked for (RequestExecutors);
	// -1 when it never asked.
	ExecutorLimit int
	// ExecutorList is every executor the application has now, by id. For a
	// completed application it is empty and Cores is what it held when it
	// ended.
	ExecutorList []ExecutorView
}

// ExecutorView describes one executor of an application.
type ExecutorView struct {
	ID                       int
	WorkerID, WorkerHostPort string
	WorkerWebUIURL           string
	Cores, MemoryMB          int
	State                    protocol.ExecutorState
}

// DriverView describes one cluster-mode driver.
type DriverView struct {
	ID             string
	SubmitTime     time.Time
	State          protocol.DriverState
	Cores          int
	MemoryMB       int
	WorkerID       string
	WorkerHostPort string
	MainClass      string
	Supervise      bool
	Exception      string
}

// HAStats are the master's high-availability counters.
type HAStats struct {
	LeaderTransitions, FencedWrites uint64
	LastFailover                    time.Duration
	// LastRecovery is how long the last recovery took from the election
	// until every stored peer had answered or was removed; Recovering is
	// set while one is under way (the master is ALIVE meanwhile).
	LastRecovery  time.Duration
	Recovering    bool
	LastZKContact time.Time
	ZKEnabled     bool
	// Reconciled counts what the master corrected because the fleet and its
	// own view disagreed.
	Reconciled ReconcileStats
	// OutboxDepth and PersistDepth are the messages and store writes the
	// current term has queued or in flight.
	OutboxDepth, PersistDepth int64
	// Failovers are the last terms this master took office in, newest last.
	Failovers []Failover
}

// Failover is one term this master led: when it went ALIVE, at which epoch,
// and how long it took from "no leader" (or its election) to ALIVE.
type Failover struct {
	Epoch    int64
	AliveAt  time.Time
	Duration time.Duration
}

// ReconcileStats counts reconciliation actions of the leader.
type ReconcileStats struct {
	// LaunchRefused: launches a worker definitely refused (resources freed).
	LaunchRefused uint64
	// MarkedLost: executors and drivers a worker did not run although the
	// master had them there (after a grace period, or on re-attach).
	MarkedLost uint64
	// KilledUnknown: executors and drivers a worker ran that the master did
	// not know (killed).
	KilledUnknown uint64
	// ReportsRefused: state reports from a worker that does not run the
	// executor or driver reported on.
	ReportsRefused uint64
	// EndedWhileLeaderless: executor and driver ends reported on re-attach
	// (they ended while no master led).
	EndedWhileLeaderless uint64
}

// Actions is what the UI and REST server may ask of the master (the master
// core's *Master implements it). Every method that changes state returns
// a *NotAliveError when the master is not ALIVE and ErrNotFound (wrapped)
// for an unknown id.
type Actions interface {
	// Status is the state this master reports, in O(1) (View is O(cluster)).
	Status() protocol.MasterState
	View() View
	KillApp(ctx context.Context, appID string) error
	KillDriver(ctx context.Context, driverID string) error
	// SubmitDriver persists the driver before it returns.
	SubmitDriver(ctx context.Context, spec protocol.DriverSpec) (driverID string, err error)
	DriverStatus(ctx context.Context, driverID string) (protocol.DriverStatus, error)
	KillAllDrivers(ctx context.Context) error
	ClearCompleted(ctx context.Context) error
}

// NotAliveError is returned by Actions when the master is not ALIVE. The REST
// server maps it to Spark's "Can only accept driver submissions in ALIVE
// state. Current state: STANDBY." and the RPC layer to 503 plus the hint.
type NotAliveError struct {
	State protocol.MasterState
	Hint  protocol.LeaderHint
}

func (e *NotAliveError) Error() string {
	if e.Hint.LeaderURL != "" {
		return fmt.Sprintf("master: not alive (state %s); leader is %s", e.State, e.Hint.LeaderURL)
	}
	return fmt.Sprintf("master: not alive (state %s)", e.State)
}

// ErrNotFound is wrapped by Actions for an unknown application or driver id.
var ErrNotFound = errors.New("master: not found")

// UIOptions configures the web UI and the REST server.
type UIOptions struct {
	KillEnabled bool          // spark.ui.killEnabled: show and accept kill forms
	Logger      *logrus.Entry // nil: a discarding logger
	// Metrics, when set, serves /metrics (the standard Prometheus metrics).
	Metrics http.Handler
	// JWS, when set, is the JWSFilter (spark.ui.filters for the web UI's
	// kill forms, spark.master.rest.filters for the whole REST API): a
	// request without a valid "Authorization: Bearer <JWS>" gets 401.
	JWS *protocol.JWSVerifier
}

func (o UIOptions) logger() *logrus.Entry {
	if o.Logger != nil {
		return o.Logger
	}
	l := logrus.New()
	l.Out = discard{}
	return logrus.NewEntry(l)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
