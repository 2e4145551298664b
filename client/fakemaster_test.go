package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sparkd/sparkd/protocol"
)

// fakeMaster is a scripted master RPC endpoint for client-side logic tests.
type fakeMaster struct {
	t    *testing.T
	srv  *httptest.Server
	url  string // spark://127.0.0.1:port
	rpc  *protocol.Client
	mu   sync.Mutex
	st   protocol.MasterState
	ep   int64
	hint *protocol.LeaderHint
	// apps registered here: id -> clientURL
	apps      map[string]string
	forgotten map[string]bool
	next      int
	calls     map[string]int // path template -> count
	lastReq   map[string]any
}

func newFakeMaster(t *testing.T, state protocol.MasterState, epoch int64) *fakeMaster {
	f := &fakeMaster{t: t, st: state, ep: epoch, apps: map[string]string{}, forgotten: map[string]bool{},
		calls: map[string]int{}, lastReq: map[string]any{}, rpc: protocol.NewClient(2*time.Second, "")}
	r := mux.NewRouter()
	r.Handle(protocol.PathLeader, protocol.Handle(func(*http.Request) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[protocol.PathLeader]++
		li := protocol.LeaderInfo{ID: "m-" + f.url, URL: f.url, State: f.st, Epoch: f.ep}
		if f.st == protocol.MasterAlive {
			li.LeaderURL = f.url
		} else if f.hint != nil {
			li.LeaderURL = f.hint.LeaderURL
			li.Epoch = f.hint.Epoch
		}
		return li, nil
	})).Methods(http.MethodGet)
	r.Handle(protocol.PathRegisterApp, protocol.Handle(func(r *http.Request) (any, error) {
		var m protocol.RegisterApplication
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[protocol.PathRegisterApp]++
		if err := protocol.DecodeBody(r, &m); err != nil {
			return nil, err
		}
		if err := m.Validate(); err != nil {
			return nil, err
		}
		if err := f.notAlive(); err != nil {
			return nil, err
		}
		f.next++
		id := fmt.Sprintf("app-%s-%04d", strings.TrimPrefix(f.url, "spark://127.0.0.1:"), f.next)
		f.apps[id] = m.ClientURL
		return protocol.RegisteredApplication{Stamp: protocol.Stamp{Epoch: f.ep, MasterURL: f.url}, AppID: id}, nil
	})).Methods(http.MethodPost)
	appCall := func(path string, body func() any, reply func(id string) (any, error)) {
		r.Handle(path, protocol.Handle(func(r *http.Request) (any, error) {
			id := mux.Vars(r)["id"]
			var b any
			if body != nil {
				b = body()
				if err := protocol.DecodeBody(r, b); err != nil {
					return nil, err
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls[path]++
			f.lastReq[path] = b
			if err := f.notAlive(); err != nil {
				return nil, err
			}
			return reply(id)
		})).Methods(http.MethodPost)
	}
	appCall(protocol.PathAppHeartbeat, func() any { return &protocol.AppHeartbeat{} }, func(id string) (any, error) {
		resp := protocol.AppHeartbeatResponse{Stamp: protocol.Stamp{Epoch: f.ep, MasterURL: f.url}, State: protocol.AppRunning}
		if _, ok := f.apps[id]; !ok || f.forgotten[id] {
			resp.Reregister = true
		}
		return resp, nil
	})
	known := func(id string) (any, error) {
		if _, ok := f.apps[id]; !ok {
			return nil, &protocol.StatusError{Code: http.StatusNotFound, Message: "unknown application " + id}
		}
		return nil, nil
	}
	appCall(protocol.PathKillApp, nil, known)
	appCall(protocol.PathUnregisterApp, func() any { return &protocol.UnregisterApplication{} }, known)
	appCall(protocol.PathRequestExecutors, func() any { return &protocol.RequestExecutors{} }, known)
	f.srv = httptest.NewServer(r)
	f.url = "spark://" + strings.TrimPrefix(f.srv.URL, "http://")
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMaster) notAlive() error {
	if f.st == protocol.MasterAlive {
		return nil
	}
	h := f.hint
	if h == nil {
		h = &protocol.LeaderHint{State: f.st}
	}
	return &protocol.StatusError{Code: http.StatusServiceUnavailable, Message: "master is " + string(f.st), Hint: h}
}

func (f *fakeMaster) set(state protocol.MasterState, epoch int64, hint *protocol.LeaderHint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.ep, f.hint = state, epoch, hint
}

func (f *fakeMaster) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeMaster) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten[id] = true
}

func (f *fakeMaster) hasApp(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.apps[id]
	return ok
}

// push sends msg to the app's client listener, stamped by this master.
func (f *fakeMaster) push(clientURL, path string, msg any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return f.rpc.Call(ctx, http.MethodPost, clientURL, path, msg, nil)
}

func (f *fakeMaster) stamp() protocol.Stamp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return protocol.Stamp{Epoch: f.ep, MasterURL: f.url}
}

// eventLog collects events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds() []EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventKind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

func (l *eventLog) find(k EventKind) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == k {
			return e, true
		}
	}
	return Event{}, false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
