package protocol

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingTransport keeps a copy of the last request it sent, as a
// captured packet would.
type recordingTransport struct {
	mu     sync.Mutex
	header http.Header
	body   []byte
	method string
	url    string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rt.mu.Lock()
	rt.header, rt.body, rt.method, rt.url = r.Header.Clone(), body, r.Method, r.URL.String()
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// replay sends the captured request again to url (its own target when "").
func (rt *recordingTransport) replay(t *testing.T, url string) (int, string) {
	t.Helper()
	rt.mu.Lock()
	orig, err := http.NewRequest(rt.method, rt.url, nil)
	require.NoError(t, err)
	if url == "" {
		url = rt.url
	}
	req, err := http.NewRequest(rt.method, url, bytes.NewReader(rt.body))
	require.NoError(t, err)
	req.Header = rt.header.Clone()
	req.Host = orig.Host // the captured bytes, sent elsewhere
	rt.mu.Unlock()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func roleServer(t *testing.T, c *Credentials, allow Authorizer) (*httptest.Server, *int) {
	t.Helper()
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(AuthenticateRoles(c, VerifyOptions{}, allow, Handle(func(r *http.Request) (any, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		id, _ := IdentityFrom(r)
		var m Heartbeat
		if err := DecodeBody(r, &m); err != nil {
			return nil, err
		}
		return map[string]string{"who": id.String(), "worker": m.WorkerID}, nil
	})))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func statusOf(t *testing.T, err error) (int, string) {
	t.Helper()
	var se *StatusError
	require.True(t, errors.As(err, &se), "want a *StatusError, got %v", err)
	return se.Code, se.Message
}

func TestRoleKeysAndCredentials(t *testing.T) {
	const secret = "s3cret"
	m := ClusterCredentials(secret, Identity{Role: RoleMaster})
	require.Nil(t, ClusterCredentials("", Identity{Role: RoleMaster}), "no secret: authentication off")
	cred := NewAppCredential(secret, "app-1")
	assert.NotContains(t, cred, secret)
	a, err := AppCredentials(cred)
	require.NoError(t, err)
	assert.Equal(t, Identity{RoleApplication, "app-1"}, a.Identity())
	assert.False(t, a.Cluster())
	assert.Empty(t, a.AppCredential("app-2"), "an application cannot derive another's credential")
	assert.Equal(t, cred, m.AppCredential("app-1"))
	_, ok := a.keyFor(Identity{Role: RoleMaster})
	assert.False(t, ok, "an application does not know the master key")
	assert.NotEqual(t, RoleKey(secret, Identity{RoleWorker, "w1"}), RoleKey(secret, Identity{RoleWorker, "w2"}))
	for _, bad := range []string{"sparkd-app1:", "sparkd-app1:p:", "sparkd-app1::k"} {
		_, err := AppCredentials(bad)
		assert.ErrorIs(t, err, ErrBadCredential, bad)
	}
	c, err := CredentialsFor(cred, Identity{Role: RoleMaster})
	require.NoError(t, err)
	assert.Equal(t, RoleApplication, c.Identity().Role, "an application credential never signs as the master")
}

// Each attack on a role-aware listener fails with 401 or 403, naming why,
// and never reaches the handler.
func TestAuthenticateRolesAttacks(t *testing.T) {
	const secret = "s3cret"
	server := ClusterCredentials(secret, Identity{Role: RoleWorker, Principal: "w1"})
	srv, calls := roleServer(t, server, AllowRoles(RoleMaster))
	ctx := context.Background()
	req := Heartbeat{WorkerID: "worker-1", Epoch: 3}

	master := NewRoleClient(5*time.Second, ClusterCredentials(secret, Identity{Role: RoleMaster}))
	var got map[string]string
	require.NoError(t, master.Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, &got))
	assert.Equal(t, map[string]string{"who": "master", "worker": "worker-1"}, got)
	assert.Equal(t, 1, *calls)

	appCreds, err := AppCredentials(NewAppCredential(secret, "app-evil"))
	require.NoError(t, err)
	app := NewRoleClient(5*time.Second, appCreds)
	code, msg := statusOf(t, app.Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, nil))
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, msg, "application app-evil may not")

	// An application cannot sign as the master.
	err = app.Call(SignAs(ctx, Identity{Role: RoleMaster}), http.MethodPost, srv.URL, "/v1/x", req, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without the cluster secret")

	// A forged credential: the right principal, a made-up key.
	forged, err := AppCredentials("sparkd-app1:master:00")
	require.NoError(t, err)
	forged.self = Identity{Role: RoleMaster}
	code, msg = statusOf(t, NewRoleClient(5*time.Second, forged).Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, msg, "spark.authenticate.secret does not match")

	for name, c := range map[string]*Client{"unsigned": NewClient(5*time.Second, ""), "legacy scheme": NewClient(5*time.Second, secret)} {
		code, msg := statusOf(t, c.Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, nil))
		assert.Equal(t, http.StatusUnauthorized, code, name)
		assert.Contains(t, msg, "not signed", name)
	}
	assert.Equal(t, 1, *calls, "no refused request reached the handler")
}

func TestReplayIsRefused(t *testing.T) {
	const secret = "s3cret"
	server := ClusterCredentials(secret, Identity{Role: RoleWorker, Principal: "w1"})
	srv, calls := roleServer(t, server, nil)
	other, otherCalls := roleServer(t, ClusterCredentials(secret, Identity{Role: RoleWorker, Principal: "w2"}), nil)
	rt := &recordingTransport{}
	c := NewRoleClient(5*time.Second, ClusterCredentials(secret, Identity{Role: RoleMaster}))
	c.HTTP.Transport = rt
	require.NoError(t, c.Call(context.Background(), http.MethodPost, srv.URL, "/v1/x", Heartbeat{WorkerID: "w", Epoch: 1}, nil))

	code, body := rt.replay(t, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, "replayed request")
	// The same request sent to another server (another port) is refused:
	// it was signed for the first one.
	code, body = rt.replay(t, other.URL+"/v1/x")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, "signed for")
	assert.Equal(t, 1, *calls)
	assert.Equal(t, 0, *otherCalls)

	// A request from outside the window is refused whatever its nonce.
	r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/x", bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	id := Identity{Role: RoleMaster}
	key, _ := server.keyFor(id)
	ts := strconv.FormatInt(time.Now().Add(-2*AuthWindow).UnixMilli(), 10)
	nonce := newNonce()
	r.Header.Set(HeaderAuthRole, string(id.Role))
	r.Header.Set(HeaderAuthNonce, nonce)
	r.Header.Set(HeaderAuthTime, ts)
	r.Header.Set(HeaderSignature, requestMAC(key, r.Method, r.URL.Host, r.URL.RequestURI(), ts, nonce, id, []byte(`{}`)))
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, string(b), "outside the ±30s window")
}

// A man in the middle who rewrites an answer (a heartbeat answer with a huge
// epoch) is caught by the client: the answer is not signed over the nonce.
func TestTamperedResponseIsRefused(t *testing.T) {
	const secret = "s3cret"
	srv, _ := roleServer(t, ClusterCredentials(secret, Identity{Role: RoleMaster}), nil)
	backend := srv.Listener.Addr().String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mitm := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out, _ := http.NewRequest(r.Method, "http://"+backend+r.URL.Path, bytes.NewReader(body))
		out.Header = r.Header.Clone()
		out.Host = r.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.Header().Set(HeaderRespSignature, resp.Header.Get(HeaderRespSignature))
		WriteJSON(w, http.StatusOK, map[string]any{"who": "master", "epoch": int64(1) << 62})
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = mitm.Serve(ln) }()
	t.Cleanup(func() { mitm.Close() })

	// The client targets the man in the middle, which forwards to the real
	// server with the original Host header: the signature is for the MITM's
	// address, so the real server refuses it, and the forged answer fails
	// verification.
	c := NewRoleClient(5*time.Second, ClusterCredentials(secret, Identity{Role: RoleWorker, Principal: "w1"}))
	err = c.Call(context.Background(), http.MethodPost, "http://"+ln.Addr().String(), "/v1/x", Heartbeat{WorkerID: "w1"}, nil)
	require.ErrorIs(t, err, ErrResponseNotAuthenticated)
}

// The role-aware layer reads the body first, but a slow body is still cut
// off by the server's read timeout.
func TestSignedListenerDisconnectsASlowBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reached := make(chan struct{}, 1)
	h := AuthenticateRoles(ClusterCredentials("s", Identity{Role: RoleMaster}), VerifyOptions{}, nil,
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached <- struct{}{} }))
	srv := NewServerWithLimits(h, ServerLimits{ReadHeader: time.Second, Read: 300 * time.Millisecond, Write: time.Second, Idle: time.Second, MaxHeaderBytes: 4096})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial"))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	reply, err := io.ReadAll(c)
	require.NoError(t, err, "the server closed the connection before the deadline")
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.NotContains(t, string(reply), "200 OK")
	select {
	case <-reached:
		t.Fatal("an unsigned, unfinished request reached the handler")
	default:
	}
}

func TestCheckBoundsNamesTheField(t *testing.T) {
	long := make([]byte, MaxIDLen+1)
	for i := range long {
		long[i] = 'x'
	}
	err := CheckBounds(LaunchExecutor{Stamp: Stamp{Epoch: 1, MasterURL: string(long)}, AppID: "a"})
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "masterUrl", fe.Field, "embedded structs are flattened as on the wire")
	err = CheckBounds(ExecutorStateChanged{WorkerID: "w", Message: string(long)})
	assert.NoError(t, err, "messages are free-form text, up to MaxTextLen")
	err = CheckBounds(RegisterApplication{App: AppDescription{Env: map[string]string{"K": string(make([]byte, MaxTextLen+1))}}})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "app.env[K]", fe.Field)
}
