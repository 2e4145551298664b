// Package uitest checks the web UIs in a real headless browser (Debian's
// chromium, installed by `make deps`, driven with chromedp) against a real
// cluster of bin/sparkd processes, as an operator would use them: the master
// page, an application's page reached from its link, the worker page linked
// from there, and the kill button. Screenshots of every page are kept in
// $SPARKD_ARTIFACTS (default test-artifacts/ at the repository root).
package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/internal/testbin"
)

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found: `make deps` installs Debian's chromium (or set CHROMIUM to a Chrome/Chromium binary)")
	return ""
}

// startBrowser starts headless chromium for the test; it is stopped when
// the test ends (or ctx does).
func startBrowser(t *testing.T, ctx context.Context, chrome string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

func artifacts(t *testing.T) string {
	dir := os.Getenv("SPARKD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testbin.Root(), "test-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	p := filepath.Join(artifacts(t), name+".png")
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// text reads an element's text (the first match of a CSS selector).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:"<no element %s>";})()`, sel, sel)
	return strings.TrimSpace(eval[string](t, ctx, js))
}

// navigate loads url; a load that an earlier navigation's tail aborts
// (net::ERR_ABORTED, e.g. a form's redirect) is tried again, within a deadline.
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if err = chromedp.Do(ctx, chromedp.Navigate(url)); err == nil || !strings.Contains(err.Error(), "ERR_ABORTED") {
			break
		}
	}
	require.NoError(t, err, "navigate to %s", url)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

func appStateOnLeader(c *cluster.Cluster, name string) string {
	i, _, err := c.Leader()
	if err != nil {
		return ""
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/json", c.Masters[i].UIPort))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		ActiveApps []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"activeapps"`
		CompletedApps []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"completedapps"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	for _, a := range append(st.ActiveApps, st.CompletedApps...) {
		if a.Name == name {
			return a.State
		}
	}
	return ""
}

func TestMasterUIInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper, sparkd processes and chromium")
	}
	cluster.RequireDaemons(t)
	chrome := chromiumPath(t)
	c := cluster.Start(t, cluster.Options{Masters: 2, Workers: 2, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m"})
	leader, _, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	submit := c.Command(ctx, "submit", "--master", c.MasterURLs(), "--name", "ui-probe", "--executor-cores", "1",
		"--total-executor-cores", "2", "--executor-memory", "64m", "--exec", "--", "sleep", "300")
	require.NoError(t, submit.Start())
	t.Cleanup(func() { _ = syscall.Kill(-submit.Process.Pid, syscall.SIGKILL); _ = submit.Wait() })
	require.Eventually(t, func() bool { return appStateOnLeader(c, "ui-probe") == "RUNNING" }, 30*time.Second, 50*time.Millisecond)

	bctx := startBrowser(t, ctx, chrome)

	masterUI := fmt.Sprintf("http://127.0.0.1:%d/", c.Masters[leader].UIPort)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(masterUI), chromedp.WaitVisible(chromedp.CSS(`table.apps`))))
	assert.Equal(t, "ALIVE", text(t, bctx, `.navbar .badge`))
	assert.Contains(t, text(t, bctx, `h3`), "Spark Master at spark://")
	screenshot(t, bctx, "master-page")

	// A column header sorts (the shared script runs).
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#workers-table thead th:nth-child(1)`))))
	assert.True(t, eval[bool](t, bctx, `document.querySelector('#workers-table thead th').classList.contains('sorted-asc')`),
		"clicking a header sorts the table")

	// Follow the application's link to its page.
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#running-apps tbody a[href^="app/?appId="]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.executors`))))
	assert.Contains(t, text(t, bctx, `h3`), "Application: ui-probe")
	assert.Equal(t, 2, eval[int](t, bctx, `document.querySelectorAll('table.executors tbody tr').length`),
		"the application page lists its two executors")
	screenshot(t, bctx, "application-page")
	appURL := eval[string](t, bctx, `location.href`)

	// On to a worker from the executor table, and back.
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`table.executors tbody tr td:nth-child(2) a`)),
		chromedp.WaitVisible(chromedp.CSS(`#running-execs`))))
	assert.Contains(t, text(t, bctx, `.navbar .title`), "Spark Worker at")
	screenshot(t, bctx, "worker-page")

	// Kill the application with its page's button.
	navigate(t, bctx, appURL)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`form.kill button`)),
		chromedp.Click(chromedp.CSS(`form.kill button`))))
	require.Eventually(t, func() bool { return appStateOnLeader(c, "ui-probe") == "KILLED" }, 30*time.Second, 50*time.Millisecond,
		"the kill button killed the application")
	navigate(t, bctx, masterUI)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#completed-apps`))))
	screenshot(t, bctx, "master-page-after-kill")

	// The standby's page says it is standby and where the leader is.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/", c.Masters[1-leader].UIPort)),
		chromedp.WaitVisible(chromedp.CSS(`.ha .notice`))))
	assert.Contains(t, text(t, bctx, `.ha .notice`), "STANDBY")
	screenshot(t, bctx, "standby-page")
}
