package master

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// csrfTokens are the kill forms' anti-CSRF tokens: "<unix time>.<HMAC>",
// under a key random per process, valid for csrfTTL. A page of another
// site cannot read them (same-origin policy), so it cannot make an
// operator's browser POST a kill form. A form whose Origin (or Referer)
// names another host is refused too.
type csrfTokens struct{ key []byte }

const csrfTTL = 12 * time.Hour

func newCSRFTokens() csrfTokens {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return csrfTokens{key: k}
}

func (c csrfTokens) mac(ts string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("sparkd ui kill " + ts))
	return hex.EncodeToString(m.Sum(nil))
}

func (c csrfTokens) token(now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + c.mac(ts)
}

// check returns why r's form is refused, or "".
func (c csrfTokens) check(r *http.Request, now time.Time) string {
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" || v == "null" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return h + " " + v + " is not this web UI"
		}
	}
	tok := r.PostForm.Get("csrf")
	ts, mac, ok := strings.Cut(tok, ".")
	if tok == "" || !ok {
		return "the form has no CSRF token (reload the page)"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(c.mac(ts))) {
		return "the form's CSRF token is not valid (reload the page)"
	}
	if age := now.Sub(time.Unix(sec, 0)); age > csrfTTL || age < -time.Minute {
		return "the form's CSRF token has expired (reload the page)"
	}
	return ""
}
