package worker

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func occupied(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func portOfURL(t *testing.T, s string) int {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return p
}

// A second worker on the same ports binds the next free ones, as Spark's
// sparkWorker and WorkerUI services do, and advertises them.
func TestWorkerBusyPortsFallBackLikeSpark(t *testing.T) {
	p, q := occupied(t), occupied(t)
	cfg := testConfig(t, "127.0.0.1:1")
	cfg.Port, cfg.WebUIPort, cfg.MaxPortRetries = p, q, 16
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	w, err := New(cfg, logrus.NewEntry(l))
	require.NoError(t, err, "busy ports must fall back")
	defer w.rpcLn.Close()
	defer w.uiLn.Close()

	got, gotUI := portOfURL(t, w.URL()), portOfURL(t, w.WebUIURL())
	assert.Greater(t, got, p)
	assert.LessOrEqual(t, got, p+16)
	assert.Greater(t, gotUI, q)
	assert.LessOrEqual(t, gotUI, q+16)
	assert.True(t, strings.HasSuffix(w.ID(), "-"+strconv.Itoa(got)), "the id names the bound port: %s", w.ID())
	assert.Contains(t, buf.String(), fmt.Sprintf("Service 'sparkWorker' could not bind on port %d. Attempting port %d.", p, p+1))
	assert.Contains(t, buf.String(), fmt.Sprintf("Service 'WorkerUI' could not bind on port %d. Attempting port %d.", q, q+1))

	cfg.MaxPortRetries = 0
	_, err = New(cfg, logrus.NewEntry(l))
	assert.ErrorContains(t, err, "address already in use", "spark.port.maxRetries=0: no retry")
}
