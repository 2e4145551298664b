package master

// SchedWorker is a worker the scheduler may place work on. Only ALIVE,
// non-decommissioned workers are passed, sorted by ID. Memory is in MB.
type SchedWorker struct {
	ID        string
	CoresFree int
	MemFreeMB int
}

// SchedDriver is a waiting driver, passed in FIFO order.
type SchedDriver struct {
	ID    string
	Cores int
	MemMB int
}

// SchedApp is an application waiting for executors, passed in FIFO order.
type SchedApp struct {
	ID            string
	CoresLeft     int            // maxCores - granted cores (math.MaxInt32 if unlimited)
	ExecutorCores int            // 0 = one executor per worker taking all cores it can (Spark default)
	MemPerExecMB  int            // memory per executor, MB
	ExecutorLimit int            // max executors in total (0 = unlimited), from RequestExecutors
	Executors     int            // executors currently running/launching
	ExecutorsOn   map[string]int // workerID -> executors of this app already there
}

// DriverPlacement launches one driver on one worker.
type DriverPlacement struct{ DriverID, WorkerID string }

// ExecutorGrant launches one executor of Cores cores and MemMB MB.
type ExecutorGrant struct {
	AppID, WorkerID string
	Cores, MemMB    int
}

// Plan is the result of one scheduling pass.
type Plan struct {
	Drivers   []DriverPlacement
	Executors []ExecutorGrant
	Waiting   map[string]string // appID -> human reason it got nothing
}

// Schedule decides where waiting drivers and executors go. It is pure and
// deterministic: the same input gives the same Plan.
func Schedule(workers []SchedWorker, drivers []SchedDriver, apps []SchedApp, spreadOut bool, largestWorkerCores int) Plan {
	return Plan{Waiting: map[string]string{}}
}
