package master

import (
	"fmt"
	"math"
	"testing"

	"reflect"
	"strings"
)

const unlimited = math.MaxInt32

func workersN(n, cores, memMB int) []SchedWorker {
	ws := make([]SchedWorker, n)
	for i := range ws {
		ws[i] = SchedWorker{ID: fmt.Sprintf("worker-%02d", i+1), CoresFree: cores, MemFreeMB: memMB}
	}
	return ws
}

// coresByWorker sums the cores granted to app per worker.
func coresByWorker(p Plan, app string) map[string]int {
	m := map[string]int{}
	for _, g := range p.Executors {
		if g.AppID == app {
			m[g.WorkerID] += g.Cores
		}
	}
	return m
}

func totalCores(p Plan, app string) (cores, execs int) {
	for _, g := range p.Executors {
		if g.AppID == app {
			cores += g.Cores
			execs++
		}
	}
	return cores, execs
}

// TestScheduleSeedExamples covers the five examples of seed 003: a cluster of
// 5 workers with 8 cores each.
func TestScheduleSeedExamples(t *testing.T) {
	tests := []struct {
		name          string
		executorCores int
		totalCores    int // 0 = unlimited
		wantExecs     int
		wantCores     int
		wantReason    string
	}{
		{name: "default", wantExecs: 5, wantCores: 40},
		{name: "executor-cores 10, total 10", executorCores: 10, totalCores: 10,
			wantReason: "each executor needs 10 cores but the largest worker has 8"},
		{name: "executor-cores 10, total 50", executorCores: 10, totalCores: 50,
			wantReason: "each executor needs 10 cores but the largest worker has 8"},
		{name: "executor-cores 50, total 50", executorCores: 50, totalCores: 50,
			wantReason: "each executor needs 50 cores but the largest worker has 8"},
		{name: "executor-cores 50, total 10", executorCores: 50, totalCores: 10,
			wantReason: "each executor needs 50 cores but the largest worker has 8"},
	}
	for _, tt := range tests {
		for _, spread := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/spreadOut=%v", tt.name, spread), func(t *testing.T) {
				left := unlimited
				if tt.totalCores > 0 {
					left = tt.totalCores
				}
				app := SchedApp{ID: "app-1", CoresLeft: left, ExecutorCores: tt.executorCores, MemPerExecMB: 1024}
				p := Schedule(workersN(5, 8, 16384), nil, []SchedApp{app}, spread, 8)
				cores, execs := totalCores(p, "app-1")
				expectEqual(t, tt.wantExecs, execs, "executors")
				expectEqual(t, tt.wantCores, cores, "cores")
				if tt.wantReason == "" {
					if r, ok := p.Waiting["app-1"]; ok {
						t.Errorf("unexpected waiting reason %q", r)
					}
				} else {
					expectEqual(t, tt.wantReason, p.Waiting["app-1"])
				}
			})
		}
	}
}

func TestScheduleExecutors(t *testing.T) {
	tests := []struct {
		name    string
		workers []SchedWorker
		apps    []SchedApp
		spread  bool
		// want: app -> worker -> cores; nil map means "no grants"
		want      map[string]map[string]int
		wantExecs map[string]int
		waiting   map[string]string
	}{
		{
			name:    "spread out, executor cores 2, total 6 over 3 workers",
			workers: workersN(3, 4, 8192),
			apps:    []SchedApp{{ID: "a", CoresLeft: 6, ExecutorCores: 2, MemPerExecMB: 1024}},
			spread:  true,
			want:    map[string]map[string]int{"a": {"worker-01": 2, "worker-02": 2, "worker-03": 2}},
		},
		{
			name:    "consolidate, executor cores 2, total 6 fills first worker",
			workers: workersN(3, 4, 8192),
			apps:    []SchedApp{{ID: "a", CoresLeft: 6, ExecutorCores: 2, MemPerExecMB: 1024}},
			spread:  false,
			want:    map[string]map[string]int{"a": {"worker-01": 4, "worker-02": 2}},
		},
		{
			name:      "spread out, default executor cores, total 5 over 3 workers",
			workers:   workersN(3, 4, 8192),
			apps:      []SchedApp{{ID: "a", CoresLeft: 5, MemPerExecMB: 1024}},
			spread:    true,
			want:      map[string]map[string]int{"a": {"worker-01": 2, "worker-02": 2, "worker-03": 1}},
			wantExecs: map[string]int{"a": 3},
		},
		{
			name:      "consolidate, default executor cores, total 5",
			workers:   workersN(3, 4, 8192),
			apps:      []SchedApp{{ID: "a", CoresLeft: 5, MemPerExecMB: 1024}},
			spread:    false,
			want:      map[string]map[string]int{"a": {"worker-01": 4, "worker-02": 1}},
			wantExecs: map[string]int{"a": 2},
		},
		{
			name:      "several executors share a worker (SPARK-8881)",
			workers:   workersN(1, 8, 8192),
			apps:      []SchedApp{{ID: "a", CoresLeft: unlimited, ExecutorCores: 4, MemPerExecMB: 1024}},
			spread:    true,
			want:      map[string]map[string]int{"a": {"worker-01": 8}},
			wantExecs: map[string]int{"a": 2},
		},
		{
			name:      "memory limits executors per worker",
			workers:   workersN(1, 8, 2048),
			apps:      []SchedApp{{ID: "a", CoresLeft: unlimited, ExecutorCores: 1, MemPerExecMB: 1024}},
			spread:    true,
			want:      map[string]map[string]int{"a": {"worker-01": 2}},
			wantExecs: map[string]int{"a": 2},
		},
		{
			name:    "not enough memory anywhere",
			workers: workersN(2, 8, 512),
			apps:    []SchedApp{{ID: "a", CoresLeft: unlimited, MemPerExecMB: 1024}},
			spread:  true,
			waiting: map[string]string{"a": "each executor needs 1024 MB but the most free memory on a worker with 1 free core is 512 MB"},
		},
		{
			name:      "executor limit caps executors",
			workers:   workersN(4, 4, 8192),
			apps:      []SchedApp{{ID: "a", CoresLeft: unlimited, ExecutorCores: 1, MemPerExecMB: 512, ExecutorLimit: 3, Executors: 1}},
			spread:    true,
			wantExecs: map[string]int{"a": 2},
			want:      map[string]map[string]int{"a": {"worker-01": 1, "worker-02": 1}},
		},
		{
			name:    "executor limit reached: nothing and no waiting reason",
			workers: workersN(2, 4, 8192),
			apps:    []SchedApp{{ID: "a", CoresLeft: unlimited, ExecutorCores: 1, MemPerExecMB: 512, ExecutorLimit: 1, Executors: 1}},
			spread:  true,
		},
		{
			name:    "default executor cores: a worker already running the app's executor gets none",
			workers: workersN(3, 4, 8192),
			apps: []SchedApp{{ID: "a", CoresLeft: unlimited, MemPerExecMB: 1024, Executors: 1,
				ExecutorsOn: map[string]int{"worker-02": 1}}},
			spread:    true,
			want:      map[string]map[string]int{"a": {"worker-01": 4, "worker-03": 4}},
			wantExecs: map[string]int{"a": 2},
		},
		{
			name:    "FIFO: first app takes the cluster, second waits with a reason",
			workers: workersN(2, 4, 8192),
			apps: []SchedApp{
				{ID: "a", CoresLeft: unlimited, MemPerExecMB: 1024},
				{ID: "b", CoresLeft: unlimited, MemPerExecMB: 1024},
			},
			spread:  true,
			want:    map[string]map[string]int{"a": {"worker-01": 4, "worker-02": 4}},
			waiting: map[string]string{"b": "no ALIVE worker has 1 free core (each executor needs 1)"},
		},
		{
			name:    "FIFO: total cores leaves room for the second app",
			workers: workersN(2, 4, 8192),
			apps: []SchedApp{
				{ID: "a", CoresLeft: 4, MemPerExecMB: 1024},
				{ID: "b", CoresLeft: unlimited, MemPerExecMB: 1024},
			},
			spread: true,
			want: map[string]map[string]int{
				"a": {"worker-01": 2, "worker-02": 2},
				"b": {"worker-01": 2, "worker-02": 2},
			},
		},
		{
			name:    "workers are used most free cores first",
			workers: []SchedWorker{{ID: "w1", CoresFree: 2, MemFreeMB: 8192}, {ID: "w2", CoresFree: 6, MemFreeMB: 8192}},
			apps:    []SchedApp{{ID: "a", CoresLeft: 4, ExecutorCores: 2, MemPerExecMB: 1024}},
			spread:  false,
			want:    map[string]map[string]int{"a": {"w2": 4}},
		},
		{
			name:    "no workers",
			apps:    []SchedApp{{ID: "a", CoresLeft: unlimited, MemPerExecMB: 1024}},
			spread:  true,
			waiting: map[string]string{"a": "no ALIVE workers"},
		},
		{
			name:    "executor cores above what spark.cores.max leaves",
			workers: workersN(2, 8, 8192),
			apps:    []SchedApp{{ID: "a", CoresLeft: 2, ExecutorCores: 4, MemPerExecMB: 1024}},
			spread:  true,
			waiting: map[string]string{"a": "each executor needs 4 cores but spark.cores.max leaves the application only 2"},
		},
		{
			name:    "total cores not a multiple of executor cores",
			workers: workersN(3, 8, 8192),
			apps:    []SchedApp{{ID: "a", CoresLeft: 7, ExecutorCores: 2, MemPerExecMB: 1024}},
			spread:  true,
			want:    map[string]map[string]int{"a": {"worker-01": 2, "worker-02": 2, "worker-03": 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			largest := 0
			for _, w := range tt.workers {
				largest = max(largest, w.CoresFree)
			}
			in := append([]SchedWorker(nil), tt.workers...)
			p := Schedule(in, nil, tt.apps, tt.spread, largest)
			expectEqual(t, tt.workers, in, "inputs must not be modified")
			for _, app := range tt.apps {
				want := tt.want[app.ID]
				if want == nil {
					want = map[string]int{}
				}
				expectEqual(t, want, coresByWorker(p, app.ID), "cores per worker of %s", app.ID)
				if n, ok := tt.wantExecs[app.ID]; ok {
					_, execs := totalCores(p, app.ID)
					expectEqual(t, n, execs, "executors of %s", app.ID)
				}
				if app.ExecutorCores > 0 {
					for _, g := range p.Executors {
						if g.AppID == app.ID {
							expectEqual(t, app.ExecutorCores, g.Cores)
						}
					}
				}
			}
			waiting := tt.waiting
			if waiting == nil {
				waiting = map[string]string{}
			}
			expectEqual(t, waiting, p.Waiting)
			assertFits(t, tt.workers, p)
		})
	}
}

// assertFits checks that no worker is granted more than it offered.
func assertFits(t *testing.T, workers []SchedWorker, p Plan) {
	t.Helper()
	cores, mem := map[string]int{}, map[string]int{}
	for _, g := range p.Executors {
		cores[g.WorkerID] += g.Cores
		mem[g.WorkerID] += g.MemMB
	}
	for _, w := range workers {
		if cores[w.ID] > w.CoresFree {
			t.Errorf("%s: granted %d cores, offered %d", w.ID, cores[w.ID], w.CoresFree)
		}
		if mem[w.ID] > w.MemFreeMB {
			t.Errorf("%s: granted %d MB, offered %d", w.ID, mem[w.ID], w.MemFreeMB)
		}
	}
}

func TestScheduleDrivers(t *testing.T) {
	t.Run("round-robin, drivers before executors", func(t *testing.T) {
		ws := workersN(3, 4, 4096)
		drivers := []SchedDriver{{ID: "d1", Cores: 1, MemMB: 1024}, {ID: "d2", Cores: 1, MemMB: 1024}, {ID: "d3", Cores: 1, MemMB: 1024}, {ID: "d4", Cores: 1, MemMB: 1024}}
		apps := []SchedApp{{ID: "a", CoresLeft: unlimited, MemPerExecMB: 1024}}
		p := Schedule(ws, drivers, apps, true, 4)
		expectEqual(t, []DriverPlacement{
			{DriverID: "d1", WorkerID: "worker-01"},
			{DriverID: "d2", WorkerID: "worker-02"},
			{DriverID: "d3", WorkerID: "worker-03"},
			{DriverID: "d4", WorkerID: "worker-01"},
		}, p.Drivers)
		// The executors get what the drivers left.
		expectEqual(t, map[string]int{"worker-01": 2, "worker-02": 3, "worker-03": 3}, coresByWorker(p, "a"))
	})
	t.Run("a driver that fits nowhere waits; later ones still go", func(t *testing.T) {
		ws := workersN(2, 2, 2048)
		drivers := []SchedDriver{{ID: "big", Cores: 4, MemMB: 1024}, {ID: "small", Cores: 1, MemMB: 1024}}
		p := Schedule(ws, drivers, nil, true, 2)
		expectEqual(t, []DriverPlacement{{DriverID: "small", WorkerID: "worker-01"}}, p.Drivers)
	})
	t.Run("memory is checked", func(t *testing.T) {
		ws := []SchedWorker{{ID: "w1", CoresFree: 4, MemFreeMB: 512}, {ID: "w2", CoresFree: 4, MemFreeMB: 4096}}
		p := Schedule(ws, []SchedDriver{{ID: "d", Cores: 1, MemMB: 1024}}, nil, true, 4)
		expectEqual(t, []DriverPlacement{{DriverID: "d", WorkerID: "w2"}}, p.Drivers)
	})
	t.Run("no workers", func(t *testing.T) {
		p := Schedule(nil, []SchedDriver{{ID: "d", Cores: 1, MemMB: 1}}, nil, true, 0)
		if len(p.Drivers) != 0 {
			t.Errorf("drivers placed without workers: %v", p.Drivers)
		}
	})
}

func TestScheduleDeterministic(t *testing.T) {
	ws := workersN(20, 8, 16384)
	apps := make([]SchedApp, 10)
	for i := range apps {
		apps[i] = SchedApp{ID: fmt.Sprintf("app-%d", i), CoresLeft: 12, ExecutorCores: i % 3, MemPerExecMB: 1024}
	}
	first := Schedule(ws, nil, apps, true, 8)
	for range 5 {
		expectEqual(t, first, Schedule(ws, nil, apps, true, 8))
	}
	assertFits(t, ws, first)
}

// BenchmarkSchedule measures one pass with 5,000 workers and 1,000 waiting
// applications (mixed executor sizes; the cluster is far from full).
func BenchmarkSchedule(b *testing.B) {
	ws := workersN(5000, 16, 65536)
	for i := range ws {
		ws[i].ID = fmt.Sprintf("worker-%05d", i)
	}
	apps := make([]SchedApp, 1000)
	for i := range apps {
		apps[i] = SchedApp{ID: fmt.Sprintf("app-%04d", i), CoresLeft: 8 + i%64, ExecutorCores: i % 4, MemPerExecMB: 1024}
	}
	drivers := make([]SchedDriver, 100)
	for i := range drivers {
		drivers[i] = SchedDriver{ID: fmt.Sprintf("driver-%03d", i), Cores: 1, MemMB: 1024}
	}
	b.ReportAllocs()
	for b.Loop() {
		Schedule(ws, drivers, apps, true, 16)
	}
}

// BenchmarkScheduleFullCluster: 1,000 waiting applications that cannot get
// anything because the cluster is full (the common steady state).
func BenchmarkScheduleFullCluster(b *testing.B) {
	ws := workersN(5000, 0, 65536)
	apps := make([]SchedApp, 1000)
	for i := range apps {
		apps[i] = SchedApp{ID: fmt.Sprintf("app-%04d", i), CoresLeft: unlimited, MemPerExecMB: 1024}
	}
	b.ReportAllocs()
	for b.Loop() {
		Schedule(ws, nil, apps, true, 16)
	}
}

// expectEqual reports (without stopping the test) when got differs from want.
// The module's go.sum lacks testify's yaml dependency, so tests use stdlib.
func expectEqual(t testing.TB, want, got any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	msg := ""
	if len(msgAndArgs) > 0 {
		if f, ok := msgAndArgs[0].(string); ok {
			msg = fmt.Sprintf(f, msgAndArgs[1:]...) + ": "
		}
	}
	t.Errorf("%swant %s, got %s", msg, strings.TrimSpace(fmt.Sprintf("%+v", want)), strings.TrimSpace(fmt.Sprintf("%+v", got)))
}
