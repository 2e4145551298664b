package protocol

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client that sends its body slowly (or never) is disconnected within the
// read timeout instead of holding a goroutine and a buffer indefinitely.
func TestServerDisconnectsASlowBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	handled := make(chan error, 1)
	srv := NewServerWithLimits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		handled <- err
	}), ServerLimits{ReadHeader: time.Second, Read: 300 * time.Millisecond, Write: time.Second, Idle: time.Second, MaxHeaderBytes: 4096})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
	require.NoError(t, err)
	start := time.Now()
	select {
	case err := <-handled:
		assert.Error(t, err, "the body read must fail: the client never sent it")
	case <-time.After(5 * time.Second):
		t.Fatal("the slow body held the handler past the read timeout")
	}
	assert.Less(t, time.Since(start), 3*time.Second)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(c)
	assert.NoError(t, err, "the server closed the connection")
}

// The defaults every listener gets are set.
func TestNewServerHasEveryLimit(t *testing.T) {
	s := NewServer(http.NotFoundHandler())
	assert.Equal(t, ServerReadHeaderTimeout, s.ReadHeaderTimeout)
	assert.Equal(t, ServerReadTimeout, s.ReadTimeout)
	assert.Equal(t, ServerWriteTimeout, s.WriteTimeout)
	assert.Equal(t, ServerIdleTimeout, s.IdleTimeout)
	assert.Equal(t, ServerMaxHeaderBytes, s.MaxHeaderBytes)
}
