package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/recovery/zkrecovery"
	"github.com/sparkd/sparkd/zkutil"
)

// Benchmarks of the master core. They live here, not in package master,
// because they wire the real ZooKeeper store (master must not import it).
//
//	go test ./cmd/sparkd -run '^$' -bench 'BenchmarkMaster' -benchtime 2000x

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// benchMaster starts an in-process master on loopback with the given
// recovery implementation and waits until it is ALIVE.
func benchMaster(b *testing.B, el recovery.Elector, st recovery.Store) *master.Master {
	b.Helper()
	cfg := master.DefaultConfig()
	cfg.Host, cfg.Port, cfg.WebUIPort, cfg.RESTEnabled = "127.0.0.1", 0, -1, false
	cfg.RPCTimeout = 2 * time.Second
	m, err := master.New(cfg, el, st, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			b.Error("master did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for m.View().Status != protocol.MasterAlive {
		if time.Now().After(deadline) {
			b.Fatal("master never became ALIVE")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m
}

func zkRecovery(b *testing.B) (recovery.Elector, recovery.Store) {
	b.Helper()
	if _, _, err := zktest.Classpath(); err != nil {
		b.Skipf("ZooKeeper not installed: %v", err)
	}
	ens := zktest.Start(b, 3)
	conn, err := zkutil.Connect(context.Background(), zkutil.Config{Connect: ens.Connect(), SessionTimeout: 6 * time.Second, Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(conn.Close)
	el, st, err := zkrecovery.New(conn, "/bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), quietLog())
	if err != nil {
		b.Fatal(err)
	}
	return el, st
}

// registerWorkers registers n workers with distinct ids and addresses over
// HTTP, conc at a time, and returns how long it took.
func registerWorkers(b *testing.B, m *master.Master, from, n, conc int) time.Duration {
	cli := protocol.NewClient(10*time.Second, "")
	cli.HTTP.Transport.(*http.Transport).MaxIdleConnsPerHost = conc
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= from+n {
					return
				}
				port := 10000 + i%50000
				req := protocol.RegisterWorker{ID: fmt.Sprintf("worker-20261120000000-10.%d.%d.%d-%d", i>>16&255, i>>8&255, i&255, port),
					Host: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: port, URL: "http://127.0.0.1:1",
					WebUIURL: "http://127.0.0.1:1", Cores: 8, MemoryMB: 16384}
				if err := cli.Call(context.Background(), http.MethodPost, m.Addr(), protocol.PathRegisterWorker, req, nil); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("register: %v", err)
	}
	return time.Since(start)
}

// BenchmarkMasterRegisterWorker measures acknowledged worker registrations
// per second (each persisted before the answer), with 16 concurrent
// registrants, for the NONE store and a 3-node ZooKeeper ensemble.
func BenchmarkMasterRegisterWorker(b *testing.B) {
	for _, mode := range []string{"NONE", "ZOOKEEPER"} {
		b.Run(mode, func(b *testing.B) {
			var el recovery.Elector
			var st recovery.Store
			if mode == "NONE" {
				el, st = recovery.NewNone()
			} else {
				el, st = zkRecovery(b)
			}
			m := benchMaster(b, el, st)
			b.ResetTimer()
			took := registerWorkers(b, m, 0, b.N, 16)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/took.Seconds(), "regs/s")
			if got := len(m.View().Workers); got != b.N {
				b.Fatalf("%d workers registered, want %d", got, b.N)
			}
		})
	}
}

// BenchmarkMasterMemory reports the master's heap in use (and the process's
// RSS) holding 5,000 workers and 10,000 applications, each application with
// one executor. The registrants run in this process too; their share is
// small next to the registries.
func BenchmarkMasterMemory(b *testing.B) {
	const workers, apps = 5000, 10000
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		el, st := recovery.NewNone()
		m := benchMaster(b, el, st)
		registerWorkers(b, m, 0, workers, 16)
		cli := protocol.NewClient(10*time.Second, "")
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= apps {
						return
					}
					req := protocol.RegisterApplication{ClientURL: fmt.Sprintf("http://127.0.0.1:1/app/%d", i), App: protocol.AppDescription{
						Name: "app-" + strconv.Itoa(i), Command: []string{"/bin/executor", "--app", strconv.Itoa(i)},
						ExecutorCores: 1, MaxCores: 1, ExecutorMemMB: 512}}
					if err := cli.Call(context.Background(), http.MethodPost, m.Addr(), protocol.PathRegisterApp, req, nil); err != nil {
						b.Errorf("register app: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		deadline := time.Now().Add(60 * time.Second)
		for {
			v := m.View()
			used := 0
			for _, w := range v.Workers {
				used += w.CoresUsed
			}
			if len(v.Workers) == workers && len(v.ActiveApps) == apps && used == apps {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not settled: %d workers, %d apps, %d cores used", len(v.Workers), len(v.ActiveApps), used)
			}
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-delta-MiB")
		if rss := rssMiB(); rss > 0 {
			b.ReportMetric(rss, "rss-MiB")
		}
	}
}

// rssMiB reads VmRSS from /proc/self/status (0 where unavailable).
func rssMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
