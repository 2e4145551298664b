package protocol

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/testcerts"
)

// With TLS on, a listener refuses plaintext; with needClientAuth it also
// refuses a TLS peer without a certificate from the trust store.
func TestTLSRefusesPlaintextAndStrangers(t *testing.T) {
	certs := testcerts.Write(t, "server", "client")
	other := testcerts.Write(t, "stranger")["stranger"]
	srvTLS, err := LoadTLS(TLSFiles{CertChain: certs["server"].Cert, PrivateKey: certs["server"].Key, TrustStore: certs["server"].CA, NeedClientAuth: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var reached atomic.Int32
	srv := NewServer(Handle(func(*http.Request) (any, error) { reached.Add(1); return map[string]string{"ok": "yes"}, nil }))
	go func() { _ = srv.Serve(srvTLS.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Plaintext: refused.
	plain := NewClient(5*time.Second, "")
	err = plain.Call(ctx, http.MethodGet, base, "/x", nil, nil)
	require.Error(t, err)
	var se *StatusError
	if assert.ErrorAs(t, err, &se) {
		assert.Equal(t, http.StatusBadRequest, se.Code)
		assert.Contains(t, se.Message, "HTTPS server")
	}

	// TLS with a certificate of another CA, or none: refused.
	for name, f := range map[string]TLSFiles{
		"stranger's certificate": {CertChain: other.Cert, PrivateKey: other.Key, TrustStore: certs["client"].CA},
	} {
		tl, err := LoadTLS(f)
		require.NoError(t, err)
		c := NewClient(5*time.Second, "")
		tl.Apply(c)
		assert.Error(t, c.Call(ctx, http.MethodGet, base, "/x", nil, nil), name)
	}
	noCert, err := LoadClientTLS(TLSFiles{TrustStore: certs["client"].CA})
	require.NoError(t, err)
	c := NewClient(5*time.Second, "")
	noCert.Apply(c)
	assert.Error(t, c.Call(ctx, http.MethodGet, base, "/x", nil, nil), "no client certificate")
	assert.EqualValues(t, 0, reached.Load())

	// A member: served, over https.
	member, err := LoadTLS(TLSFiles{CertChain: certs["client"].Cert, PrivateKey: certs["client"].Key, TrustStore: certs["client"].CA})
	require.NoError(t, err)
	c = NewClient(5*time.Second, "")
	member.Apply(c)
	var got map[string]string
	require.NoError(t, c.Call(ctx, http.MethodGet, "spark://"+ln.Addr().String(), "/x", nil, &got))
	assert.Equal(t, "yes", got["ok"])
	assert.EqualValues(t, 1, reached.Load())
}

func TestLoadTLSErrors(t *testing.T) {
	certs := testcerts.Write(t, "s")
	_, err := LoadTLS(TLSFiles{CertChain: certs["s"].Cert})
	assert.ErrorContains(t, err, "privateKey")
	_, err = LoadTLS(TLSFiles{CertChain: certs["s"].Cert, PrivateKey: certs["s"].Key, NeedClientAuth: true})
	assert.ErrorContains(t, err, "trustStore")
	_, err = LoadTLS(TLSFiles{CertChain: certs["s"].Cert, PrivateKey: certs["s"].Key, Protocol: "SSLv3"})
	assert.ErrorContains(t, err, "TLSv1.2")
}
