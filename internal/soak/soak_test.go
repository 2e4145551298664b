// Package soak measures what a long-running master costs: a standby that
// stays standby for a long time (its goroutines, its ZooKeeper watches beyond
// one per stored record, RSS and open fds must stay flat), and a leader under a steady stream of
// registrations. Real bin/sparkd processes, a real ZooKeeper, a chroot in
// spark.deploy.zookeeper.url (the case that used to leak a goroutine per
// watch).
//
// `go test ./internal/soak` runs a short smoke soak that checks flatness;
// `make soak` (SPARKD_SOAK=10m by default) runs a long one and prints the
// figures every SPARKD_SOAK_EVERY (default 1m).
package soak

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/testbin"
	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/zkutil"
)

type proc struct {
	cmd          *exec.Cmd
	rpc, ui      int
	logPath, url string
}

func startMaster(t *testing.T, bin, confDir, logDir string, name string) *proc {
	t.Helper()
	ports, err := cluster.FreePorts(3)
	require.NoError(t, err)
	p := &proc{rpc: ports[0], ui: ports[1], logPath: filepath.Join(logDir, name+".log")}
	p.url = fmt.Sprintf("127.0.0.1:%d", p.rpc)
	f, err := os.Create(p.logPath)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	p.cmd = exec.Command(bin, "master", "--host", "127.0.0.1", "--port", strconv.Itoa(p.rpc), "--webui-port", strconv.Itoa(p.ui))
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARK_") {
			env = append(env, kv)
		}
	}
	p.cmd.Env = append(env, "SPARK_CONF_DIR="+confDir, "SPARK_HOME="+filepath.Dir(confDir),
		"SPARK_MASTER_OPTS=-Dspark.master.rest.port="+strconv.Itoa(ports[2]))
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Wait()
	})
	return p
}

// metric reads one unlabelled value from the process's /metrics.
func metrics(p *proc) (map[string]float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.ui))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out, sc.Err()
}

func watches(t *testing.T, server string) int {
	out, err := zktest.FourLetterWord(server, "wchs", 2*time.Second)
	require.NoError(t, err)
	m := regexp.MustCompile(`Total watches:\s*(\d+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "wchs: %q", out)
	n, _ := strconv.Atoi(m[1])
	return n
}

func state(p *proc) (protocol.LeaderInfo, error) {
	var li protocol.LeaderInfo
	err := protocol.NewClient(2*time.Second, "").Call(context.Background(), http.MethodGet, p.url, protocol.PathLeader, nil, &li)
	return li, err
}

type sample struct {
	at                        time.Duration
	goroutines, rssMiB, fds   float64
	watches, records          int
	leaderGoroutines, leadRSS float64
	registered                int64
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: starts ZooKeeper and sparkd processes")
	}
	cluster.RequireDaemons(t)
	total, every := 8*time.Second, 2*time.Second
	long := false
	if v := os.Getenv("SPARKD_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "SPARKD_SOAK")
		total, every, long = d, time.Minute, true
		if v := os.Getenv("SPARKD_SOAK_EVERY"); v != "" {
			every, err = time.ParseDuration(v)
			require.NoError(t, err, "SPARKD_SOAK_EVERY")
		}
	}
	bin := testbin.Path(t)
	zk := zktest.Start(t, 1)
	dir := t.TempDir()
	confDir := filepath.Join(dir, "conf")
	require.NoError(t, os.MkdirAll(confDir, 0o755))
	env := fmt.Sprintf("SPARK_DAEMON_JAVA_OPTS=\"-Dspark.deploy.recoveryMode=ZOOKEEPER -Dspark.deploy.zookeeper.url=%s/soak/chroot -Dspark.deploy.zookeeper.dir=/sparkd -Dspark.deploy.zookeeper.sessionTimeout=2000\"\nexport SPARK_DAEMON_JAVA_OPTS\n", zk.Connect())
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "spark-env.sh"), []byte(env), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "spark-defaults.conf"), []byte("spark.worker.timeout 10s\n"), 0o644))

	leader := startMaster(t, bin, confDir, dir, "leader")
	require.Eventually(t, func() bool { li, err := state(leader); return err == nil && li.State == protocol.MasterAlive },
		30*time.Second, 50*time.Millisecond, "the first master leads")
	standby := startMaster(t, bin, confDir, dir, "standby")
	require.Eventually(t, func() bool {
		li, err := state(standby)
		return err == nil && li.State == protocol.MasterStandby && li.LeaderURL != ""
	}, 30*time.Second, 50*time.Millisecond, "the second master stands by behind the first")

	// A steady stream of registrations at the leader: worker records
	// persisted, then (they never heartbeat) removed after the worker
	// timeout, so the store and the leader's registries churn.
	ctx, cancel := context.WithCancel(context.Background())
	var regs atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cli := protocol.NewClient(5*time.Second, "")
		tk := time.NewTicker(20 * time.Millisecond) // 50 registrations a second
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			id := fmt.Sprintf("worker-soak-%d", i)
			err := cli.Call(ctx, http.MethodPost, leader.url, protocol.PathRegisterWorker, protocol.RegisterWorker{
				ID: id, Host: "127.0.0.1", Port: 10000 + i%50000, URL: "http://127.0.0.1:1", Cores: 1, MemoryMB: 1024}, nil)
			if err == nil {
				regs.Add(1)
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	server := zk.Servers()[0].Addr()
	zctx, zcancel := context.WithTimeout(context.Background(), 30*time.Second)
	zc, err := zkutil.Connect(zctx, zkutil.Config{Connect: zk.Connect() + "/soak/chroot", SessionTimeout: 4 * time.Second, CallTimeout: 2 * time.Second})
	zcancel()
	require.NoError(t, err)
	defer zc.Close()
	records := func() int {
		names, _, err := zc.Children(context.Background(), "/sparkd/master_status")
		if err != nil {
			return 0
		}
		return len(names)
	}
	take := func(at time.Duration) sample {
		s := sample{at: at, records: records(), watches: watches(t, server), registered: regs.Load()}
		if m, err := metrics(standby); assert.NoError(t, err) {
			s.goroutines, s.rssMiB, s.fds = m["go_goroutines"], m["process_resident_memory_bytes"]/(1<<20), m["process_open_fds"]
		}
		if m, err := metrics(leader); assert.NoError(t, err) {
			s.leaderGoroutines, s.leadRSS = m["go_goroutines"], m["process_resident_memory_bytes"]/(1<<20)
		}
		return s
	}
	time.Sleep(time.Second) // let the standby arm its watches
	start := time.Now()
	samples := []sample{take(0)}
	for time.Since(start) < total {
		time.Sleep(every)
		samples = append(samples, take(time.Since(start).Round(time.Second)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| after | standby goroutines | standby RSS MiB | standby fds | ZooKeeper watches | stored records | leader goroutines | leader RSS MiB | registrations |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.0f | %d | %d | %.0f | %.1f | %d |\n", s.at, s.goroutines, s.rssMiB, s.fds, s.watches, s.records, s.leaderGoroutines, s.leadRSS, s.registered)
	}
	t.Log(b.String())
	first, last := samples[0], samples[len(samples)-1]
	// The standby's mirror watches each stored record once (mirror.go):
	// beyond that, nothing accumulates. The two counts are read a moment
	// apart while 50 records a second come and go, hence the slack.
	assert.InDelta(t, first.watches-first.records, last.watches-last.records, 25, "ZooKeeper watches beyond one per stored record grew")
	assert.LessOrEqual(t, last.goroutines, first.goroutines+3, "the standby's goroutines grew")
	assert.Positive(t, last.registered, "no registration got through")
	if long {
		assert.Less(t, last.rssMiB, first.rssMiB*1.5+10, "the standby's RSS grew")
	}
}
