package master

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// startUI serves the web UI over a real loopback listener (httptest binds
// 127.0.0.1:0) and closes it when the test ends.
func startUI(t *testing.T, a Actions, opts UIOptions) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newWebUI(a, opts, func() time.Time { return testNow }))
	t.Cleanup(srv.Close)
	return srv
}

func noRedirectClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirectClient().Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func postForm(t *testing.T, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirectClient().PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// csrfOf reads the kill forms' CSRF token from the master page.
func csrfOf(t *testing.T, base string) string {
	t.Helper()
	_, body, _ := get(t, base+"/")
	const marker = `<meta name="sparkd-csrf" content="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no CSRF token on the page")
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func expectContains(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func expectNotContains(t *testing.T, body string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(body, n) {
			t.Errorf("page unexpectedly contains %q", n)
		}
	}
}

func TestMasterPageAlive(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{KillEnabled: true})
	code, body, h := get(t, srv.URL+"/")
	expectEqual(t, http.StatusOK, code)
	expectEqual(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	expectContains(t, body,
		"<title>Spark Master at spark://m1:7077</title>",
		"<strong>URL:</strong> spark://m1:7077",
		"<strong>REST URL:</strong> spark://m1:6066 <span class=\"rest-uri\"> (cluster mode)</span>",
		"<strong>Workers:</strong> 2 Alive, 1 Dead, 0 Decommissioned, 0 Unknown",
		"<strong>Cores in use:</strong> 16 Total, 2 Used",
		"<strong>Memory in use:</strong> 32.0 GiB Total, 2.0 GiB Used",
		"<strong>Applications:</strong> 2 Running, 1 Completed",
		"<strong>Drivers:</strong> 2 Running (1 Waiting), 1 Completed (1 Killed, 0 Failed, 0 Error, 0 Relaunching)",
		"<strong>Status:</strong> ALIVE",
		"<strong>Epoch:</strong> 7",
		"<strong>Leader:</strong> <a href=\"http://m1:8080\">spark://m1:7077</a> (master-1)",
		"Workers (3)", "Running Applications (2)", "Completed Applications (1)",
		"Running Drivers (2)", "Completed Drivers (1)",
		"<th>Worker Id</th><th>Address</th><th>State</th><th>Cores</th><th>Memory</th>",
		"<th>Application ID</th><th>Name</th><th>Cores</th><th>Memory per Executor</th><th>Resources Per Executor</th><th>Submitted Time</th><th>User</th><th>State</th><th>Duration</th>",
		"<th>Submission ID</th><th>Submitted Time</th><th>Worker</th><th>State</th><th>Cores</th><th>Memory</th><th>Resources</th><th>Main Class</th>",
		"8 (2 Used)", "16.0 GiB (2.0 GiB Used)",
		`<a href="http://w1:8081">worker-20261120224000-w1-35000</a>`,
		"each executor needs 10 cores but the largest worker has 8",
		`action="app/kill/" method="POST"`, `name="id" value="app-20261120224500-0000"`,
		`name="terminate" value="true"`,
		`action="driver/kill/" method="POST"`, `name="id" value="driver-20261120224700-0001"`,
		"Big &lt;exec&gt;", // escaped by html/template
		"10 min",           // duration of the running app
		"1024.0 MiB",
		"org.example.Main",
	)
	// The dead worker's id is not a link; finished things have no kill form.
	expectNotContains(t, body, `<a href="http://w3:8081">`, `value="app-20261120224000-0000"`, `value="driver-20261120224000-0000"`, "Big <exec>")
}

func TestMasterPageStandbyHasNoKillForms(t *testing.T) {
	v := sampleView()
	v.Status = protocol.MasterStandby
	srv := startUI(t, newFakeActions(v), UIOptions{KillEnabled: true})
	_, body, _ := get(t, srv.URL+"/")
	expectContains(t, body, "<strong>Status:</strong> STANDBY")
	expectNotContains(t, body, "app/kill/", "driver/kill/")

	srv2 := startUI(t, newFakeActions(standbyView()), UIOptions{KillEnabled: true})
	_, body, _ = get(t, srv2.URL+"/")
	expectContains(t, body, "<strong>Workers:</strong> 0 Alive, 0 Dead, 0 Decommissioned, 0 Unknown",
		"<strong>Cores in use:</strong> 0 Total, 0 Used", "<strong>Memory in use:</strong> 0.0 B Total, 0.0 B Used",
		"Workers (0)", "spark://m1:7077")
	// Spark shows the drivers tables only when there are drivers.
	expectNotContains(t, body, "Running Drivers")
}

func TestMasterPageKillDisabled(t *testing.T) {
	srv := startUI(t, newFakeActions(sampleView()), UIOptions{KillEnabled: false})
	_, body, _ := get(t, srv.URL+"/")
	expectNotContains(t, body, "app/kill/", "driver/kill/")
}

func TestMasterPageNoRESTURL(t *testing.T) {
	v := sampleView()
	v.RESTURL = ""
	srv := startUI(t, newFakeActions(v), UIOptions{})
	_, body, _ := get(t, srv.URL+"/")
	expectNotContains(t, body, "REST URL:")
}

func TestKillForms(t *testing.T) {
	const app, drv = "app-20261120224500-0000", "driver-20261120224700-0001"
	tests := []struct {
		name      string
		view      func() View
		kill      bool
		path      string
		form      url.Values
		wantCode  int
		wantKills []string
	}{
		{"kill app", sampleView, true, "/app/kill/", url.Values{"id": {app}, "terminate": {"true"}}, http.StatusSeeOther, []string{"app:" + app}},
		{"kill driver", sampleView, true, "/driver/kill/", url.Values{"id": {drv}, "terminate": {"true"}}, http.StatusSeeOther, []string{"driver:" + drv}},
		{"terminate not true does nothing", sampleView, true, "/app/kill/", url.Values{"id": {app}}, http.StatusSeeOther, nil},
		{"missing id", sampleView, true, "/app/kill/", url.Values{"terminate": {"true"}}, http.StatusBadRequest, nil},
		{"unknown app", sampleView, true, "/app/kill/", url.Values{"id": {"app-nope"}, "terminate": {"true"}}, http.StatusNotFound, nil},
		{"kill disabled", sampleView, false, "/app/kill/", url.Values{"id": {app}, "terminate": {"true"}}, http.StatusForbidden, nil},
		{"standby refuses", standbyView, true, "/driver/kill/", url.Values{"id": {drv}, "terminate": {"true"}}, http.StatusServiceUnavailable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFakeActions(tt.view())
			srv := startUI(t, fa, UIOptions{KillEnabled: tt.kill})
			tt.form.Set("csrf", csrfOf(t, srv.URL))
			code, body, h := postForm(t, srv.URL+tt.path, tt.form)
			expectEqual(t, tt.wantCode, code, "status (body %q)", body)
			if code == http.StatusSeeOther {
				expectEqual(t, "/", h.Get("Location"))
			}
			expectEqual(t, tt.wantKills, fa.kills())
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		fa := newFakeActions(sampleView())
		srv := startUI(t, fa, UIOptions{KillEnabled: true})
		code, _, _ := get(t, srv.URL+"/app/kill/?id="+app+"&terminate=true")
		expectEqual(t, http.StatusMethodNotAllowed, code)
		expectEqual(t, []string(nil), fa.kills())
	})
}

func TestReadyzHealthz(t *testing.T) {
	for _, st := range []protocol.MasterState{protocol.MasterAlive, protocol.MasterStandby, protocol.MasterRecovering, protocol.MasterCompletingRecovery} {
		t.Run(string(st), func(t *testing.T) {
			fa := newFakeActions(sampleView())
			fa.setStatus(st)
			srv := startUI(t, fa, UIOptions{})
			code, body, _ := get(t, srv.URL+"/readyz")
			want := http.StatusServiceUnavailable
			if st == protocol.MasterAlive {
				want = http.StatusOK
			}
			expectEqual(t, want, code)
			expectEqual(t, string(st)+"\n", body)
			code, _, _ = get(t, srv.URL+"/healthz")
			expectEqual(t, http.StatusOK, code)
		})
	}
}

func TestFormatters(t *testing.T) {
	for mb, want := range map[int]string{0: "0.0 B", 1: "1024.0 KiB", 1024: "1024.0 MiB", 2048: "2.0 GiB", 15360: "15.0 GiB", 4 << 20: "4.0 TiB"} {
		expectEqual(t, want, protocol.MegabytesString(mb), "MegabytesString(%d)", mb)
	}
	for d, want := range map[time.Duration]string{
		50 * time.Millisecond: "50 ms", 500 * time.Millisecond: "0.5 s", 42 * time.Second: "42 s",
		5 * time.Minute: "5.0 min", 30 * time.Minute: "30 min", 3 * time.Hour: "3.0 h",
	} {
		expectEqual(t, want, formatDuration(d), "formatDuration(%v)", d)
	}
}
