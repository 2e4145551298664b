package master

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

func (s *memStore) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// An oversized field, a registration beyond a record limit, and a worker
// that names someone else's address are refused with a status naming why,
// before any store write.
func TestBoundedInputsBeforeAnyWrite(t *testing.T) {
	cfg := testConfig()
	cfg.MaxApps = 1
	tm := startMaster(t, cfg, nil)
	tm.el.elect(t, 1)
	tm.waitStatus(t, protocol.MasterAlive)
	client := newPeer(t, nil)
	tm.registerApp(t, "first", client, 1, 64)
	writes := tm.store.writeCount()

	app := func(mut func(*protocol.AppDescription)) protocol.RegisterApplication {
		d := protocol.AppDescription{Name: "x", Command: []string{"/bin/true"}, ExecutorMemMB: 64}
		mut(&d)
		return protocol.RegisterApplication{App: d, ClientURL: "http://127.0.0.1:9"}
	}
	bigEnv := map[string]string{}
	for i := range protocol.MaxListLen + 1 {
		bigEnv[fmt.Sprintf("K%d", i)] = "v"
	}
	manyArgs := make([]string, 200)
	for i := range manyArgs {
		manyArgs[i] = strings.Repeat("a", 2000)
	}
	worker := func(mut func(*protocol.RegisterWorker)) protocol.RegisterWorker {
		w := protocol.RegisterWorker{ID: "worker-x", Host: "127.0.0.1", Port: 7078, URL: "http://127.0.0.1:7078",
			WebUIURL: "http://127.0.0.1:8081", Cores: 1, MemoryMB: 64}
		mut(&w)
		return w
	}
	for _, c := range []struct {
		name, path string
		body       any
		code       int
		says       string
	}{
		{"long app name", protocol.PathRegisterApp, app(func(d *protocol.AppDescription) { d.Name = strings.Repeat("n", protocol.MaxIDLen+1) }), 400, "app.name"},
		{"long argument", protocol.PathRegisterApp, app(func(d *protocol.AppDescription) {
			d.Command = []string{"sh", strings.Repeat("a", protocol.MaxTextLen+1)}
		}), 400, "app.command[1]"},
		{"too many env entries", protocol.PathRegisterApp, app(func(d *protocol.AppDescription) { d.Env = bigEnv }), 400, "app.env"},
		{"record too large", protocol.PathRegisterApp, app(func(d *protocol.AppDescription) { d.Command = manyArgs }), 400, "as a record"},
		{"application limit", protocol.PathRegisterApp, app(func(*protocol.AppDescription) {}), 429, "spark.deploy.maxApplications=1"},
		{"long worker id", protocol.PathRegisterWorker, worker(func(w *protocol.RegisterWorker) { w.ID = strings.Repeat("w", protocol.MaxIDLen+1) }), 400, "id"},
		{"worker URL elsewhere", protocol.PathRegisterWorker, worker(func(w *protocol.RegisterWorker) { w.URL = "http://169.254.169.254/latest" }), 400, "url"},
		{"worker URL with a path", protocol.PathRegisterWorker, worker(func(w *protocol.RegisterWorker) { w.URL = "http://127.0.0.1:7078/admin" }), 400, "url"},
		{"worker host not the source", protocol.PathRegisterWorker, worker(func(w *protocol.RegisterWorker) {
			w.Host, w.URL = "10.11.12.13", "http://10.11.12.13:7078"
		}), 400, "not the address this registration came from"},
		{"long driver argument", protocol.PathSubmitDriver, protocol.DriverSpec{Command: []string{strings.Repeat("a", protocol.MaxTextLen+1)}, Cores: 1, MemoryMB: 64}, 400, "command[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tm.call(http.MethodPost, c.path, c.body, nil)
			var se *protocol.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, c.code, se.Code, se.Message)
			assert.Contains(t, se.Message, c.says)
		})
	}
	assert.Equal(t, writes, tm.store.writeCount(), "nothing was written")
	assert.Len(t, tm.View().ActiveApps, 1)
	assert.Empty(t, tm.View().Workers)
}
