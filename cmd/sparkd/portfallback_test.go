package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// freePorts returns n ports the OS has just handed out (and released).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(hostport, "spark://"), "http://"))
	require.NoError(t, err, hostport)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// Two masters on one host with the same ports (how HA is tried locally):
// both start; the second logs Spark's line for each busy port and binds
// the next ones, and its log, UI, /json and leader hint show those.
func TestTwoMastersOnOneHostFallBackToTheNextPorts(t *testing.T) {
	ports := freePorts(t, 3)
	a, b, r := ports[0], ports[1], ports[2]
	env := []string{"SPARK_CONF_DIR=" + t.TempDir(), fmt.Sprintf("SPARK_MASTER_OPTS=-Dspark.master.rest.port=%d", r)}
	args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(a), "--webui-port", strconv.Itoa(b)}

	first := startMasterProc(t, env, args...)
	first.waitLine(t, `I have been elected leader! New state: ALIVE`)
	require.Equal(t, fmt.Sprintf("spark://127.0.0.1:%d", a), first.waitLine(t, `Starting Spark master at (spark://\S+)`)[1])

	second := startMasterProc(t, env, args...)
	url := second.waitLine(t, `Starting Spark master at (spark://\S+)`)[1]
	second.waitLine(t, `I have been elected leader! New state: ALIVE`)
	for _, s := range []struct {
		name string
		port int
	}{{"sparkMaster", a}, {"MasterUI", b}, {"RestSubmissionServer", r}} {
		assert.Contains(t, second.text(), fmt.Sprintf("WARN Master: Service '%s' could not bind on port %d. Attempting port %d.", s.name, s.port, s.port+1))
	}
	rpc := portOf(t, url)
	assert.Greater(t, rpc, a)
	assert.LessOrEqual(t, rpc, a+16)

	cli := protocol.NewClient(2*time.Second, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var li protocol.LeaderInfo
	require.NoError(t, cli.Call(ctx, http.MethodGet, url, protocol.PathLeader, nil, &li))
	assert.Equal(t, url, li.LeaderURL, "the leader hint carries the bound RPC port")
	ui, rest := portOf(t, li.LeaderWebUI), portOf(t, li.LeaderREST)
	assert.Greater(t, ui, b)
	assert.LessOrEqual(t, ui, b+16)
	assert.Greater(t, rest, r)
	assert.LessOrEqual(t, rest, r+16)
	assert.Contains(t, second.text(), fmt.Sprintf("Started REST server for submitting applications on spark://127.0.0.1:%d", rest))

	get := func(path string) string {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, li.LeaderWebUI+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		return string(body)
	}
	var js struct {
		URL string `json:"url"`
	}
	require.NoError(t, json.Unmarshal([]byte(get("/json")), &js))
	assert.Equal(t, url, js.URL)
	page := get("/")
	assert.Contains(t, page, "Spark Master at "+url)
	assert.Contains(t, page, fmt.Sprintf("spark://127.0.0.1:%d", rest), "REST URL")
}
