package recovery

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	if !testing.Verbose() {
		l.SetLevel(logrus.WarnLevel)
	}
	return logrus.NewEntry(l).WithField("test", t.Name())
}

// elect runs el in the background until the test ends and waits for the
// first term; it returns the term's context and epoch.
func elect(t *testing.T, el Elector, me Candidate) (context.Context, int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type term struct {
		ctx   context.Context
		epoch int64
	}
	got := make(chan term, 1)
	done := make(chan error, 1)
	go func() {
		done <- el.Run(ctx, me, Callbacks{OnElected: func(c context.Context, e int64) { got <- term{c, e} }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	select {
	case tm := <-got:
		return tm.ctx, tm.epoch
	case err := <-done:
		t.Fatalf("Run returned before electing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not elected within 10s")
	}
	return nil, 0
}

func app(id string) AppRecord {
	return AppRecord{ID: id, ClientURL: "http://client:1", SubmitTime: time.Unix(1700000000, 0).UTC()}
}

func TestFilesystemRoundTrip(t *testing.T) {
	dir := t.TempDir()
	el, st, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()

	// Before the term starts, writes are refused.
	require.ErrorIs(t, st.PutApp(ctx, app("a0")), ErrNotLeader)

	_, epoch := elect(t, el, Candidate{ID: "m1", RPCURL: "spark://m1:7077"})
	assert.Equal(t, int64(1), epoch)
	info, ok := el.Leader()
	require.True(t, ok)
	assert.Equal(t, "m1", info.ID)

	require.NoError(t, st.PutApp(ctx, app("a1")))
	require.NoError(t, st.PutApp(ctx, app("a2")))
	require.NoError(t, st.PutDriver(ctx, DriverRecord{ID: "d1", WorkerID: "w1"}))
	require.NoError(t, st.PutWorker(ctx, WorkerRecord{ID: "w1", Host: "h", Port: 1, Cores: 4}))
	require.NoError(t, st.Remove(ctx, KindApp, "a2"))
	require.NoError(t, st.Remove(ctx, KindApp, "never-existed"))

	s, err := st.Read(ctx)
	require.NoError(t, err)
	require.Len(t, s.Apps, 1)
	assert.Equal(t, "a1", s.Apps[0].ID)
	assert.Equal(t, FormatVersion, s.Apps[0].Format)
	require.Len(t, s.Drivers, 1)
	assert.Equal(t, "w1", s.Drivers[0].WorkerID)
	require.Len(t, s.Workers, 1)
	assert.Empty(t, s.Quarantined)

	// Bad input is refused with a clear error.
	assert.ErrorIs(t, st.PutApp(ctx, app("x/y")), ErrBadID)
	big := app("big")
	big.Desc.Name = strings.Repeat("x", MaxRecordSize)
	err = st.PutApp(ctx, big)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "app_big")

	// Resign ends the term: writes are refused again.
	require.NoError(t, el.Resign(ctx))
	require.Eventually(t, func() bool {
		return errors.Is(st.PutApp(ctx, app("a3")), ErrNotLeader)
	}, 5*time.Second, 10*time.Millisecond)
}

func TestFilesystemEpochGrowsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	var last int64
	for i := 0; i < 3; i++ {
		el, st, err := NewFilesystem(dir, testLog(t))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan int64, 1)
		done := make(chan error, 1)
		go func() {
			done <- el.Run(ctx, Candidate{ID: "m"}, Callbacks{OnElected: func(_ context.Context, e int64) { got <- e }})
		}()
		select {
		case e := <-got:
			assert.Greater(t, e, last)
			last = e
		case <-time.After(10 * time.Second):
			t.Fatal("not elected")
		}
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, st.Close())
	}
	assert.Equal(t, int64(3), last)

	// A corrupt epoch file is a clear setup error, not a silent reset.
	require.NoError(t, os.WriteFile(filepath.Join(dir, fsEpochFile), []byte("{nope"), 0o600))
	el, st, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = el.Run(ctx, Candidate{ID: "m"}, Callbacks{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "epoch")
}

func TestFilesystemSecondMasterRefused(t *testing.T) {
	dir := t.TempDir()
	_, st, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)

	_, _, err = NewFilesystem(dir, testLog(t))
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), dir)

	// Once the first master is gone, the directory is free again.
	require.NoError(t, st.Close())
	require.NoError(t, st.Close()) // idempotent
	_, st2, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	require.NoError(t, st2.Close())
}

func TestFilesystemCrashBetweenWriteAndRename(t *testing.T) {
	dir := t.TempDir()
	el, st, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	_, _ = elect(t, el, Candidate{ID: "m1"})
	ctx := context.Background()

	old := app("a1")
	old.ClientURL = "http://old:1"
	require.NoError(t, st.PutApp(ctx, old))

	// The next write "crashes" after its temp file is fsynced but before
	// the rename.
	crash := errors.New("simulated crash")
	var tmpSeen string
	st.(*fsStore).beforeRename = func(tmp string) error { tmpSeen = tmp; return crash }
	updated := app("a1")
	updated.ClientURL = "http://new:1"
	require.ErrorIs(t, st.PutApp(ctx, updated), crash)
	_, err = os.Stat(tmpSeen)
	require.NoError(t, err, "the crash leaves its temp file behind")
	require.NoError(t, st.Close())

	// A restarted master sees the old record, intact, and no debris.
	el2, st2, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	defer st2.Close()
	_, _ = elect(t, el2, Candidate{ID: "m1"})
	s, err := st2.Read(ctx)
	require.NoError(t, err)
	require.Len(t, s.Apps, 1)
	assert.Equal(t, "http://old:1", s.Apps[0].ClientURL)
	assert.Empty(t, s.Quarantined)
	_, err = os.Stat(tmpSeen)
	assert.ErrorIs(t, err, os.ErrNotExist, "temp debris is removed at start")
}

func TestFilesystemCorruptRecordQuarantined(t *testing.T) {
	dir := t.TempDir()
	el, st, err := NewFilesystem(dir, testLog(t))
	require.NoError(t, err)
	defer st.Close()
	_, _ = elect(t, el, Candidate{ID: "m1"})
	ctx := context.Background()
	require.NoError(t, st.PutApp(ctx, app("good1")))
	require.NoError(t, st.PutApp(ctx, app("good2")))

	bad := map[string]string{
		"app_bad":       "{not json",
		"driver_oldfmt": `{"id":"oldfmt"}`,
		"worker_future": `{"format":99,"id":"future"}`,
		"app_mismatch":  `{"format":1,"id":"other"}`,
	}
	for name, content := range bad {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	// Files that are not records are left alone.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("operator notes"), 0o600))

	s, err := st.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, s.Apps, 2)
	require.Len(t, s.Quarantined, len(bad))
	for _, q := range s.Quarantined {
		assert.ErrorIs(t, q.Err, ErrBadRecord)
		assert.Contains(t, q.Err.Error(), q.Key)
		// Moved, not deleted: the content is intact in quarantine/.
		data, err := os.ReadFile(q.MovedTo)
		require.NoError(t, err, q.Key)
		assert.Equal(t, bad[q.Key], string(data))
		_, err = os.Stat(filepath.Join(dir, q.Key))
		assert.ErrorIs(t, err, os.ErrNotExist)
	}
	_, err = os.Stat(filepath.Join(dir, "README"))
	assert.NoError(t, err)

	// A second corrupt record with the same key does not overwrite the first.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app_bad"), []byte("again"), 0o600))
	s, err = st.Read(ctx)
	require.NoError(t, err)
	require.Len(t, s.Quarantined, 1)
	assert.Equal(t, filepath.Join(dir, fsQuarantineDir, "app_bad.1"), s.Quarantined[0].MovedTo)
	data, err := os.ReadFile(filepath.Join(dir, fsQuarantineDir, "app_bad"))
	require.NoError(t, err)
	assert.Equal(t, "{not json", string(data))
}

func TestNone(t *testing.T) {
	el, st := NewNone()
	ctx := context.Background()
	_, epoch := elect(t, el, Candidate{ID: "m1"})
	assert.Equal(t, int64(1), epoch)
	require.NoError(t, st.PutApp(ctx, app("a1")))
	assert.ErrorIs(t, st.PutApp(ctx, app("")), ErrBadID)
	s, err := st.Read(ctx)
	require.NoError(t, err)
	assert.True(t, s.Empty())
	assert.True(t, el.LastContact().IsZero())
	require.NoError(t, st.Close())
}

func TestElectorCallbacksOrder(t *testing.T) {
	el, _ := NewNone()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events []string
	done := make(chan error, 1)
	elected := make(chan context.Context, 1)
	revoked := make(chan struct{})
	go func() {
		done <- el.Run(ctx, Candidate{ID: "m1"}, Callbacks{
			OnLeaderChanged: func(l LeaderInfo, ok bool) {
				if ok {
					events = append(events, "leader:"+l.ID)
				} else {
					events = append(events, "leader:none")
				}
			},
			OnElected: func(c context.Context, e int64) { events = append(events, "elected"); elected <- c },
			OnRevoked: func(err error) {
				assert.ErrorIs(t, err, ErrResigned)
				events = append(events, "revoked")
				close(revoked)
			},
		})
	}()
	var termCtx context.Context
	select {
	case termCtx = <-elected:
	case <-time.After(10 * time.Second):
		t.Fatal("not elected")
	}
	assert.NoError(t, el.Confirm(ctx), "a single master confirms while elected")
	done2, cancel2 := context.WithCancel(ctx)
	cancel2()
	assert.ErrorIs(t, el.Confirm(done2), ErrNotLeader, "a cancelled ctx proves nothing")
	require.NoError(t, el.Resign(ctx))
	select {
	case <-revoked:
	case <-time.After(10 * time.Second):
		t.Fatal("not revoked")
	}
	assert.ErrorIs(t, el.Confirm(ctx), ErrNotLeader, "no term after Resign")
	select {
	case <-termCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("term context not cancelled")
	}
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, []string{"leader:m1", "elected", "revoked", "leader:none"}, events)
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		key, data, want string
	}{
		{"nokind", `{}`, "no <kind>_ prefix"},
		{"job_1", `{}`, `unknown kind "job"`},
		{"app_1", `[]`, "cannot unmarshal"},
		{"app_1", `{"id":"1"}`, `missing field "format"`},
		{"app_1", `{"format":2,"id":"1"}`, "format 2 is not supported"},
		{"app_1", `{"format":1,"id":"2"}`, `field "id" is "2"`},
		{"app_1", `{"format":1,"id":"1","submitTime":"yesterday"}`, "app_1"},
	} {
		t.Run(tc.key+tc.data, func(t *testing.T) {
			var st State
			err := Decode(tc.key, []byte(tc.data), &st)
			require.ErrorIs(t, err, ErrBadRecord)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	var st State
	require.NoError(t, Decode("app_1", []byte(`{"format":1,"id":"1","futureField":true}`), &st))
	assert.Len(t, st.Apps, 1)
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeNone, "none": ModeNone, "FILESYSTEM": ModeFilesystem, " zookeeper ": ModeZooKeeper} {
		got, err := ParseMode(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"ROCKSDB", "CUSTOM", "zk"} {
		_, err := ParseMode(in)
		require.ErrorIs(t, err, ErrBadMode, in)
		assert.Contains(t, err.Error(), in)
	}
}
