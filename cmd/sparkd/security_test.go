package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/internal/testcerts"
	"github.com/sparkd/sparkd/master"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/worker"
)

// secureCluster is an in-process master and worker with authentication on.
type secureCluster struct {
	m       *master.Master
	w       *worker.Worker
	workDir string
}

func startSecureCluster(t *testing.T, secret string, tl *protocol.TLS) *secureCluster {
	t.Helper()
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	entry := logrus.NewEntry(log)
	mcfg := master.DefaultConfig()
	mcfg.Host, mcfg.Port, mcfg.WebUIPort, mcfg.RESTEnabled = "127.0.0.1", 0, -1, false
	mcfg.AuthSecret = secret
	mcfg.RPCTLS = tl
	el, st := recovery.NewNone()
	m, err := master.New(mcfg, el, st, entry)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })

	wcfg := worker.Defaults()
	wcfg.Masters = []string{m.URL()}
	wcfg.Host, wcfg.Port, wcfg.WebUIPort = "127.0.0.1", 0, 0
	wcfg.Cores, wcfg.MemoryMB, wcfg.WorkDir = 2, 1024, t.TempDir()
	wcfg.AuthSecret = secret
	wcfg.RPCTLS = tl
	wcfg.KillGracePeriod = 500 * time.Millisecond
	wcfg.RegistrationInitialInterval, wcfg.RegistrationMaxInterval = 100*time.Millisecond, 500*time.Millisecond
	w, err := worker.New(wcfg, entry)
	require.NoError(t, err)
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("cluster did not stop within 30s")
		}
	})
	waitUntil(t, 20*time.Second, "worker registered", func() bool {
		_, ok := w.Master()
		return ok
	})
	return &secureCluster{m: m, w: w, workDir: wcfg.WorkDir}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With spark.authenticate on, the whole path works with role keys: a
// worker registers and heartbeats, a driver holding only an application
// credential registers and gets an executor, the master's pushes reach the
// driver (signed with its key), and the executor's environment holds the
// application credential, never the cluster secret.
func TestSecureClusterEndToEnd(t *testing.T) {
	const secret = "e2e-cluster-secret"
	t.Setenv("SPARK_AUTHENTICATE_SECRET", secret) // as a worker started from spark-env.sh would have it
	c := startSecureCluster(t, secret, nil)

	cred := driverCredential(secret)
	require.True(t, protocol.IsAppCredential(cred))
	assert.NotContains(t, cred, secret)

	var mu sync.Mutex
	var events []client.Event
	app := protocol.AppDescription{Name: "secure", ExecutorCores: 1, ExecutorMemMB: 64,
		Command: []string{"sh", "-c", "env > env.out && mv env.out env.txt && sleep 30"}}
	cl, err := client.New(client.Config{Masters: []string{c.m.URL()}, App: app, Secret: cred}, func(e client.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cl.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	appID, err := cl.Register(ctx)
	require.NoError(t, err)
	waitUntil(t, 20*time.Second, "ExecutorAdded pushed to the driver", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Kind == client.EventExecutorAdded {
				return true
			}
		}
		return false
	})
	matches, _ := filepath.Glob(filepath.Join(c.workDir, appID, "*", "env.txt"))
	waitUntil(t, 20*time.Second, "executor environment written", func() bool {
		matches, _ = filepath.Glob(filepath.Join(c.workDir, appID, "*", "env.txt"))
		return len(matches) > 0
	})
	data, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	assert.NotContains(t, string(data), secret, "the cluster secret never reaches an executor")
	assert.Contains(t, string(data), "SPARK_AUTHENTICATE_SECRET="+cl.Credential()+"\n", "the executor shares its driver's credential")
	assert.Equal(t, 1, strings.Count(string(data), "SPARK_AUTHENTICATE_SECRET="))

	// The master's last push (ApplicationRemoved, sent after the app left
	// the registry) is signed with the application's key and accepted.
	require.NoError(t, c.m.KillApp(ctx, appID))
	waitUntil(t, 20*time.Second, "ApplicationRemoved pushed to the driver", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Kind == client.EventApplicationRemoved {
				return true
			}
		}
		return false
	})
}

// With spark.ssl.rpc on (mutual TLS), the cluster works over TLS and a
// plaintext or certificate-less peer is refused, even with the right keys.
func TestSecureClusterOverTLS(t *testing.T) {
	const secret = "tls-cluster-secret"
	certs := testcerts.Write(t, "node")
	n := certs["node"]
	tl, err := protocol.LoadTLS(protocol.TLSFiles{CertChain: n.Cert, PrivateKey: n.Key, TrustStore: n.CA, NeedClientAuth: true})
	require.NoError(t, err)
	c := startSecureCluster(t, secret, tl) // the worker registered over mutual TLS
	assert.True(t, strings.HasPrefix(c.w.URL(), "https://"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plain := operatorClient(5*time.Second, secret)
	err = plain.Call(ctx, http.MethodGet, c.m.URL(), protocol.PathLeader, nil, nil)
	require.Error(t, err, "plaintext is refused")
	assert.Contains(t, err.Error(), "HTTPS server")
	err = plain.Call(ctx, http.MethodPost, c.w.URL(), protocol.PathLaunchExecutor, protocol.LaunchExecutor{}, nil)
	require.Error(t, err, "plaintext to the worker is refused")

	noCert, err := protocol.LoadClientTLS(protocol.TLSFiles{TrustStore: n.CA})
	require.NoError(t, err)
	stranger := operatorClient(5*time.Second, secret)
	noCert.Apply(stranger)
	require.Error(t, stranger.Call(ctx, http.MethodGet, c.m.URL(), protocol.PathLeader, nil, nil), "no client certificate")

	member := operatorClient(5*time.Second, secret)
	tl.Apply(member)
	var li protocol.LeaderInfo
	require.NoError(t, member.Call(ctx, http.MethodGet, c.m.URL(), protocol.PathLeader, nil, &li))
	assert.Equal(t, protocol.MasterAlive, li.State)
}

// submit signs a bearer JWS for a REST server behind the JWSFilter when its
// configuration has the filter and the key, and nothing otherwise.
func TestSubmitRESTBearer(t *testing.T) {
	const key = "c3BhcmtkLXRlc3Qta2V5LW9mLWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmc"
	o := &submitOptions{props: map[string]string{
		"spark.master.rest.filters":                           protocol.JWSFilterClass,
		"spark.org.apache.spark.ui.JWSFilter.param.secretKey": key,
	}}
	b := restBearer(o)
	require.True(t, strings.HasPrefix(b, "Bearer "), b)
	v, err := protocol.NewJWSVerifier(key)
	require.NoError(t, err)
	assert.NoError(t, v.Verify(strings.TrimPrefix(b, "Bearer ")))
	assert.Empty(t, restBearer(&submitOptions{props: map[string]string{"spark.org.apache.spark.ui.JWSFilter.param.secretKey": key}}))
}

// sparkd status talks to a TLS cluster with --tls-trust-store (and a
// certificate for mutual TLS).
func TestStatusOverTLS(t *testing.T) {
	certs := testcerts.Write(t, "node")
	n := certs["node"]
	tl, err := protocol.LoadTLS(protocol.TLSFiles{CertChain: n.Cert, PrivateKey: n.Key, TrustStore: n.CA, NeedClientAuth: true})
	require.NoError(t, err)
	c := startSecureCluster(t, "status-secret", tl)
	code, stdout, stderr := runCmd(t, status, "--master", c.m.URL(), "--secret", "status-secret",
		"--tls-trust-store", n.CA, "--tls-cert", n.Cert, "--tls-key", n.Key)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "ALIVE")
}
