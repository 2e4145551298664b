package protocol

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxBodyBytes bounds every request and response body sparkd reads.
const MaxBodyBytes = 4 << 20

// StatusError is a non-2xx answer from a sparkd peer. Hint is set when a
// non-leader master answered 503 with a leader hint.
type StatusError struct {
	Code    int
	Message string
	Hint    *LeaderHint
}

func (e *StatusError) Error() string {
	if e.Hint != nil && e.Hint.LeaderURL != "" {
		return fmt.Sprintf("http %d: %s (leader is %s, epoch %d)", e.Code, e.Message, e.Hint.LeaderURL, e.Hint.Epoch)
	}
	return fmt.Sprintf("http %d: %s", e.Code, e.Message)
}

// ErrConnRefused is wrapped by Call when the peer's address refused the
// connection: the peer is down, not slow.
var ErrConnRefused = errors.New("protocol: connection refused")

// HTTPBase turns a master URL ("spark://host:port" or "host:port") or an
// http(s) URL into the http:// base URL of its listener.
func HTTPBase(u string) string {
	u = strings.TrimSpace(u)
	switch {
	case strings.HasPrefix(u, "spark://"):
		return "http://" + strings.TrimPrefix(u, "spark://")
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return strings.TrimRight(u, "/")
	default:
		return "http://" + u
	}
}

// SparkURL turns host:port into spark://host:port.
func SparkURL(hostPort string) string { return "spark://" + hostPort }

// Client sends signed JSON requests to sparkd peers.
type Client struct {
	HTTP   *http.Client
	Secret string // spark.authenticate.secret, legacy scheme (Sign); empty disables signing
	// Creds, when set, sign requests with the role-aware scheme (roles.go)
	// instead of Secret, and answers are verified.
	Creds *Credentials
	// HTTPS makes every base https:// (TLS.Apply sets it).
	HTTPS bool
}

// NewClient returns a Client whose HTTP client has the given per-request timeout.
func NewClient(timeout time.Duration, secret string) *Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{HTTP: &http.Client{Timeout: timeout, Transport: tr}, Secret: secret}
}

// NewRoleClient is NewClient with role-aware credentials (nil: no
// authentication).
func NewRoleClient(timeout time.Duration, creds *Credentials) *Client {
	c := NewClient(timeout, "")
	c.Creds = creds
	return c
}

// Call sends req (nil for none) as JSON with method to base+path and decodes
// a 2xx answer into resp (nil to discard). A non-2xx answer is a *StatusError.
// A refused connection wraps ErrConnRefused.
func (c *Client) Call(ctx context.Context, method, base, path string, req, resp any) error {
	var body io.Reader
	var raw []byte
	if req != nil {
		var err error
		raw, err = json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		body = bytes.NewReader(raw)
	}
	target := strings.TrimRight(HTTPBase(base), "/") + path
	if c.HTTPS {
		if rest, ok := strings.CutPrefix(target, "http://"); ok {
			target = "https://" + rest
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	if req != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set(HeaderVersion, strconv.Itoa(Version))
	var key, nonce string
	if c.Creds != nil {
		if key, nonce, err = c.Creds.sign(ctx, hreq, raw); err != nil {
			return fmt.Errorf("%s %s: %w", method, target, err)
		}
	} else {
		Sign(hreq, c.Secret, raw)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hresp, err := hc.Do(hreq)
	if err != nil {
		if isConnRefused(err) {
			return fmt.Errorf("%s %s: %w: %w", method, target, ErrConnRefused, err)
		}
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, target, err)
	}
	if c.Creds != nil && mustVerifyResponse(hresp.StatusCode) && !verifyResponse(key, nonce, hresp.StatusCode, hresp.Header, data) {
		return fmt.Errorf("%s %s: http %d: %w (no valid %s)", method, target, hresp.StatusCode, ErrResponseNotAuthenticated, HeaderRespSignature)
	}
	if hresp.StatusCode/100 != 2 {
		se := &StatusError{Code: hresp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			se.Message, se.Hint = eb.Error, eb.Hint
		} else {
			se.Message = strings.TrimSpace(string(data))
		}
		return se
	}
	if resp != nil && len(data) > 0 {
		if err := json.Unmarshal(data, resp); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, target, err)
		}
	}
	return nil
}

func isConnRefused(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return strings.Contains(op.Err.Error(), "connection refused")
	}
	var ue *url.Error
	return errors.As(err, &ue) && strings.Contains(ue.Error(), "connection refused")
}

// ---- authentication (spark.authenticate) ----

// maxClockSkew bounds how far a signed request's timestamp may be from now.
const maxClockSkew = 5 * time.Minute

func mac(secret, method, path, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(method + "\n" + path + "\n" + ts + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Sign adds an HMAC-SHA256 proof of secret over method, path, time and body.
// An empty secret signs nothing.
func Sign(r *http.Request, secret string, body []byte) {
	if secret == "" {
		return
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	r.Header.Set(HeaderTime, ts)
	r.Header.Set(HeaderAuth, mac(secret, r.Method, r.URL.Path, ts, body))
}

// Authenticate wraps next so that, when secret is set, only requests signed
// with it get through; others get 401. The body is buffered (bounded) so that
// it can be verified and then read again by next.
func Authenticate(secret string, next http.Handler) http.Handler {
	if secret == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes))
		if err != nil {
			WriteError(w, http.StatusBadRequest, "read body: "+err.Error(), nil)
			return
		}
		ts := r.Header.Get(HeaderTime)
		sec, perr := strconv.ParseInt(ts, 10, 64)
		skew := time.Since(time.Unix(sec, 0))
		if perr != nil || skew > maxClockSkew || skew < -maxClockSkew ||
			!hmac.Equal([]byte(r.Header.Get(HeaderAuth)), []byte(mac(secret, r.Method, r.URL.Path, ts, body))) {
			WriteError(w, http.StatusUnauthorized, "authentication failed: spark.authenticate.secret does not match", nil)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// ---- server-side helpers ----

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes an ErrorBody with the given status.
func WriteError(w http.ResponseWriter, status int, msg string, hint *LeaderHint) {
	WriteJSON(w, status, ErrorBody{Error: msg, Hint: hint})
}

// DecodeBody decodes a bounded JSON request body into v. It returns a
// *FieldError-wrapping error suitable for a 400 when the body is malformed.
// Unknown fields are ignored.
func DecodeBody(r *http.Request, v any) error {
	lr := &io.LimitedReader{R: r.Body, N: MaxBodyBytes + 1}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 { // cut off: say so, not "unexpected EOF"
			return &FieldError{Field: "body", Reason: fmt.Sprintf("is larger than %d bytes", MaxBodyBytes)}
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" { // the body itself, e.g. an array
				return &FieldError{Field: "body", Reason: "must be a JSON object, got JSON " + te.Value}
			}
			return &FieldError{Field: jsonFieldPath(te.Field), Reason: fmt.Sprintf("has the wrong type: want %s, got JSON %s", te.Type, te.Value)}
		}
		if errors.Is(err, io.EOF) {
			return &FieldError{Field: "body", Reason: "is empty"}
		}
		return &FieldError{Field: "body", Reason: "is not valid JSON: " + err.Error()}
	}
	return nil
}

// DecodeMessage is DecodeBody for sparkd's own messages: it also checks
// every field's bound (CheckBounds), so that an oversized field is a 400
// naming it. Masters, workers and clients decode with it.
func DecodeMessage(r *http.Request, v any) error {
	if err := DecodeBody(r, v); err != nil {
		return err
	}
	return CheckBounds(v)
}

// jsonFieldPath turns encoding/json's field path into the name a sender
// wrote: embedded Go structs (Stamp) are flattened on the wire, so their
// Go names are dropped ("Stamp.epoch" -> "epoch"). Wire names are camelCase.
func jsonFieldPath(p string) string {
	parts := strings.Split(p, ".")
	for len(parts) > 1 && parts[0] != "" && parts[0][0] >= 'A' && parts[0][0] <= 'Z' {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// HandlerFunc is an RPC handler that returns a value to encode or an error.
// Errors map to statuses: *FieldError → 400, *StaleEpochError → 409,
// *StatusError → its code and hint, anything else → 500.
type HandlerFunc func(r *http.Request) (any, error)

// Handle adapts h to an http.Handler, writing JSON and the right status.
func Handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			WriteErr(w, err)
			return
		}
		if v == nil {
			v = struct{}{}
		}
		WriteJSON(w, http.StatusOK, v)
	})
}

// WriteErr writes err with the status Handle would choose.
func WriteErr(w http.ResponseWriter, err error) {
	var fe *FieldError
	var se *StaleEpochError
	var st *StatusError
	switch {
	case errors.As(err, &fe):
		WriteError(w, http.StatusBadRequest, err.Error(), nil)
	case errors.As(err, &se):
		WriteError(w, http.StatusConflict, err.Error(), nil)
	case errors.As(err, &st):
		WriteError(w, st.Code, st.Message, st.Hint)
	default:
		WriteError(w, http.StatusInternalServerError, err.Error(), nil)
	}
}
