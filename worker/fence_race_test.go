package worker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/protocol"
)

// A command admitted just before a newer epoch's MasterChanged must not act
// after the worker answered that MasterChanged: the new leader would never
// learn of the executor or driver it launched (a second launch for the
// grant, or an orphan), or would find one it recovered killed behind its
// back. The hook holds each command between admission and action while the
// MasterChanged of epoch 6 is answered.
func TestCommandAdmittedBeforeNewerEpochDoesNotAct(t *testing.T) {
	type cmd struct {
		what string
		path string
		body any
	}
	old := protocol.Stamp{Epoch: 5}
	cmds := []cmd{
		{"LaunchExecutor", protocol.PathLaunchExecutor, protocol.LaunchExecutor{Stamp: old, AppID: "app-race", ExecutorID: 0, Cores: 1, MemoryMB: 64,
			App: protocol.AppDescription{Name: "race", Command: []string{"sleep", "30"}, ExecutorMemMB: 64}}},
		{"LaunchDriver", protocol.PathLaunchDriver, protocol.LaunchDriver{Stamp: old, DriverID: "driver-race",
			Desc: protocol.DriverSpec{Command: []string{"sleep", "30"}, Cores: 1, MemoryMB: 64}}},
	}
	for _, c := range cmds {
		t.Run(c.what, func(t *testing.T) {
			m5 := newFakeMaster(t, 5)
			m6 := newFakeMaster(t, 6)
			cfg := testConfig(t, m5.sparkURL())
			r := startWorker(t, cfg, nil)
			r.waitRegistered(t, m5.sparkURL())

			admitted := make(chan struct{})
			release := make(chan struct{})
			testHookAdmitted = func(what string) {
				if what == c.what {
					close(admitted)
					<-release
				}
			}
			t.Cleanup(func() { testHookAdmitted = nil })

			switch b := c.body.(type) {
			case protocol.LaunchExecutor:
				b.MasterURL = m5.sparkURL()
				c.body = b
			case protocol.LaunchDriver:
				b.MasterURL = m5.sparkURL()
				c.body = b
			}
			codec := make(chan int, 1)
			go func() {
				cli := protocol.NewClient(20*time.Second, "")
				err := cli.Call(context.Background(), http.MethodPost, r.w.URL(), c.path, c.body, nil)
				code := 200
				var se *protocol.StatusError
				if errors.As(err, &se) {
					code = se.Code
				} else if err != nil {
					code = -1
				}
				codec <- code
			}()
			select {
			case <-admitted:
			case <-time.After(10 * time.Second):
				close(release)
				t.Fatal("the command never reached the worker")
			}

			// The new leader (epoch 6) recovers the worker's state.
			var st protocol.WorkerSchedulerState
			cli := protocol.NewClient(5*time.Second, "")
			err := cli.Call(context.Background(), http.MethodPost, r.w.URL(), protocol.PathWorkerMasterChanged,
				protocol.MasterChanged{Stamp: protocol.Stamp{Epoch: 6, MasterURL: m6.sparkURL()}}, &st)
			close(release)
			require.NoError(t, err)
			assert.Empty(t, st.Executors)
			assert.Empty(t, st.Drivers)

			select {
			case code := <-codec:
				assert.Equal(t, http.StatusConflict, code, "a command of epoch 5 acted after epoch 6 was answered")
			case <-time.After(15 * time.Second):
				t.Fatal("the command never finished")
			}
			// Nothing runs that the new leader does not know of.
			now := r.w.schedulerState()
			assert.Empty(t, now.Executors, "executor launched behind the new leader's back")
			assert.Empty(t, now.Drivers, "driver launched behind the new leader's back")
			_, err = os.Stat(filepath.Join(cfg.WorkDir, "app-race"))
			assert.True(t, os.IsNotExist(err), "a stale launch must not create anything")
		})
	}
}
