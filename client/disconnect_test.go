package client

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// A heartbeat to the old master that fails only after the new leader has
// re-attached the application is no disconnection: no DISCONNECTED event
// may follow MASTER_CHANGED (submit printed "lost contact ... waiting for a
// leader" after it had re-attached).
func TestLateHeartbeatFailureAfterMasterChangedIsNoDisconnect(t *testing.T) {
	var armed atomic.Bool
	inflight, release := make(chan struct{}), make(chan struct{})
	var aURL string
	r := mux.NewRouter()
	r.Handle(protocol.PathLeader, protocol.Handle(func(*http.Request) (any, error) {
		return protocol.LeaderInfo{ID: "a", URL: aURL, State: protocol.MasterAlive, Epoch: 1, LeaderURL: aURL}, nil
	})).Methods(http.MethodGet)
	r.Handle(protocol.PathRegisterApp, protocol.Handle(func(*http.Request) (any, error) {
		return protocol.RegisteredApplication{Stamp: protocol.Stamp{Epoch: 1, MasterURL: aURL}, AppID: "app-1"}, nil
	})).Methods(http.MethodPost)
	r.Handle(protocol.PathAppHeartbeat, protocol.Handle(func(req *http.Request) (any, error) {
		if armed.CompareAndSwap(true, false) {
			close(inflight)
			select {
			case <-release:
			case <-req.Context().Done():
			}
			return nil, &protocol.StatusError{Code: http.StatusInternalServerError, Message: "old master going away"}
		}
		return protocol.AppHeartbeatResponse{Stamp: protocol.Stamp{Epoch: 1, MasterURL: aURL}, State: protocol.AppRunning}, nil
	})).Methods(http.MethodPost)
	a := httptest.NewServer(r)
	t.Cleanup(a.Close)
	aURL = "spark://" + strings.TrimPrefix(a.URL, "http://")
	b := newFakeMaster(t, protocol.MasterStandby, 1)

	var log eventLog
	c := newTestClient(t, []string{aURL, b.url}, &log)
	id, err := c.Register(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, aURL, c.Master())

	armed.Store(true)
	select {
	case <-inflight:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat reached the old master")
	}
	b.set(protocol.MasterAlive, 2, nil)
	b.mu.Lock()
	b.apps[id] = c.URL()
	b.mu.Unlock()
	require.NoError(t, b.push(c.URL(), protocol.PathAppMasterChanged, protocol.MasterChanged{Stamp: b.stamp()}))
	close(release)

	eventually(t, 5*time.Second, "a heartbeat to the new leader", func() bool { return b.count(protocol.PathAppHeartbeat) > 0 })
	// A sentinel: once it is delivered, every earlier event is too.
	require.NoError(t, b.push(c.URL(), protocol.PathExecutorAdded, protocol.ExecutorAdded{Stamp: b.stamp(), ExecutorID: 7, WorkerID: "w", HostPort: "h:1", Cores: 1}))
	eventually(t, 5*time.Second, "the sentinel event", func() bool { _, ok := log.find(EventExecutorAdded); return ok })

	kinds := log.kinds()
	assert.Contains(t, kinds, EventMasterChanged)
	assert.NotContains(t, kinds, EventDisconnected, "events: %v", kinds)
	assert.Equal(t, b.url, c.Master())
}
