package protocol

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// TLS with Spark's keys (spark.ssl.*, as PEM files: certChain, privateKey,
// trustStore; issue #16). A listener with TLS on speaks only TLS: a
// plaintext request is refused ("Client sent an HTTP request to an HTTPS
// server", or a failed handshake). With NeedClientAuth, only peers with a
// certificate signed by the trust store may connect (mutual TLS).

// TLSFiles names one service's PEM files and options.
type TLSFiles struct {
	CertChain  string // PEM certificate chain (spark.ssl.<ns>.certChain)
	PrivateKey string // PEM private key (spark.ssl.<ns>.privateKey)
	TrustStore string // PEM CA bundle (spark.ssl.<ns>.trustStore); "" = the system's
	// NeedClientAuth asks peers for a certificate signed by TrustStore
	// (spark.ssl.<ns>.needClientAuth).
	NeedClientAuth bool
	// Protocol is the lowest version: "TLSv1.2" (default) or "TLSv1.3"
	// (spark.ssl.<ns>.protocol).
	Protocol string
}

// TLS is one service's TLS: the server side of its listeners and the
// client side of calls to its peers. A nil *TLS is plaintext.
type TLS struct {
	Server *tls.Config
	Client *tls.Config
}

// LoadTLS reads f's files. A server needs CertChain and PrivateKey; the
// same pair is the client certificate for mutual TLS.
func LoadTLS(f TLSFiles) (*TLS, error) {
	minV := uint16(tls.VersionTLS12)
	switch strings.ToUpper(strings.TrimSpace(f.Protocol)) {
	case "", "TLS", "TLSV1.2":
	case "TLSV1.3":
		minV = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("protocol: TLS protocol %q: want TLSv1.2 or TLSv1.3", f.Protocol)
	}
	if f.CertChain == "" || f.PrivateKey == "" {
		return nil, errors.New("protocol: TLS needs certChain and privateKey (PEM files)")
	}
	cert, err := tls.LoadX509KeyPair(f.CertChain, f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("protocol: TLS certificate: %w", err)
	}
	var pool *x509.CertPool
	if f.TrustStore != "" {
		pem, err := os.ReadFile(f.TrustStore)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS trust store: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("protocol: TLS trust store %s holds no PEM certificate", f.TrustStore)
		}
	}
	if f.NeedClientAuth && pool == nil {
		return nil, errors.New("protocol: TLS needClientAuth needs a trustStore to verify peers with")
	}
	srv := &tls.Config{MinVersion: minV, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	if f.NeedClientAuth {
		srv.ClientCAs, srv.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	cli := &tls.Config{MinVersion: minV, RootCAs: pool, Certificates: []tls.Certificate{cert}}
	return &TLS{Server: srv, Client: cli}, nil
}

// LoadClientTLS is LoadTLS for a process that only calls (sparkd submit,
// status): the certificate is optional (sent for mutual TLS when given).
func LoadClientTLS(f TLSFiles) (*TLS, error) {
	if f.CertChain != "" || f.PrivateKey != "" {
		return LoadTLS(f)
	}
	minV := uint16(tls.VersionTLS12)
	if strings.EqualFold(strings.TrimSpace(f.Protocol), "TLSv1.3") {
		minV = tls.VersionTLS13
	}
	cli := &tls.Config{MinVersion: minV}
	if f.TrustStore != "" {
		pem, err := os.ReadFile(f.TrustStore)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS trust store: %w", err)
		}
		cli.RootCAs = x509.NewCertPool()
		if !cli.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("protocol: TLS trust store %s holds no PEM certificate", f.TrustStore)
		}
	}
	return &TLS{Client: cli}, nil
}

// Listener wraps ln so that it speaks only TLS; a nil t returns ln.
func (t *TLS) Listener(ln net.Listener) net.Listener {
	if t == nil || ln == nil {
		return ln
	}
	return tls.NewListener(ln, t.Server)
}

// Scheme is "https" with TLS, "http" without.
func (t *TLS) Scheme() string {
	if t == nil {
		return "http"
	}
	return "https"
}

// Apply makes c call its peers over TLS (every http:// or spark:// base
// becomes https://); a nil t leaves c alone.
func (t *TLS) Apply(c *Client) {
	if t == nil || c == nil {
		return
	}
	c.HTTPS = true
	if c.HTTP == nil {
		c.HTTP = &http.Client{}
	}
	tr, ok := c.HTTP.Transport.(*http.Transport)
	if !ok || tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		c.HTTP.Transport = tr
	}
	tr.TLSClientConfig = t.Client.Clone()
}
