package master

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// idTime is Spark's id timestamp layout (yyyyMMddHHmmss).
const idTime = "20060102150405"

var osHostname = os.Hostname

type workerInfo struct {
	id, host      string
	port          int
	url, webUIURL string
	cores, memMB  int
	coresUsed     int
	memUsed       int
	state         protocol.WorkerState
	lastHeartbeat time.Time
	since         time.Time
	executors     map[execKey]*executorInfo
	drivers       map[string]*driverInfo
	// needsSync: re-registered while UNKNOWN during recovery; its next
	// WorkerLatestState (or MasterChanged answer) re-attaches what it runs.
	needsSync bool
	// unreachable: a command to it found its port closed (the process is
	// gone or restarting). Nothing is scheduled on it until it heartbeats
	// again; if it never does, the worker timeout removes it.
	unreachable bool
}

func (w *workerInfo) hostPort() string { return fmt.Sprintf("%s:%d", w.host, w.port) }

func (w *workerInfo) record() recovery.WorkerRecord {
	return recovery.WorkerRecord{Format: recovery.FormatVersion, ID: w.id, Host: w.host, Port: w.port,
		URL: w.url, WebUIURL: w.webUIURL, Cores: w.cores, MemoryMB: w.memMB, Since: w.since}
}

func (w *workerInfo) addExecutor(e *executorInfo) {
	w.executors[e.key()] = e
	w.coresUsed += e.cores
	w.memUsed += e.memMB
}

func (w *workerInfo) removeExecutor(e *executorInfo) {
	if _, ok := w.executors[e.key()]; ok {
		delete(w.executors, e.key())
		w.coresUsed -= e.cores
		w.memUsed -= e.memMB
	}
}

func (w *workerInfo) addDriver(d *driverInfo) {
	w.drivers[d.id] = d
	w.coresUsed += d.spec.Cores
	w.memUsed += d.spec.MemoryMB
}

func (w *workerInfo) removeDriver(d *driverInfo) {
	if _, ok := w.drivers[d.id]; ok {
		delete(w.drivers, d.id)
		w.coresUsed -= d.spec.Cores
		w.memUsed -= d.spec.MemoryMB
	}
}

type execKey struct {
	app string
	id  int
}

type executorInfo struct {
	app    *appInfo
	id     int
	worker *workerInfo
	cores  int
	memMB  int
	state  protocol.ExecutorState
	// launchedAt is when the launch was queued (zero for an executor
	// recovered from the store).
	launchedAt time.Time
	// runningSince is when its worker first reported it RUNNING (zero
	// before that, and for an executor recovered from the store).
	runningSince time.Time
	// acked: the worker answered the launch, or the executor was seen on
	// the worker. Only then can its absence from the worker's heartbeat
	// mean it is not there.
	acked bool
	// missed counts consecutive heartbeats of its worker that did not list
	// it (see reconcileWorkerLocked).
	missed int
}

func (e *executorInfo) key() execKey { return execKey{e.app.id, e.id} }

type appInfo struct {
	id         string
	desc       protocol.AppDescription
	clientURL  string
	submitTime time.Time
	endTime    time.Time
	state      protocol.AppState
	executors  map[int]*executorInfo
	nextExecID int
	granted    int // cores
	coresAtEnd int // cores granted when it ended (the UI's completed table)
	limit      int // executor limit from RequestExecutors; valid when limitSet
	limitSet   bool
	// retries counts its consecutive executor failures (see
	// executorEndedLocked); an executor that runs for executorSuccessfulRun
	// resets it.
	retries int
	// backoff holds, per worker id, the relaunch backoff after executors of
	// the application ended right after they started there. Not persisted:
	// a new leader starts without it.
	backoff map[string]*launchBackoff
	waiting string // why it has no executors
	// lastHeartbeat is when the driver last showed it is alive (it
	// registered, was recovered, heartbeated or asked for executors).
	lastHeartbeat time.Time
	// refused counts the pushes its client refused in a row since it last
	// showed it is alive.
	refused int
	// probedAt: when the master asked the silent driver whether it is
	// alive (zero: not asked); see checkAppTimeoutsLocked.
	probedAt time.Time
	// untracked: recovered from a record of an older sparkd that did not
	// list executors; running executors its workers report are adopted.
	untracked bool
	// lostOnRecovery are executors its record names on a worker that is
	// not stored any more; the driver is told they are lost once recovery
	// completes.
	lostOnRecovery []int
}

func (a *appInfo) record() recovery.AppRecord {
	r := recovery.AppRecord{Format: recovery.FormatVersion, ID: a.id, Desc: a.desc, ClientURL: a.clientURL,
		SubmitTime: a.submitTime, State: a.state, NextExecID: a.nextExecID, ExecutorsTracked: true}
	if a.limitSet {
		limit := a.limit
		r.ExecutorLimit = &limit
	}
	for _, e := range a.executors {
		r.Executors = append(r.Executors, recovery.ExecutorRecord{ID: e.id, WorkerID: e.worker.id, Cores: e.cores, MemoryMB: e.memMB})
	}
	sort.Slice(r.Executors, func(i, j int) bool { return r.Executors[i].ID < r.Executors[j].ID })
	return r
}

func (a *appInfo) addExecutor(e *executorInfo) {
	a.executors[e.id] = e
	a.granted += e.cores
	if e.id >= a.nextExecID {
		a.nextExecID = e.id + 1
	}
}

func (a *appInfo) removeExecutor(e *executorInfo) {
	if _, ok := a.executors[e.id]; ok {
		delete(a.executors, e.id)
		a.granted -= e.cores
	}
}

func (a *appInfo) anyRunning() bool {
	for _, e := range a.executors {
		if e.state == protocol.ExecutorRunning {
			return true
		}
	}
	return false
}

// launchBackoff is the relaunch backoff of one application on one worker.
type launchBackoff struct {
	quickEnds int       // consecutive executors that ended within executorSuccessfulRun
	notBefore time.Time // no executor is launched there before (zero: released)
}

type driverInfo struct {
	id         string
	spec       protocol.DriverSpec
	submitTime time.Time
	state      protocol.DriverState
	worker     *workerInfo
	exception  string
	// recoveredWorker is the worker id the stored record named (recovery only).
	recoveredWorker string
	// launchedAt is when the driver was last sent to a worker.
	launchedAt time.Time
	// attempt counts the master's relaunches of the driver under its id
	// (persisted; see relaunchDriverLocked).
	attempt int
	// failures counts the consecutive quick failures of a supervised driver
	// (carried to its relaunches); notBefore holds a relaunch back until
	// then (backoff). Neither is persisted: a new leader relaunches at once.
	failures  int
	notBefore time.Time
	// acked and missed: as for executors (heartbeat reconciliation).
	acked  bool
	missed int
}

func (d *driverInfo) record() recovery.DriverRecord {
	r := recovery.DriverRecord{Format: recovery.FormatVersion, ID: d.id, Spec: d.spec, SubmitTime: d.submitTime, State: d.state,
		Attempt: d.attempt}
	if d.worker != nil {
		r.WorkerID = d.worker.id
	}
	return r
}

// state holds the registries of one term of leadership. A STANDBY master's
// state is empty.
type state struct {
	workers        map[string]*workerInfo
	workerByAddr   map[string]*workerInfo // host:port -> non-DEAD worker
	pendingWorkers map[string]bool        // ids being persisted
	apps           map[string]*appInfo    // active (not finished)
	appByClient    map[string]*appInfo
	pendingClients map[string]bool
	waitingApps    []*appInfo // FIFO, active apps that may want executors
	completedApps  []*appInfo
	drivers        map[string]*driverInfo // active drivers
	waitingDrivers []*driverInfo
	completedDrvs  []*driverInfo
	nextAppNum     int
	nextDriverNum  int
	// idBase is the first number of this term's block of application and
	// driver numbers (see newID).
	idBase int
	// storedIDs holds every application and driver id found in the store
	// when the term began, finished ones included: never reused.
	storedIDs map[string]bool
	// recoveryBlocker: see canCompleteRecoveryLocked.
	recoveryBlocker recoveryBlocker
}

// newState returns the empty registries of a term of the given epoch (0
// when not leading).
func newState(epoch int64) *state {
	return &state{
		workers: map[string]*workerInfo{}, workerByAddr: map[string]*workerInfo{}, pendingWorkers: map[string]bool{},
		apps: map[string]*appInfo{}, appByClient: map[string]*appInfo{}, pendingClients: map[string]bool{},
		drivers: map[string]*driverInfo{}, storedIDs: map[string]bool{},
		idBase: idBlockBase(epoch),
	}
}

// Application and driver ids keep Spark's format, app-<yyyyMMddHHmmss>-NNNN
// and driver-<yyyyMMddHHmmss>-NNNN, and must stay unique across terms: a
// leader that takes office within the same second as its predecessor's last
// id must not hand out an id the predecessor already used for an
// application or driver that has since finished (and whose record is gone),
// or `sparkd submit --status` and the history would mix the two.
//
// So each term numbers in its own block. As in Spark, a counter counts the
// term's ids (it never goes back, so a term never repeats an id, however
// many it makes per second); the k-th id of a term of epoch E gets the
// number (k / 1000) * 10000 + (E mod 10) * 1000 + k mod 1000. Epoch 1 thus
// numbers 1000..1999, then 11000..11999, ...; epoch 2 2000..2999, 12000...;
// epoch 10 0000..0999, 10000... The thousands digit is always E mod 10, so
// ids of two terms can only be equal when their epochs are equal mod 10 and
// both terms made them within the same second. In addition an id that is
// known (active, retained as completed, or found in the store when the term
// began, finished or not) is skipped.
const idBlock = 1000

func idBlockBase(epoch int64) int {
	e := epoch % 10
	if e < 0 {
		e = -e
	}
	return int(e) * idBlock
}

// newID returns prefix-<yyyyMMddHHmmss>-NNNN from counter *next (see
// idBlock), skipping ids for which known is true.
func (s *state) newID(prefix string, now time.Time, next *int, known func(string) bool) string {
	ts := now.Format(idTime)
	for {
		k := *next
		*next++
		n := (k/idBlock)*10*idBlock + s.idBase + k%idBlock
		id := fmt.Sprintf("%s-%s-%04d", prefix, ts, n)
		if !known(id) && !s.storedIDs[id] {
			return id
		}
	}
}

// newAppID returns a new application id, unique among known applications.
func (s *state) newAppID(now time.Time) string {
	return s.newID("app", now, &s.nextAppNum, func(id string) bool {
		_, ok := s.apps[id]
		return ok || s.completedApp(id)
	})
}

// newDriverID returns a new driver id, unique among known drivers.
func (s *state) newDriverID(now time.Time) string {
	return s.newID("driver", now, &s.nextDriverNum, func(id string) bool {
		_, ok := s.drivers[id]
		return ok || s.completedDriver(id)
	})
}

func (s *state) completedApp(id string) bool {
	for _, a := range s.completedApps {
		if a.id == id {
			return true
		}
	}
	return false
}

func (s *state) completedDriver(id string) bool {
	for _, d := range s.completedDrvs {
		if d.id == id {
			return true
		}
	}
	return false
}

func removeApp(list []*appInfo, a *appInfo) []*appInfo {
	for i, x := range list {
		if x == a {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func removeDrv(list []*driverInfo, d *driverInfo) []*driverInfo {
	for i, x := range list {
		if x == d {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// trimCount is how many of the oldest completed entries Spark drops when the
// history is full: max(retained/10, 1).
func trimCount(retained int) int { return max(retained/10, 1) }

// megabytesToString formats MB like Spark's Utils.megabytesToString
// ("1024.0 MiB", "8.0 GiB").
func megabytesToString(mb int) string {
	b := float64(mb) * 1024 * 1024
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for b >= 1024*2 && i < len(units)-1 && i < 5 {
		b /= 1024
		i++
	}
	// Spark switches to a unit once the size is at least 2 of it.
	return fmt.Sprintf("%.1f %s", b, units[i])
}
