package executor

import (
	"path/filepath"
	"testing"

	"github.com/sparkd/sparkd/task"
)

// BenchmarkNoopTasks runs b.N no-op tasks (`true`) with committed outputs
// through an in-process driver and one 2-core backend: the runtime's own
// cost per task, the process spawn included.
func BenchmarkNoopTasks(b *testing.B) {
	b.Run("output", func(b *testing.B) { benchNoop(b, filepath.Join(b.TempDir(), "out")) })
	b.Run("no-output", func(b *testing.B) { benchNoop(b, "") })
}

func benchNoop(b *testing.B, out string) {
	cmds := make([]string, b.N)
	for i := range cmds {
		cmds[i] = "true"
	}
	d, err := task.NewDriver(task.DriverConfig{Commands: cmds, OutputDir: out})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.AllowApp("app-1")
	bk, err := New(Config{DriverURL: d.URL(), AppID: "app-1", ExecutorID: "0", Host: "127.0.0.1", Cores: 2, WorkDir: b.TempDir(),
		Stdout: &syncBuf{}, Logger: logger(&syncBuf{})})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- bk.Run(b.Context()) }()
	res := d.Run(b.Context())
	b.StopTimer()
	if !res.OK {
		b.Fatalf("%+v", res)
	}
	<-done
	b.ReportMetric(float64(b.N)/res.Elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(res.Overhead.Microseconds()), "overhead-µs/task")
}
