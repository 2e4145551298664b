package protocol

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthenticate(t *testing.T) {
	var got string
	srv := httptest.NewServer(Authenticate("s3cret", Handle(func(r *http.Request) (any, error) {
		var m Heartbeat
		if err := DecodeBody(r, &m); err != nil {
			return nil, err
		}
		got = m.WorkerID
		return m, nil
	})))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	req := Heartbeat{WorkerID: "worker-1", Epoch: 3}

	var resp Heartbeat
	require.NoError(t, NewClient(5*time.Second, "s3cret").Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, &resp))
	assert.Equal(t, "worker-1", got, "the body survives verification")
	assert.Equal(t, req, resp)

	for name, c := range map[string]*Client{"wrong secret": NewClient(5*time.Second, "guess"), "no secret": NewClient(5*time.Second, "")} {
		err := c.Call(ctx, http.MethodPost, srv.URL, "/v1/x", req, nil)
		var se *StatusError
		require.True(t, errors.As(err, &se), "%s: %v", name, err)
		assert.Equal(t, http.StatusUnauthorized, se.Code, name)
		assert.Contains(t, se.Message, "spark.authenticate.secret", name)
	}

	// A signature covers the body and the time: a changed body or a replay
	// from long ago is refused.
	body := `{"workerId":"worker-1","epoch":3}`
	send := func(body string, ts time.Time, signedBody string) int {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/x", strings.NewReader(body))
		require.NoError(t, err)
		tsStr := strconv.FormatInt(ts.Unix(), 10)
		r.Header.Set(HeaderTime, tsStr)
		r.Header.Set(HeaderAuth, mac("s3cret", http.MethodPost, "/v1/x", tsStr, []byte(signedBody)))
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, send(body, time.Now(), body))
	assert.Equal(t, http.StatusUnauthorized, send(`{"workerId":"evil","epoch":99}`, time.Now(), body), "tampered body")
	assert.Equal(t, http.StatusUnauthorized, send(body, time.Now().Add(-time.Hour), body), "stale timestamp")

	// No secret configured: nothing is checked.
	open := httptest.NewServer(Authenticate("", Handle(func(*http.Request) (any, error) { return nil, nil })))
	t.Cleanup(open.Close)
	assert.NoError(t, NewClient(5*time.Second, "").Call(ctx, http.MethodPost, open.URL, "/v1/x", req, nil))
}
