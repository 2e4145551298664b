package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Spark 4's JWSFilter (org.apache.spark.ui.JWSFilter), for the REST API
// (spark.master.rest.filters) and the web UIs' mutating and log endpoints
// (spark.ui.filters): a request must carry "Authorization: Bearer <jws>",
// a JWS compact serialization <header>.<payload>.<signature> with header
// {"alg":"HS256",...} signed with the key in
// spark.org.apache.spark.ui.JWSFilter.param.secretKey (base64url, at least
// 256 bits). As in Spark (jjwt), the payload is any JSON object, and "exp"
// and "nbf", when present, are enforced.

// JWSFilterClass is the filter class name operators put in
// spark.ui.filters / spark.master.rest.filters.
const JWSFilterClass = "org.apache.spark.ui.JWSFilter"

// ErrWeakJWSKey is returned for a key shorter than 256 bits.
var ErrWeakJWSKey = errors.New("protocol: JWSFilter secretKey must be base64url of at least 256 bits")

// JWSVerifier checks bearer tokens against one key.
type JWSVerifier struct {
	key []byte
	now func() time.Time
}

// DecodeJWSKey decodes a base64url secretKey (padding optional; standard
// base64 is accepted too) and checks its length.
func DecodeJWSKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) < 32 {
				return nil, ErrWeakJWSKey
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("protocol: JWSFilter secretKey is not base64url")
}

// NewJWSVerifier returns a verifier for the base64url secretKey.
func NewJWSVerifier(secretKey string) (*JWSVerifier, error) {
	k, err := DecodeJWSKey(secretKey)
	if err != nil {
		return nil, err
	}
	return &JWSVerifier{key: k, now: time.Now}, nil
}

// SignJWS returns an HS256 JWS of payload with the base64url secretKey:
// what a client sends as "Authorization: Bearer <token>".
func SignJWS(secretKey string, payload any) (string, error) {
	k, err := DecodeJWSKey(secretKey)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	signing := h + "." + base64.RawURLEncoding.EncodeToString(p)
	return signing + "." + jwsSignature(k, signing), nil
}

func jwsSignature(key []byte, signing string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signing))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// decodeSegment decodes a base64url segment, with or without padding.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Verify checks token; the error says why it is refused.
func (v *JWSVerifier) Verify(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("bearer token is not a JWS (<header>.<payload>.<signature>)")
	}
	hb, err := decodeSegment(parts[0])
	if err != nil {
		return errors.New("JWS header is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "HS256" {
		return errors.New(`JWS header must be {"alg":"HS256"}`)
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return errors.New("JWS signature is not base64url")
	}
	want, _ := base64.RawURLEncoding.DecodeString(jwsSignature(v.key, parts[0]+"."+parts[1]))
	if !hmac.Equal(sig, want) {
		return errors.New("JWS signature does not match spark.org.apache.spark.ui.JWSFilter.param.secretKey")
	}
	pb, err := decodeSegment(parts[1])
	if err != nil {
		return errors.New("JWS payload is not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil {
		return errors.New("JWS payload is not a JSON object")
	}
	now := v.now()
	if exp, ok := claims["exp"].(float64); ok && !now.Before(time.Unix(int64(exp), 0)) {
		return errors.New("JWS has expired (exp)")
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Before(time.Unix(int64(nbf), 0)) {
		return errors.New("JWS is not valid yet (nbf)")
	}
	return nil
}

// RequireJWS wraps next so that, with v set, only requests with a valid
// bearer JWS reach it; others get 401 naming why. With v nil it returns
// next.
func RequireJWS(v *JWSVerifier, next http.Handler) http.Handler {
	if v == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		var err error
		if !ok || strings.TrimSpace(tok) == "" {
			err = errors.New("an Authorization: Bearer <JWS> header is required (" + JWSFilterClass + ")")
		} else {
			err = v.Verify(strings.TrimSpace(tok))
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sparkd"`)
			http.Error(w, "authentication failed: "+err.Error(), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
