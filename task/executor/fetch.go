package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task"
)

// ErrChecksum is returned by Fetch when a download's sha256 is not the one
// the driver announced; the file is removed, never run.
var ErrChecksum = errors.New("executor: checksum mismatch")

// FetchSpec names a file the driver serves (its program, or one of its
// --files): NAME:SHA256:URL on the command line.
type FetchSpec struct {
	Name   string // file name in the executor's directory
	SHA256 string // hex, lower case
	URL    string // http:// URL on the driver's file server
}

func (s FetchSpec) String() string { return s.Name + ":" + s.SHA256 + ":" + s.URL }

// ParseFetchSpec parses NAME:SHA256:URL, naming what is wrong.
func ParseFetchSpec(s string) (FetchSpec, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return FetchSpec{}, fmt.Errorf("%w: fetch spec %q: want NAME:SHA256:URL", ErrConfig, s)
	}
	f := FetchSpec{Name: parts[0], SHA256: strings.ToLower(parts[1]), URL: parts[2]}
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, "/\\\x00") {
		return FetchSpec{}, fmt.Errorf("%w: fetch spec %q: name %q is not a plain file name", ErrConfig, s, f.Name)
	}
	if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
		return FetchSpec{}, fmt.Errorf("%w: fetch spec %q: %q is not a sha256 (64 hex digits)", ErrConfig, s, f.SHA256)
	}
	if !strings.HasPrefix(f.URL, "http://") && !strings.HasPrefix(f.URL, "https://") {
		return FetchSpec{}, fmt.Errorf("%w: fetch spec %q: URL %q is not http:// or https://", ErrConfig, s, f.URL)
	}
	return f, nil
}

// FileSHA256 is the hex sha256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DefaultFetchTimeout is spark.files.fetchTimeout.
const DefaultFetchTimeout = 60 * time.Second

// Fetch makes spec's file available under cacheDir/SHA256/NAME and returns
// that path. A cached copy whose content still has the sha256 is used as
// it is (the executors of one application on one worker share the cache,
// which goes with the application's directory); otherwise the file is
// downloaded (signed with secret when set) to a temporary file, checked,
// and renamed into place, so that a partial or corrupted download is never
// seen under the final name. A download with another sha256 is an
// ErrChecksum error and is deleted. mode is the file's permission bits
// (0o755 for a program).
func Fetch(ctx context.Context, spec FetchSpec, cacheDir, secret string, mode os.FileMode) (string, error) {
	dir := filepath.Join(cacheDir, spec.SHA256)
	final := filepath.Join(dir, spec.Name)
	if sum, err := FileSHA256(final); err == nil && sum == spec.SHA256 {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("executor: fetch %s: %w", spec.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL, nil)
	if err != nil {
		return "", fmt.Errorf("executor: fetch %s: %w", spec.Name, err)
	}
	if secret != "" {
		protocol.Sign(req, secret, nil)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("executor: fetch %s from %s: %w", spec.Name, spec.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("executor: fetch %s from %s: HTTP %d: %s", spec.Name, spec.URL, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", fmt.Errorf("executor: fetch %s: %w", spec.Name, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("executor: fetch %s from %s: %w", spec.Name, spec.URL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != spec.SHA256 {
		return "", fmt.Errorf("%w: %s from %s (%d bytes) has sha256 %s, the driver announced %s; it is deleted and not run",
			ErrChecksum, spec.Name, spec.URL, n, got, spec.SHA256)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return "", fmt.Errorf("executor: fetch %s: %w", spec.Name, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("executor: fetch %s: %w", spec.Name, err)
	}
	return final, nil
}

// ReportStartFailure tells the driver why this executor could not start
// (task.PathExecutorFailed), so that its user sees the reason and the job
// does not wait for executors that can never start. Best effort: bounded
// by ctx.
func ReportStartFailure(ctx context.Context, driverURL, secret, appID, executorID, host string, cause error) error {
	c := protocol.NewClient(5*time.Second, secret)
	return c.Call(ctx, http.MethodPost, driverURL, task.PathExecutorFailed,
		task.ExecutorFailed{AppID: appID, ExecutorID: executorID, Host: host, Error: cause.Error()}, nil)
}

// Place puts a fetched file into dir under its name: a hard link to the
// cached copy, or a copy where links are not possible.
func Place(cached, dir string) (string, error) {
	dst := filepath.Join(dir, filepath.Base(cached))
	_ = os.Remove(dst)
	if err := os.Link(cached, dst); err == nil {
		return dst, nil
	}
	in, err := os.Open(cached)
	if err != nil {
		return "", err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("copy %s: %w", cached, err)
	}
	return dst, out.Close()
}

// The environment `sparkd executor --fetch` gives the program it fetched
// and runs, on top of the worker's SPARK_* variables: the program sees
// EnvGoExecutor=1 and serves its registered functions (package spark)
// instead of running its job.
const (
	EnvGoExecutor     = "SPARKD_GO_EXECUTOR"
	EnvHost           = "SPARKD_EXECUTOR_HOST"   // the --hostname the driver should see
	EnvNetworkTimeout = "SPARKD_NETWORK_TIMEOUT" // spark.network.timeout until the driver sends its own, e.g. "120000ms"
	EnvAuthSecret     = "_SPARK_AUTH_SECRET"     // spark.authenticate.secret (Spark's SecurityManager.ENV_AUTH_SECRET)
)
