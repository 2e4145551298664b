package client

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A busy driver port is retried on the next ones, as Spark's sparkDriver.
func TestClientBusyListenPortFallsBack(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	p := busy.Addr().(*net.TCPAddr).Port

	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	c, err := New(Config{Masters: []string{"127.0.0.1:1"}, App: testApp(), Logger: logrus.NewEntry(l),
		ListenAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}, nil)
	require.NoError(t, err, "a busy driver port must fall back to the next one")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	u, err := url.Parse(c.URL())
	require.NoError(t, err)
	got, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	assert.Greater(t, got, p)
	assert.LessOrEqual(t, got, p+16)
	assert.Contains(t, buf.String(), fmt.Sprintf("Service 'sparkDriver' could not bind on port %d. Attempting port %d.", p, p+1))

	_, err = New(Config{Masters: []string{"127.0.0.1:1"}, App: testApp(), Logger: logrus.NewEntry(l),
		ListenAddr: busy.Addr().String(), MaxPortRetries: -1}, nil)
	assert.ErrorContains(t, err, "address already in use", "negative MaxPortRetries: no retry")
}
