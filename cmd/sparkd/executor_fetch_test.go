package main

// `sparkd executor --fetch`, the launcher of a Go driver's executors, as a
// real process: it fetches the program, checks its sha256, caches it per
// application, and runs it; a corrupted download is never run.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/testbin"
)

func TestExecutorFetch(t *testing.T) {
	bin := testbin.Path(t)
	root := t.TempDir()
	marker := filepath.Join(root, "ran")
	prog := "#!/bin/sh\necho \"$SPARKD_GO_EXECUTOR $SPARK_EXECUTOR_ID $SPARK_EXECUTOR_CORES $PWD\" > " + marker + "\n"
	sum := sha256.Sum256([]byte(prog))
	good := hex.EncodeToString(sum[:])
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/prog" {
			http.NotFound(w, r)
			return
		}
		gets.Add(1)
		_, _ = w.Write([]byte(prog))
	}))
	defer srv.Close()
	run := func(t *testing.T, exec0, spec string) (int, string) {
		t.Helper()
		wd := filepath.Join(root, "app-1", exec0)
		require.NoError(t, os.MkdirAll(wd, 0o755))
		cmd := exec.Command(bin, "executor", "--fetch", spec, "--driver-url", "http://127.0.0.1:1", "--app-id", "app-1",
			"--executor-id", exec0, "--cores", "2")
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			code = ee.ExitCode()
		}
		return code, string(out)
	}

	t.Run("a corrupted download fails the executor and is not run", func(t *testing.T) {
		bad := strings.Repeat("ab", 32)
		code, out := run(t, "0", "prog:"+bad+":"+srv.URL+"/files/prog")
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "checksum mismatch: prog from "+srv.URL+"/files/prog")
		assert.Contains(t, out, "has sha256 "+good+", the driver announced "+bad+"; it is deleted and not run")
		assert.NoFileExists(t, marker, "the corrupted program did not run")
		left, _ := filepath.Glob(filepath.Join(root, "app-1", "files", "*", "*"))
		assert.Empty(t, left, "nothing is left in the cache")
	})

	t.Run("a good download is cached per application and run as the executor", func(t *testing.T) {
		before := gets.Load()
		code, out := run(t, "1", "prog:"+good+":"+srv.URL+"/files/prog")
		require.Equal(t, 0, code, out)
		got, err := os.ReadFile(marker)
		require.NoError(t, err)
		assert.Equal(t, "1 1 2 "+filepath.Join(root, "app-1", "1")+"\n", string(got), "run in executor mode, in the executor's directory")
		assert.FileExists(t, filepath.Join(root, "app-1", "files", good, "prog"))
		require.NoError(t, os.Remove(marker))
		code, out = run(t, "2", "prog:"+good+":"+srv.URL+"/files/prog")
		require.Equal(t, 0, code, out)
		assert.FileExists(t, marker)
		assert.Equal(t, before+1, gets.Load(), "the second executor of the application used the cached copy")
	})

	t.Run("bad specs are refused with a clear error", func(t *testing.T) {
		for spec, want := range map[string]string{
			"prog":                         "want NAME:SHA256:URL",
			"../x:" + good + ":http://h/f": "is not a plain file name",
			"prog:1234:http://h/f":         "is not a sha256",
			"prog:" + good + ":ftp://h/f":  "is not http:// or https://",
		} {
			code, out := run(t, "9", spec)
			assert.Equal(t, 2, code, spec)
			assert.Contains(t, out, want, spec)
		}
	})
}
