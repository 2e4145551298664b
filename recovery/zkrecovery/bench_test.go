package zkrecovery

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/recovery"
)

const benchRecords = 10000

// kbApp is an application record of about 1 KB encoded.
func kbApp(id string) recovery.AppRecord {
	r := app(id)
	r.Desc.Name = strings.Repeat("n", 1024-200)
	return r
}

// populate writes n ~1 KB records through the leader's store, concurrently.
func populate(b *testing.B, st *Store, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := st.PutApp(context.Background(), kbApp(fmt.Sprintf("app-%05d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
}

func rawConn(b *testing.B, server string) *zk.Conn {
	b.Helper()
	c, events, err := zk.Connect([]string{server}, 10*time.Second, zk.WithLogger(log.New(io.Discard, "", 0)))
	require.NoError(b, err)
	b.Cleanup(c.Close)
	deadline := time.After(30 * time.Second)
	for c.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			b.Fatal("raw go-zookeeper connection: no session")
		}
	}
	return c
}

// rawRead gets every child of dir with conc Gets in flight (0: all at once).
func rawRead(c *zk.Conn, dir string, conc int) (int, error) {
	names, _, err := c.Children(dir)
	if err != nil {
		return 0, err
	}
	if conc <= 0 {
		conc = len(names)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	var bytes atomic.Int64
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(names)) {
					return
				}
				data, _, err := c.Get(dir + "/" + names[i])
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				bytes.Add(int64(len(data)))
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return len(names), nil
}

// BenchmarkRead reads 10,000 records of ~1 KB: the Store's pipelined Read,
// a naive one-Get-at-a-time Read, and raw go-zookeeper Gets of the same
// znodes (the physical limit).
func BenchmarkRead(b *testing.B) {
	ens := zktest.Start(b, 1)
	server := ens.Servers()[0].Addr()
	dir := testDir()
	m := startMaster(b, server, dir, "bench")
	waitLeader(b, 10*time.Second, m)
	start := time.Now()
	populate(b, m.st, benchRecords)
	b.Logf("populated %d records in %v", benchRecords, time.Since(start))
	// Warm up ZooKeeper's JIT so that the first sub-benchmark is not penalized.
	raw := rawConn(b, server)
	for i := 0; i < 3; i++ {
		_, err := rawRead(raw, dir+"/master_status", 0)
		require.NoError(b, err)
	}

	readWith := func(st *Store) func(b *testing.B) {
		return func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s, err := st.Read(context.Background())
				require.NoError(b, err)
				require.Len(b, s.Apps, benchRecords)
			}
			b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
		}
	}
	b.Run(fmt.Sprintf("store-pipelined-%d", DefaultReadConcurrency), readWith(m.st))
	for _, conc := range []int{16, 1024} {
		_, st, err := New(m.conn, dir, testLog(b, "reader"), WithReadConcurrency(conc))
		require.NoError(b, err)
		b.Run(fmt.Sprintf("store-pipelined-%d", conc), readWith(st))
	}
	_, naive, err := New(m.conn, dir, testLog(b, "naive"), WithReadConcurrency(1))
	require.NoError(b, err)
	b.Run("store-naive-1", readWith(naive))

	for _, conc := range []int{DefaultReadConcurrency, 0} {
		name := fmt.Sprintf("raw-gozk-%d", conc)
		if conc == 0 {
			name = "raw-gozk-all"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n, err := rawRead(raw, dir+"/master_status", conc)
				require.NoError(b, err)
				require.Equal(b, benchRecords, n)
			}
			b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkWrite compares fenced writes (Multi with the epoch and candidate
// checks) with raw single-op writes of the same ~1 KB records, one at a time
// and with 32 writers.
func BenchmarkWrite(b *testing.B) {
	ens := zktest.Start(b, 1)
	server := ens.Servers()[0].Addr()
	dir := testDir()
	m := startMaster(b, server, dir, "bench")
	waitLeader(b, 10*time.Second, m)
	ctx := context.Background()
	data := func() []byte {
		_, d, err := recovery.Encode(kbApp("x"))
		require.NoError(b, err)
		return d
	}()
	require.NoError(b, m.conn.EnsurePath(ctx, dir+"/raw"))
	var seq atomic.Int64
	id := func() string { return fmt.Sprintf("w%09d", seq.Add(1)) }

	b.Run("fenced-create", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			require.NoError(b, m.st.PutApp(ctx, kbApp(id())))
		}
	})
	b.Run("raw-create", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, err := m.conn.Create(ctx, dir+"/raw/app_"+id(), data, 0)
			require.NoError(b, err)
		}
	})
	require.NoError(b, m.st.PutApp(ctx, kbApp("upd")))
	_, err := m.conn.Create(ctx, dir+"/raw/app_upd", data, 0)
	require.NoError(b, err)
	b.Run("fenced-update", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			require.NoError(b, m.st.PutApp(ctx, kbApp("upd")))
		}
	})
	b.Run("raw-update", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, err := m.conn.Set(ctx, dir+"/raw/app_upd", data, -1)
			require.NoError(b, err)
		}
	})
	b.Run("fenced-create-32writers", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := m.st.PutApp(ctx, kbApp(id())); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw-create-32writers", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.conn.Create(ctx, dir+"/raw/app_"+id(), data, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkResignFailover measures a graceful hand-off: from Resign on the
// leader to OnElected on the standby.
func BenchmarkResignFailover(b *testing.B) {
	ens := zktest.Start(b, 1)
	addr := ens.Connect()
	dir := testDir()
	var total time.Duration
	standby := startMaster(b, addr, dir, "m0")
	waitLeader(b, 10*time.Second, standby)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		leader := standby
		standby = startMaster(b, addr, dir, fmt.Sprintf("m%d", i+1))
		waitFor(b, 10*time.Second, "standby ready", func() bool { l, ok := standby.el.Leader(); return ok && l.ID == leader.id })
		b.StartTimer()
		start := time.Now()
		require.NoError(b, leader.el.Resign(context.Background()))
		waitFor(b, 10*time.Second, "successor", func() bool { ok, _ := standby.isLeading(); return ok })
		b.StopTimer()
		ev, _ := standby.lastEvent("elected")
		total += ev.at.Sub(start)
		leader.stop()
		leader.conn.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/handoff")
}

// BenchmarkCrashFailover measures an unplanned failover: the leader's
// process vanishes without closing its session (its connection is cut), so
// the standby waits for the session to expire.
func BenchmarkCrashFailover(b *testing.B) {
	ens := zktest.Start(b, 1)
	server := ens.Servers()[0].Addr()
	dir := testDir()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		proxy := zktest.NewProxy(b, server)
		leader := startMaster(b, proxy.Addr(), dir, fmt.Sprintf("l%d", i))
		waitLeader(b, 10*time.Second, leader)
		standby := startMaster(b, server, dir, fmt.Sprintf("s%d", i))
		waitFor(b, 10*time.Second, "standby ready", func() bool { l, ok := standby.el.Leader(); return ok && l.ID == leader.id })
		b.StartTimer()
		start := time.Now()
		proxy.Cut()
		waitFor(b, 4*testSession+5*time.Second, "successor", func() bool { ok, _ := standby.isLeading(); return ok })
		b.StopTimer()
		ev, _ := standby.lastEvent("elected")
		total += ev.at.Sub(start)
		leader.stop()
		standby.stop()
		proxy.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/failover")
	b.ReportMetric(float64(testSession.Milliseconds()), "ms-session-timeout")
}
