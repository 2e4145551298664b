package master

import (
	"fmt"
	"slices"
)

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

// SchedApp is an application that may want executors, passed in FIFO order.
type SchedApp struct {
	ID            string
	CoresLeft     int            // maxCores - granted cores (math.MaxInt32 if unlimited)
	ExecutorCores int            // 0 = one executor per worker taking all cores it can (Spark default)
	MemPerExecMB  int            // memory per executor, MB
	ExecutorLimit int            // max executors in total (0 = unlimited), from RequestExecutors
	Executors     int            // executors currently running/launching
	ExecutorsOn   map[string]int // workerID -> executors of this app already there
	// Excluded names workers that get no executor of this app in this pass
	// (the relaunch backoff after its executors ended right after starting).
	Excluded map[string]bool
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
	// Waiting maps the id of every application that has no executor and was
	// granted none in this pass to a human reason, e.g. "each executor needs
	// 10 cores but the largest worker has 8". Applications that already run
	// executors, or that reached their executor limit, are not listed.
	Waiting map[string]string
}

// Schedule decides where waiting drivers and executors go, with Spark's
// standalone semantics (Master.schedule):
//
//   - Drivers first, FIFO. Each goes to the next worker, walking the workers
//     round-robin, that has the driver's cores and memory free. A driver that
//     fits nowhere stays waiting.
//   - Then applications, FIFO. Usable workers are those with one executor's
//     cores (ExecutorCores, or 1 when 0) and memory free, ordered by free
//     cores, most first (Spark's CORES_FREE_DESC), ties by ID. With spreadOut
//     each pass over the usable workers assigns one executor's worth of cores
//     per worker (Spark's scheduleExecutorsOnWorkers); without it a worker is
//     filled before the next one is used. An application takes at most
//     CoresLeft cores and at most ExecutorLimit executors in total.
//   - ExecutorCores == 0: at most one executor per worker per application,
//     taking all the cores it can; a worker that already runs an executor of
//     the application (ExecutorsOn) gets none.
//   - An executor that needs more cores than largestWorkerCores is never
//     launched; Plan.Waiting says why.
//
// Resources granted to drivers are not offered to executors, and resources
// granted to one application are not offered to the next. Schedule is pure
// and deterministic: the same input gives the same Plan; the inputs are not
// modified.
func Schedule(workers []SchedWorker, drivers []SchedDriver, apps []SchedApp, spreadOut bool, largestWorkerCores int) Plan {
	plan := Plan{Waiting: map[string]string{}}
	free := make([]SchedWorker, len(workers))
	copy(free, workers)

	// Drivers: round-robin over the workers, continuing where the previous
	// driver stopped (Spark's spreadOutDrivers walk, without the shuffle so
	// that the plan is deterministic).
	if n := len(free); n > 0 {
		pos := 0
		for _, d := range drivers {
			for visited := 0; visited < n; visited++ {
				w := &free[pos]
				pos = (pos + 1) % n
				if w.CoresFree >= d.Cores && w.MemFreeMB >= d.MemMB {
					w.CoresFree -= d.Cores
					w.MemFreeMB -= d.MemMB
					plan.Drivers = append(plan.Drivers, DriverPlacement{DriverID: d.ID, WorkerID: w.ID})
					break
				}
			}
		}
	}

	// Only workers with a free core can ever take an executor; keep that list
	// compact so that a full cluster costs little per application.
	live := make([]int, 0, len(free))
	for i := range free {
		if free[i].CoresFree > 0 {
			live = append(live, i)
		}
	}
	var s appScratch
	for _, app := range apps {
		granted := s.scheduleApp(&plan, free, live, app, spreadOut)
		if granted == 0 && app.Executors == 0 && !atLimit(app) {
			plan.Waiting[app.ID] = waitingReason(app, free, live, largestWorkerCores)
		}
		if granted > 0 {
			live = compact(free, live)
		}
	}
	return plan
}

// appScratch holds per-application buffers reused across applications.
type appScratch struct {
	usable        []int
	assignedCores []int
	assignedExecs []int
	candidates    []int
	counts        []int
	sorted        []int
}

func atLimit(app SchedApp) bool {
	return app.ExecutorLimit > 0 && app.Executors >= app.ExecutorLimit
}

// scheduleApp grants executors to one application and returns how many.
func (s *appScratch) scheduleApp(plan *Plan, free []SchedWorker, live []int, app SchedApp, spreadOut bool) int {
	minCores := app.ExecutorCores
	oneExecutorPerWorker := minCores <= 0
	if oneExecutorPerWorker {
		minCores = 1
	}
	if app.CoresLeft < minCores || atLimit(app) {
		return 0
	}
	mem := app.MemPerExecMB

	s.usable = s.usable[:0]
	for _, i := range live {
		w := &free[i]
		if w.CoresFree < minCores || w.MemFreeMB < mem {
			continue
		}
		if oneExecutorPerWorker && app.ExecutorsOn[w.ID] > 0 || app.Excluded[w.ID] {
			continue
		}
		s.usable = append(s.usable, i)
	}
	if len(s.usable) == 0 {
		return 0
	}
	usable := s.sortByCoresFreeDesc(free)

	n := len(usable)
	s.assignedCores = resetInts(s.assignedCores, n)
	s.assignedExecs = resetInts(s.assignedExecs, n)
	assignedCores, assignedExecs := s.assignedCores, s.assignedExecs
	totalFree := 0
	for _, i := range usable {
		totalFree += free[i].CoresFree
	}
	coresToAssign := min(app.CoresLeft, totalFree)
	totalExecs := 0

	canLaunch := func(pos int) bool {
		w := &free[usable[pos]]
		if coresToAssign < minCores || w.CoresFree-assignedCores[pos] < minCores {
			return false
		}
		if oneExecutorPerWorker && assignedExecs[pos] > 0 {
			return true // growing the worker's one executor
		}
		if w.MemFreeMB-assignedExecs[pos]*mem < mem {
			return false
		}
		return app.ExecutorLimit <= 0 || app.Executors+totalExecs < app.ExecutorLimit
	}

	candidates := s.candidates[:0]
	for pos := range usable {
		if canLaunch(pos) {
			candidates = append(candidates, pos)
		}
	}
	for len(candidates) > 0 && coresToAssign >= minCores {
		for _, pos := range candidates {
			if coresToAssign < minCores {
				break
			}
			for canLaunch(pos) {
				coresToAssign -= minCores
				assignedCores[pos] += minCores
				if !oneExecutorPerWorker || assignedExecs[pos] == 0 {
					assignedExecs[pos]++
					totalExecs++
				}
				if spreadOut {
					break
				}
			}
		}
		if coresToAssign < minCores {
			break
		}
		next := candidates[:0]
		for _, pos := range candidates {
			if canLaunch(pos) {
				next = append(next, pos)
			}
		}
		candidates = next
	}
	s.candidates = candidates

	grants := 0
	for pos, i := range usable {
		if assignedCores[pos] == 0 {
			continue
		}
		w := &free[i]
		if oneExecutorPerWorker {
			plan.Executors = append(plan.Executors, ExecutorGrant{AppID: app.ID, WorkerID: w.ID, Cores: assignedCores[pos], MemMB: mem})
			w.CoresFree -= assignedCores[pos]
			w.MemFreeMB -= mem
			grants++
			continue
		}
		for e := 0; e < assignedExecs[pos]; e++ {
			plan.Executors = append(plan.Executors, ExecutorGrant{AppID: app.ID, WorkerID: w.ID, Cores: minCores, MemMB: mem})
			w.CoresFree -= minCores
			w.MemFreeMB -= mem
			grants++
		}
	}
	return grants
}

// sortByCoresFreeDesc orders s.usable by free cores, most first, keeping the
// input (ID) order among equals. It is a counting sort: free cores are small
// integers and this runs once per application per pass.
func (s *appScratch) sortByCoresFreeDesc(free []SchedWorker) []int {
	maxFree := 0
	for _, i := range s.usable {
		maxFree = max(maxFree, free[i].CoresFree)
	}
	if maxFree > 4*len(s.usable)+1024 { // sparse values: a comparison sort is cheaper
		slices.SortStableFunc(s.usable, func(a, b int) int { return free[b].CoresFree - free[a].CoresFree })
		return s.usable
	}
	s.counts = resetInts(s.counts, maxFree+2)
	for _, i := range s.usable {
		s.counts[maxFree-free[i].CoresFree+1]++
	}
	for c := 1; c < len(s.counts); c++ {
		s.counts[c] += s.counts[c-1]
	}
	s.sorted = resetInts(s.sorted, len(s.usable))
	for _, i := range s.usable {
		k := maxFree - free[i].CoresFree
		s.sorted[s.counts[k]] = i
		s.counts[k]++
	}
	s.usable, s.sorted = s.sorted, s.usable
	return s.usable
}

func resetInts(b []int, n int) []int {
	if cap(b) < n {
		return make([]int, n)
	}
	b = b[:n]
	clear(b)
	return b
}

// compact drops workers without a free core from live, in place.
func compact(free []SchedWorker, live []int) []int {
	out := live[:0]
	for _, i := range live {
		if free[i].CoresFree > 0 {
			out = append(out, i)
		}
	}
	return out
}

// waitingReason explains why app, which has no executor, got none.
func waitingReason(app SchedApp, free []SchedWorker, live []int, largestWorkerCores int) string {
	minCores := max(app.ExecutorCores, 1)
	switch {
	case app.ExecutorCores > 0 && app.ExecutorCores > largestWorkerCores:
		return fmt.Sprintf("each executor needs %d cores but the largest worker has %d", app.ExecutorCores, largestWorkerCores)
	case len(free) == 0:
		return "no ALIVE workers"
	case app.CoresLeft < minCores:
		return fmt.Sprintf("each executor needs %d cores but spark.cores.max leaves the application only %d", minCores, max(app.CoresLeft, 0))
	}
	maxMem, maxCores := 0, 0
	for _, i := range live {
		maxCores = max(maxCores, free[i].CoresFree)
		if free[i].CoresFree >= minCores {
			maxMem = max(maxMem, free[i].MemFreeMB)
		}
	}
	switch {
	case maxCores < minCores:
		return fmt.Sprintf("no ALIVE worker has %d free %s (each executor needs %d)", minCores, plural(minCores, "core", "cores"), minCores)
	case maxMem < app.MemPerExecMB:
		return fmt.Sprintf("each executor needs %d MB but the most free memory on a worker with %d free %s is %d MB",
			app.MemPerExecMB, minCores, plural(minCores, "core", "cores"), maxMem)
	}
	return fmt.Sprintf("no ALIVE worker has %d free %s and %d MB free for an executor", minCores, plural(minCores, "core", "cores"), app.MemPerExecMB)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
