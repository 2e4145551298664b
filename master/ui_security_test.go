package master

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sparkd/sparkd/protocol"
)

const testJWSKey = "c3BhcmtkLXRlc3Qta2V5LW9mLWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmc" // base64url, 41 bytes

func postWith(t *testing.T, u string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirectClient().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// A kill form without a valid CSRF token, from another site, or (with
// spark.ui.filters=JWSFilter) without a bearer JWS, kills nothing.
func TestKillFormAttacks(t *testing.T) {
	const app = "app-20261120224500-0000"
	v, err := protocol.NewJWSVerifier(testJWSKey)
	if err != nil {
		t.Fatal(err)
	}
	good, err := protocol.SignJWS(testJWSKey, map[string]string{"sub": "operator"})
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := protocol.SignJWS("b3RoZXIta2V5LW9mLWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmctZW5vdWdo", map[string]string{})
	fa := newFakeActions(sampleView())
	srv := startUI(t, fa, UIOptions{KillEnabled: true, JWS: v})
	token := csrfOf(t, srv.URL)
	form := func(csrf string) url.Values {
		f := url.Values{"id": {app}, "terminate": {"true"}}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		return f
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, c := range []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
		says   string
	}{
		{"no bearer token", form(token), nil, 401, "Authorization: Bearer"},
		{"bearer signed with another key", form(token), bearer(bad), 401, "does not match"},
		{"no CSRF token", form(""), bearer(good), 403, "no CSRF token"},
		{"forged CSRF token", form("1700000000.deadbeef"), bearer(good), 403, "not valid"},
		{"cross-site origin", form(token), http.Header{"Authorization": {"Bearer " + good}, "Origin": {"http://evil.example"}}, 403, "not this web UI"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := postWith(t, srv.URL+"/app/kill/", c.form, c.header)
			expectEqual(t, c.want, code, "status (body %q)", body)
			expectContains(t, body, c.says)
			expectEqual(t, []string(nil), fa.kills())
		})
	}
	code, body := postWith(t, srv.URL+"/app/kill/", form(token), bearer(good))
	expectEqual(t, http.StatusSeeOther, code, "body %q", body)
	expectEqual(t, []string{"app:" + app}, fa.kills())
}

// With spark.master.rest.filters=JWSFilter, a REST submission without a
// valid bearer JWS is refused (401) and submits nothing.
func TestRESTRequiresJWS(t *testing.T) {
	v, err := protocol.NewJWSVerifier(testJWSKey)
	if err != nil {
		t.Fatal(err)
	}
	fa := newFakeActions(sampleView())
	srv := httptest.NewServer(newRESTServer(fa, UIOptions{JWS: v}, func(string) string { return "" }))
	t.Cleanup(srv.Close)
	send := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/submissions/create", strings.NewReader(goodCreate))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	expired, _ := protocol.SignJWS(testJWSKey, map[string]int64{"exp": 1})
	expectEqual(t, http.StatusUnauthorized, send(""))
	expectEqual(t, http.StatusUnauthorized, send("Bearer not.a.jws"))
	expectEqual(t, http.StatusUnauthorized, send("Bearer "+expired))
	expectEqual(t, 0, len(fa.submitted))
	good, _ := protocol.SignJWS(testJWSKey, map[string]string{})
	expectEqual(t, http.StatusOK, send("Bearer "+good))
	expectEqual(t, 1, len(fa.submitted))
}
