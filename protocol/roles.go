package protocol

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Role-separated, replay-protected authentication (issue #16).
//
// Every holder of spark.authenticate.secret (masters, workers, operators'
// tools) derives per-role keys from it; applications get only a key derived
// for their own principal (an application credential), never the secret.
//
//	master key:       HMAC-SHA256(secret, "sparkd role master")
//	worker key:       HMAC-SHA256(secret, "sparkd role worker <worker id>")
//	application key:  HMAC-SHA256(secret, "sparkd role application <principal>")
//
// A signed request names the key that signed it (role and principal), a
// fresh nonce and the time; the signature covers those, the method, the
// target host:port, the path and query, and the body's SHA-256. A receiver
// refuses (401, naming why) an unsigned request, a time outside ±AuthWindow,
// a request signed for another host, a wrong signature and a nonce it has
// already seen within the window. The identity of the key then decides what
// the caller may do (403). Answers are signed by the responder over the
// request's nonce with the same key, and Client verifies them.
//
// Guaranteed: without the secret, or the key of a role, nobody can make a
// request that a receiver attributes to that role; a captured request is
// accepted once, by the server it was sent to, within AuthWindow.
// Not guaranteed: confidentiality (turn TLS on); anyone holding the cluster
// secret (every master and worker) can sign as any role.

// Role is the kind of key a request was signed with.
type Role string

// Roles.
const (
	RoleMaster      Role = "master"
	RoleWorker      Role = "worker"
	RoleApplication Role = "application"
)

// Identity is who signed a request: its key's role and principal (a worker
// id, an application principal, "" for the master).
type Identity struct {
	Role      Role
	Principal string
}

func (id Identity) String() string {
	if id.Principal == "" {
		return string(id.Role)
	}
	return string(id.Role) + " " + id.Principal
}

// Headers of the role-aware scheme.
const (
	HeaderAuthRole      = "X-Sparkd-Auth-Role"
	HeaderAuthPrincipal = "X-Sparkd-Auth-Principal"
	HeaderAuthNonce     = "X-Sparkd-Auth-Nonce"
	HeaderAuthTime      = "X-Sparkd-Auth-Time" // Unix milliseconds
	HeaderSignature     = "X-Sparkd-Signature"
	HeaderRespSignature = "X-Sparkd-Response-Signature"
)

// AuthWindow is how far a signed request's time may be from the receiver's
// clock; a receiver remembers every nonce for twice as long.
const AuthWindow = 30 * time.Second

// MaxPrincipalLen bounds a principal (worker ids, application principals).
const MaxPrincipalLen = 256

// Errors of the role-aware scheme.
var (
	// ErrResponseNotAuthenticated is wrapped by Call when an answer that
	// should carry the responder's signature does not, or it is wrong.
	ErrResponseNotAuthenticated = errors.New("protocol: response is not authenticated")
	// ErrBadCredential is returned for a malformed application credential.
	ErrBadCredential = errors.New("protocol: malformed application credential")
)

// RoleKey derives the key of id from the cluster secret.
func RoleKey(secret string, id Identity) string {
	h := hmac.New(sha256.New, []byte(secret))
	label := "sparkd role " + string(id.Role)
	if id.Principal != "" {
		label += " " + id.Principal
	}
	h.Write([]byte(label))
	return hex.EncodeToString(h.Sum(nil))
}

// appCredentialPrefix starts every application credential.
const appCredentialPrefix = "sparkd-app1:"

// NewAppCredential returns the application credential of principal: what a
// driver and its executors get (in SPARK_AUTHENTICATE_SECRET) instead of the
// cluster secret. It holds the principal and its derived key; used as an
// opaque shared secret (NewClient, Authenticate) it also authenticates a
// driver and its executors to each other.
func NewAppCredential(secret, principal string) string {
	return appCredentialPrefix + principal + ":" + RoleKey(secret, Identity{RoleApplication, principal})
}

// IsAppCredential reports whether s is an application credential (as
// opposed to a cluster secret).
func IsAppCredential(s string) bool { return strings.HasPrefix(s, appCredentialPrefix) }

// NewPrincipal returns a fresh random application principal.
func NewPrincipal(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Credentials sign requests as one identity and verify requests and
// answers. Cluster credentials (built from the secret) can derive the key
// of any identity; application credentials know only their own.
type Credentials struct {
	self   Identity
	key    string
	secret string // "" for application credentials
}

// ClusterCredentials are the credentials of a holder of the cluster secret
// signing as self. A nil result (empty secret) means: authentication off.
func ClusterCredentials(secret string, self Identity) *Credentials {
	if secret == "" {
		return nil
	}
	return &Credentials{self: self, key: RoleKey(secret, self), secret: secret}
}

// AppCredentials parses an application credential (NewAppCredential).
func AppCredentials(cred string) (*Credentials, error) {
	rest, ok := strings.CutPrefix(cred, appCredentialPrefix)
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 || i == len(rest)-1 {
		return nil, ErrBadCredential
	}
	p, key := rest[:i], rest[i+1:]
	if len(p) > MaxPrincipalLen {
		return nil, ErrBadCredential
	}
	return &Credentials{self: Identity{RoleApplication, p}, key: key}, nil
}

// CredentialsFor turns what a process was given in spark.authenticate.secret
// or SPARK_AUTHENTICATE_SECRET into credentials: an application credential
// as itself; a cluster secret as self. "" gives nil (authentication off).
func CredentialsFor(secretOrCred string, self Identity) (*Credentials, error) {
	switch {
	case secretOrCred == "":
		return nil, nil
	case IsAppCredential(secretOrCred):
		return AppCredentials(secretOrCred)
	default:
		return ClusterCredentials(secretOrCred, self), nil
	}
}

// Identity is whom c signs as.
func (c *Credentials) Identity() Identity { return c.self }

// Cluster reports whether c holds the cluster secret.
func (c *Credentials) Cluster() bool { return c.secret != "" }

// AppCredential derives principal's application credential; only cluster
// credentials can ("" otherwise).
func (c *Credentials) AppCredential(principal string) string {
	if c == nil || c.secret == "" {
		return ""
	}
	return NewAppCredential(c.secret, principal)
}

// keyFor returns the key of id, if c can know it.
func (c *Credentials) keyFor(id Identity) (string, bool) {
	if id == c.self {
		return c.key, true
	}
	if c.secret == "" {
		return "", false
	}
	switch id.Role {
	case RoleMaster:
		if id.Principal != "" {
			return "", false
		}
	case RoleWorker, RoleApplication:
		if id.Principal == "" {
			return "", false
		}
	default:
		return "", false
	}
	return RoleKey(c.secret, id), true
}

type signAsKey struct{}

// SignAs returns a context under which a Client with cluster credentials
// signs with id's key instead of its own: a master pushing to an
// application signs with that application's key, the only one the
// application can verify.
func SignAs(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, signAsKey{}, id)
}

func requestMAC(key, method, host, uri, ts, nonce string, id Identity, body []byte) string {
	sum := sha256.Sum256(body)
	h := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(h, "sparkd-request-v2\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", method, strings.ToLower(host), uri, ts, nonce, id.Role, id.Principal)
	h.Write([]byte(hex.EncodeToString(sum[:])))
	return hex.EncodeToString(h.Sum(nil))
}

func responseMAC(key, nonce string, status int, body []byte) string {
	sum := sha256.Sum256(body)
	h := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(h, "sparkd-response-v2\n%s\n%d\n", nonce, status)
	h.Write([]byte(hex.EncodeToString(sum[:])))
	return hex.EncodeToString(h.Sum(nil))
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sign signs r (whose body is body) with c, as the identity ctx names
// (SignAs) or c's own, and returns the key and nonce used.
func (c *Credentials) sign(ctx context.Context, r *http.Request, body []byte) (key, nonce string, err error) {
	id := c.self
	if as, ok := ctx.Value(signAsKey{}).(Identity); ok {
		id = as
	}
	key, ok := c.keyFor(id)
	if !ok {
		return "", "", fmt.Errorf("protocol: cannot sign as %s without the cluster secret", id)
	}
	nonce = newNonce()
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	r.Header.Set(HeaderAuthRole, string(id.Role))
	if id.Principal != "" {
		r.Header.Set(HeaderAuthPrincipal, id.Principal)
	}
	r.Header.Set(HeaderAuthNonce, nonce)
	r.Header.Set(HeaderAuthTime, ts)
	r.Header.Set(HeaderSignature, requestMAC(key, r.Method, r.URL.Host, r.URL.RequestURI(), ts, nonce, id, body))
	return key, nonce, nil
}

// verifyResponse checks an answer's signature.
func verifyResponse(key, nonce string, status int, h http.Header, body []byte) bool {
	got := h.Get(HeaderRespSignature)
	return got != "" && hmac.Equal([]byte(got), []byte(responseMAC(key, nonce, status, body)))
}

// mustVerifyResponse says which answers must be signed: those a caller acts
// on (2xx, and 503s with a leader hint). Others are errors either way.
func mustVerifyResponse(status int) bool {
	return status/100 == 2 || status == http.StatusServiceUnavailable
}

// ---- receiving side ----

type identityKey struct{}

// IdentityFrom returns the identity that signed r, if AuthenticateRoles
// verified one.
func IdentityFrom(r *http.Request) (Identity, bool) {
	id, ok := r.Context().Value(identityKey{}).(Identity)
	return id, ok
}

// Authorizer decides whether id may make request r (nil) or not (an error:
// a *StatusError's code, 403 otherwise). It runs before r reaches the
// handler; the body has been read and can be read again.
type Authorizer func(r *http.Request, id Identity) error

// VerifyOptions tune AuthenticateRoles.
type VerifyOptions struct {
	// Hosts are the host:port names this listener answers to, besides the
	// local address a connection arrived on (and names resolving to it).
	Hosts []string
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// MaxNonces bounds the replay cache (default 1<<18); when it is full
	// of unexpired nonces, requests get 503 until some expire.
	MaxNonces int
}

// AuthenticateRoles wraps next so that, when c is not nil, only requests
// signed by a key c can verify, fresh, for this server, and not seen
// before, get through, and only if authorize (nil: anyone) allows their
// identity; the identity is in the request's context (IdentityFrom), and
// the answer is signed over the request's nonce. With c nil it returns next.
func AuthenticateRoles(c *Credentials, opts VerifyOptions, authorize Authorizer, next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = 1 << 18
	}
	seen := &nonceCache{max: opts.MaxNonces, m: map[string]time.Time{}}
	hosts := &hostCheck{names: map[string]bool{}}
	for _, h := range opts.Hosts {
		hosts.names[strings.ToLower(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil {
			WriteError(w, http.StatusBadRequest, "read body: "+err.Error(), nil)
			return
		}
		if len(body) > MaxBodyBytes {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes), nil)
			return
		}
		id, key, nonce, status, why := verifyRequest(c, opts.Now(), seen, hosts, r, body)
		if why != "" {
			WriteError(w, status, "authentication failed: "+why, nil)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		r.Body = io.NopCloser(bytes.NewReader(body))
		if authorize != nil {
			if err := authorize(r, id); err != nil {
				var se *StatusError
				if !errors.As(err, &se) {
					se = &StatusError{Code: http.StatusForbidden, Message: err.Error()}
				}
				WriteError(w, se.Code, se.Message, nil)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sw := &signingWriter{h: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		for k, v := range sw.h {
			w.Header()[k] = v
		}
		w.Header().Set(HeaderRespSignature, responseMAC(key, nonce, sw.status, sw.buf.Bytes()))
		w.WriteHeader(sw.status)
		_, _ = w.Write(sw.buf.Bytes())
	})
}

func verifyRequest(c *Credentials, now time.Time, seen *nonceCache, hosts *hostCheck, r *http.Request, body []byte) (id Identity, key, nonce string, status int, why string) {
	status = http.StatusUnauthorized
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		return id, "", "", status, "request is not signed (spark.authenticate is on; a role-aware signature is required)"
	}
	id = Identity{Role: Role(r.Header.Get(HeaderAuthRole)), Principal: r.Header.Get(HeaderAuthPrincipal)}
	nonce, ts := r.Header.Get(HeaderAuthNonce), r.Header.Get(HeaderAuthTime)
	if len(id.Principal) > MaxPrincipalLen || len(nonce) < 16 || len(nonce) > 64 {
		return id, "", "", status, "malformed principal or nonce"
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return id, "", "", status, "malformed " + HeaderAuthTime
	}
	if skew := now.Sub(time.UnixMilli(ms)); skew > AuthWindow || skew < -AuthWindow {
		return id, "", "", status, fmt.Sprintf("request time is %s away from this server's clock, outside the ±%s window (a replay, or clocks out of sync)", skew.Round(time.Millisecond), AuthWindow)
	}
	key, ok := c.keyFor(id)
	if !ok {
		return id, "", "", status, fmt.Sprintf("unknown key %q (role %q)", id.String(), id.Role)
	}
	if !hmac.Equal([]byte(sig), []byte(requestMAC(key, r.Method, r.Host, r.URL.RequestURI(), ts, nonce, id, body))) {
		return id, "", "", status, "spark.authenticate.secret does not match (a wrong secret or application credential, or a tampered request)"
	}
	if !hosts.ok(r) {
		return id, "", "", status, fmt.Sprintf("request was signed for %s, which is not this server", r.Host)
	}
	switch seen.add(nonce, now) {
	case nonceReplay:
		return id, "", "", status, "replayed request: nonce already used"
	case nonceFull:
		return id, "", "", http.StatusServiceUnavailable, "too many signed requests in the replay window; retry"
	}
	return id, key, nonce, 0, ""
}

// signingWriter buffers an answer so that it can be signed.
type signingWriter struct {
	h      http.Header
	status int
	wrote  bool
	buf    bytes.Buffer
}

func (s *signingWriter) Header() http.Header { return s.h }
func (s *signingWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
}
func (s *signingWriter) Write(p []byte) (int, error) {
	s.wrote = true
	if s.buf.Len()+len(p) > MaxBodyBytes {
		return 0, errors.New("protocol: answer larger than MaxBodyBytes")
	}
	return s.buf.Write(p)
}

type nonceResult int

const (
	nonceFresh nonceResult = iota
	nonceReplay
	nonceFull
)

// nonceCache remembers nonces for 2×AuthWindow (a request is accepted only
// within ±AuthWindow of its time, so an older nonce cannot come back).
type nonceCache struct {
	mu       sync.Mutex
	max      int
	m        map[string]time.Time
	lastPrun time.Time
}

func (n *nonceCache) add(nonce string, now time.Time) nonceResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	if exp, ok := n.m[nonce]; ok && now.Before(exp) {
		return nonceReplay
	}
	if len(n.m) >= n.max || now.Sub(n.lastPrun) > AuthWindow {
		for k, exp := range n.m {
			if !now.Before(exp) {
				delete(n.m, k)
			}
		}
		n.lastPrun = now
		if len(n.m) >= n.max {
			return nonceFull
		}
	}
	n.m[nonce] = now.Add(2 * AuthWindow)
	return nonceFresh
}

// hostCheck decides whether a request's Host names this server (same
// port, and: a configured name, the local address the connection arrived
// on, "localhost", or a name that resolves to the local address).
type hostCheck struct {
	names map[string]bool
	mu    sync.Mutex
	cache map[string]hostEntry
}

type hostEntry struct {
	addrs []string
	until time.Time
}

func (h *hostCheck) ok(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if h.names[host] {
		return true
	}
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if la == nil {
		return false
	}
	lhost, lport, err := net.SplitHostPort(la.String())
	if err != nil {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, ""
		if r.TLS != nil {
			port = "443"
		} else {
			port = "80"
		}
	}
	if port != lport {
		return false
	}
	lip := net.ParseIP(lhost)
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		return lip != nil && ip.Equal(lip)
	}
	if name == "localhost" {
		// On a loopback connection, or a port published from a container
		// (the client says localhost, the connection arrives on the
		// container's address). A request to localhost cannot be captured
		// off-host, so this widens nothing an attacker on the network can
		// replay.
		return true
	}
	for _, a := range h.resolve(r.Context(), name) {
		if ip := net.ParseIP(a); ip != nil && lip != nil && ip.Equal(lip) {
			return true
		}
	}
	return false
}

func (h *hostCheck) resolve(ctx context.Context, name string) []string {
	h.mu.Lock()
	if h.cache == nil {
		h.cache = map[string]hostEntry{}
	}
	if e, ok := h.cache[name]; ok && time.Now().Before(e.until) {
		h.mu.Unlock()
		return e.addrs
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, _ := net.DefaultResolver.LookupHost(ctx, name)
	h.mu.Lock()
	if len(h.cache) > 1024 {
		clear(h.cache)
	}
	h.cache[name] = hostEntry{addrs: addrs, until: time.Now().Add(time.Minute)}
	h.mu.Unlock()
	return addrs
}

// Forbidden is a 403 naming what id may not do.
func Forbidden(id Identity, what string) error {
	return &StatusError{Code: http.StatusForbidden, Message: fmt.Sprintf("%s may not %s", id, what)}
}

// AllowRoles is an Authorizer admitting only the given roles.
func AllowRoles(roles ...Role) Authorizer {
	return func(r *http.Request, id Identity) error {
		for _, ro := range roles {
			if id.Role == ro {
				return nil
			}
		}
		return Forbidden(id, r.Method+" "+r.URL.Path)
	}
}

// AllowOnly is an Authorizer admitting only the identity want.
func AllowOnly(want Identity) Authorizer {
	return func(r *http.Request, id Identity) error {
		if id == want {
			return nil
		}
		return Forbidden(id, r.Method+" "+r.URL.Path)
	}
}
