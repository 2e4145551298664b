package uitest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/cluster"
)

// The application UI of a `sparkd submit --tasks` job, reached as an
// operator would: from the master page to the application's page, then its
// "Application Detail UI" link; its jobs page with the running tasks, and
// its executors page.
func TestApplicationUIInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper, sparkd processes and chromium")
	}
	cluster.RequireDaemons(t)
	chrome := chromiumPath(t)
	c := cluster.Start(t, cluster.Options{Masters: 1, Workers: 1, ZooKeeper: 1, WorkerCores: 2, WorkerMemory: "512m"})
	leader, _, err := c.WaitLeader(30 * time.Second)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	tasks := filepath.Join(t.TempDir(), "tasks.txt")
	require.NoError(t, os.WriteFile(tasks, []byte(strings.Repeat("sleep 60\n", 4)), 0o644))
	submit := c.Command(ctx, "submit", "--master", c.MasterURLs(), "--name", "tasks-ui", "--executor-cores", "1",
		"--executor-memory", "64m", "--conf", "spark.ui.port=0", "--tasks", tasks)
	errOut := &cluster.SyncBuffer{}
	submit.Stderr = errOut
	require.NoError(t, submit.Start())
	t.Cleanup(func() {
		_ = submit.Process.Signal(syscall.SIGINT) // kills the application and its executors
		done := make(chan struct{})
		go func() { _ = submit.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = submit.Process.Kill()
			<-done
		}
	})
	var uiURL string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`started at (http://\S+)`).FindStringSubmatch(errOut.String())
		if m != nil {
			uiURL = m[1]
		}
		return m != nil && strings.Count(errOut.String(), "Registered executor") >= 2
	}, 30*time.Second, 20*time.Millisecond, "the job's UI is up and its executors registered")

	bctx := startBrowser(t, ctx, chrome)

	masterUI := fmt.Sprintf("http://127.0.0.1:%d/", c.Masters[leader].UIPort)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(masterUI), chromedp.WaitVisible(chromedp.CSS(`table.apps`)),
		chromedp.Click(chromedp.CSS(`#running-apps tbody a[href^="app/?appId="]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.executors`))))
	assert.Contains(t, text(t, bctx, `h3`), "Application: tasks-ui")
	href := eval[string](t, bctx, `(function(){var a=[...document.querySelectorAll('a')].find(a=>a.textContent.trim()==='Application Detail UI');return a?a.href:'';})()`)
	assert.Equal(t, uiURL+"/", href, "the application page links the application UI")

	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(href), chromedp.WaitVisible(chromedp.CSS(`#jobs-table`))))
	assert.Contains(t, text(t, bctx, `#jobs-table tbody`), "RUNNING")
	assert.Contains(t, text(t, bctx, `.navbar .title`), "tasks-ui")
	assert.Equal(t, 2, eval[int](t, bctx, `[...document.querySelectorAll('table.tasks tbody tr')].filter(r=>r.cells[3].textContent==='RUNNING').length`),
		"two tasks run, one per executor core")
	screenshot(t, bctx, "application-ui-jobs")
	// A column header sorts (the shared script runs here too).
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`table.tasks thead th:nth-child(1)`))))
	assert.True(t, eval[bool](t, bctx, `document.querySelector('table.tasks thead th').classList.contains('sorted-asc')`))

	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`.navbar .nav a[href="/executors/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#executors-table`))))
	assert.Equal(t, 2, eval[int](t, bctx, `document.querySelectorAll('#executors-table tbody tr').length`))
	assert.Contains(t, text(t, bctx, `#executors-table tbody`), "Active")
	screenshot(t, bctx, "application-ui-executors")
}
