// Package recovery owns how a sparkd master is elected and how it persists
// the cluster state a successor needs: the Elector and Store interfaces, the
// record types, and the NONE and FILESYSTEM implementations. The ZOOKEEPER
// implementation lives in recovery/zkrecovery so that packages using only
// these interfaces (master) never link ZooKeeper code.
//
// Guarantees (all implementations):
//
//   - A Store write returns nil only once the record is durable; callers
//     acknowledge a registration only after that.
//
//   - Writes made while not leader fail with ErrNotLeader; writes by a
//     deposed leader fail with ErrFenced (ZOOKEEPER).
//
//   - Undecodable records are quarantined and reported, never deleted.
//
//   - Records over MaxRecordSize are refused with ErrTooLarge in every mode.
//
//   - Epochs strictly increase: per election in ZOOKEEPER, per start of the
//     master in FILESYSTEM (kept in <dir>/epoch); NONE always uses epoch 1.
//
// Per mode:
//   - NONE keeps nothing: writes are validated and discarded, Read is empty.
//   - FILESYSTEM is for one master: it is always elected, and an exclusive
//     flock on <dir>/.lock makes a second master on the same directory fail
//     with ErrLocked. The lock is advisory and only as good as the file
//     system's flock (local disks yes; some network file systems no). There
//     is no fencing beyond it.
//   - ZOOKEEPER (recovery/zkrecovery) elects among many masters and fences
//     every write with the epoch; see that package for its guarantees.
//
// Read may be called outside a term (a standby may read); it then reports
// undecodable records without moving them, since moving is a write.
//
// Not guaranteed: that a write which returned an error did not commit (a
// ZooKeeper connection loss after the request was sent is ambiguous); callers
// must treat such a write as "maybe" and not acknowledge it.
package recovery

import (
	"context"
	"errors"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// Errors returned by Electors and Stores. Match with errors.Is.
var (
	// ErrFenced: a newer epoch exists; this master must step down.
	ErrFenced = errors.New("recovery: fenced by a newer epoch")
	// ErrNotLeader: the write was attempted outside a term of leadership.
	ErrNotLeader = errors.New("recovery: not the leader")
	// ErrTooLarge: the encoded record exceeds the store's size limit.
	ErrTooLarge = errors.New("recovery: record too large")
	// ErrLocked: another master holds the recovery directory.
	ErrLocked = errors.New("recovery: directory locked by another master")
	// ErrResigned is the OnRevoked reason after Elector.Resign.
	ErrResigned = errors.New("recovery: resigned")
)

// Mode is spark.deploy.recoveryMode.
type Mode string

const (
	ModeNone       Mode = "NONE"
	ModeFilesystem Mode = "FILESYSTEM"
	ModeZooKeeper  Mode = "ZOOKEEPER"
)

// Candidate describes a master taking part in an election. It is published
// in the candidate node so that standbys can give leader hints.
type Candidate struct {
	ID       string `json:"id"`
	RPCURL   string `json:"rpcUrl"`   // spark://host:7077
	WebUIURL string `json:"webUiUrl"` // http://host:8080
	RESTURL  string `json:"restUrl"`  // spark://host:6066 or "" when disabled
}

// LeaderInfo is the current leader as an Elector knows it.
type LeaderInfo struct {
	Candidate
	Epoch int64     `json:"epoch"`
	Since time.Time `json:"since"` // when the leader took office (zero if unknown)
}

// Callbacks are invoked by Elector.Run. They must not block for long; the
// Elector calls them from one goroutine, in order, never concurrently.
type Callbacks struct {
	// OnElected is called when this candidate takes office with a new epoch.
	// ctx is cancelled when the term ends (revocation, resign, Run's ctx
	// done); leader-only work must run under it.
	OnElected func(ctx context.Context, epoch int64)
	// OnRevoked is called once per term when it ends, with the reason
	// (ErrFenced, session expiry, self-fence, resign, ...). It is always
	// preceded by OnElected for the same term.
	OnRevoked func(reason error)
	// OnLeaderChanged is called whenever the known leader changes, including
	// to this candidate. ok is false when no leader is known.
	OnLeaderChanged func(leader LeaderInfo, ok bool)
}

// Elector runs a master's candidacy.
type Elector interface {
	// Run campaigns until ctx is done, invoking cb as leadership comes and
	// goes. Losing leadership never makes Run return: it campaigns again.
	// It returns nil when ctx is cancelled, or a fatal setup error.
	Run(ctx context.Context, me Candidate, cb Callbacks) error
	// Resign gives up leadership (or candidacy) at once so that a successor
	// is elected without waiting for a session timeout. Used on SIGTERM.
	Resign(ctx context.Context) error
	// Leader returns the current leader, if known.
	Leader() (LeaderInfo, bool)
	// LastContact is the time of the last reply from the coordination
	// service (zero for implementations without one). It is a liveness
	// hint only: bytes buffered while the process was paused arrive as
	// fresh "contact" when it resumes, so it proves nothing about the term.
	LastContact() time.Time
	// Confirm proves, with a round trip to the coordination service sent
	// after this call began, that this candidate still holds the current
	// term; it returns nil if so. Otherwise it returns an error wrapping
	// ErrFenced (a newer epoch exists) or ErrNotLeader (no term, or the term
	// is over: session lost, candidate gone, no answer before ctx's
	// deadline). A failure other than ctx being cancelled may end the term
	// (OnRevoked follows), so that the Elector campaigns again. Callers use
	// it after a local pause (SIGSTOP, a stalled VM), when LastContact
	// cannot be trusted. NONE and FILESYSTEM have no one to ask: they return
	// nil while elected. Safe to call from any goroutine, but not from a
	// callback.
	Confirm(ctx context.Context) error
}

// Kind names a record family; it is the prefix of its key.
type Kind string

const (
	KindApp    Kind = "app"
	KindDriver Kind = "driver"
	KindWorker Kind = "worker"
)

// FormatVersion is the record format written by this version of sparkd.
const FormatVersion = 1

// AppRecord is everything a new leader needs to recover an application.
type AppRecord struct {
	Format     int                     `json:"format"`
	ID         string                  `json:"id"`
	Desc       protocol.AppDescription `json:"desc"`
	ClientURL  string                  `json:"clientUrl"`
	SubmitTime time.Time               `json:"submitTime"`
	State      protocol.AppState       `json:"state"`
	NextExecID int                     `json:"nextExecutorId"`
	// ExecutorLimit is the total the application asked for with
	// RequestExecutors; nil when it never asked. 0 is a real limit ("no
	// more executors") and must survive a failover.
	ExecutorLimit *int `json:"executorLimit,omitempty"`
	// Executors are the executors granted and not yet known to have ended.
	// A leader writes an executor here before it tells the worker to launch
	// it, so a successor knows every executor that may run (and reports
	// the ones that ended while no master led), and NextExecID never goes
	// back: executor ids are never reused within an application.
	Executors []ExecutorRecord `json:"executors,omitempty"`
	// ExecutorsTracked is set by leaders that keep Executors; a record
	// without it (an older sparkd) says nothing about its executors.
	ExecutorsTracked bool `json:"executorsTracked,omitempty"`
}

// ExecutorRecord is one granted executor of an AppRecord.
type ExecutorRecord struct {
	ID       int    `json:"id"`
	WorkerID string `json:"workerId"`
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memoryMb"`
}

// DriverRecord is everything a new leader needs to recover a driver,
// including the full master list so a relaunch reaches any leader.
type DriverRecord struct {
	Format     int                  `json:"format"`
	ID         string               `json:"id"`
	Spec       protocol.DriverSpec  `json:"spec"`
	SubmitTime time.Time            `json:"submitTime"`
	State      protocol.DriverState `json:"state"`
	WorkerID   string               `json:"workerId,omitempty"`
	// Attempt counts the master's relaunches of the driver under its id
	// (0 before the first; absent in records of older versions).
	Attempt int `json:"attempt,omitempty"`
}

// WorkerRecord is everything a new leader needs to contact a worker.
type WorkerRecord struct {
	Format   int       `json:"format"`
	ID       string    `json:"id"`
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	URL      string    `json:"url"`
	WebUIURL string    `json:"webUiUrl"`
	Cores    int       `json:"cores"`
	MemoryMB int       `json:"memoryMb"`
	Since    time.Time `json:"since"`
}

// Quarantined is a record that could not be decoded and was moved aside.
type Quarantined struct {
	Key     string // original key, e.g. "app_app-20260101000000-0001"
	MovedTo string // where it now lives
	Err     error
}

// State is everything a Store holds.
type State struct {
	Apps        []AppRecord
	Drivers     []DriverRecord
	Workers     []WorkerRecord
	Quarantined []Quarantined
}

// Empty reports whether nothing is stored.
func (s State) Empty() bool {
	return len(s.Apps) == 0 && len(s.Drivers) == 0 && len(s.Workers) == 0
}

// Store persists records.
//
// Ordering contract: Put and Remove return nil only after the change is
// durable (ZooKeeper quorum commit, or fsync of file and directory); callers
// acknowledge a registration only after Put returned nil. Operations issued
// sequentially by one goroutine take effect in that order. Read returns a
// state that includes every write that returned nil before Read was called.
// In ZOOKEEPER mode every write is fenced by the leader's epoch.
type Store interface {
	PutApp(ctx context.Context, r AppRecord) error
	PutDriver(ctx context.Context, r DriverRecord) error
	PutWorker(ctx context.Context, r WorkerRecord) error
	Remove(ctx context.Context, kind Kind, id string) error
	// Read returns every stored record; undecodable ones are quarantined
	// and listed in State.Quarantined.
	Read(ctx context.Context) (State, error)
	Close() error
}

// Key is the record name used by the stores: "<kind>_<id>".
func Key(kind Kind, id string) string { return string(kind) + "_" + id }
