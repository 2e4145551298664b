package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// File names inside a FILESYSTEM recovery directory. Records are files
// named by their key ("app_<id>", ...); everything else starts with '.' or
// is one of these.
const (
	fsLockFile      = ".lock"
	fsEpochFile     = "epoch"
	fsQuarantineDir = "quarantine"
	fsTmpPrefix     = ".tmp-"
)

// NewFilesystem returns the FILESYSTEM recovery mode
// (spark.deploy.recoveryDirectory): a single master that is always elected,
// and a Store keeping one file per record in dir.
//
// It creates dir (0700) if needed and takes an exclusive flock on
// dir/.lock; a second master on the same directory fails with an error
// wrapping ErrLocked. Store.Close releases the lock. Leftover temp files of
// a crashed write are removed. The epoch is kept in dir/epoch and grows by
// one each time Run elects the master, so epochs also grow across restarts.
//
// Each write goes to a temp file which is fsynced, renamed over the record
// and followed by an fsync of the directory; a crash at any point leaves
// either the old or the new record, never a torn one. Undecodable files are
// moved to dir/quarantine/ and reported, never deleted.
func NewFilesystem(dir string, log *logrus.Entry) (Elector, Store, error) {
	if dir == "" {
		return nil, nil, errors.New("recovery: spark.deploy.recoveryDirectory is empty")
	}
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	log = log.WithField("recoveryDirectory", dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("recovery: create recovery directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, fsLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("recovery: open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("recovery: %s: %w", dir, ErrLocked)
		}
		return nil, nil, fmt.Errorf("recovery: lock %s: %w", filepath.Join(dir, fsLockFile), err)
	}
	s := &fsStore{dir: dir, log: log, lock: lock}
	// Under the lock no write is in progress: temp files are debris of a
	// crash, never a committed record.
	entries, err := os.ReadDir(dir)
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("recovery: read recovery directory: %w", err)
	}
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), fsTmpPrefix) {
			log.WithField("file", ent.Name()).Warn("removing temp file left by an interrupted write")
			if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil {
				log.WithError(err).Warn("cannot remove temp file")
			}
		}
	}
	el := newLocalElector(log, s.nextEpoch, s.setActive)
	return el, s, nil
}

type fsStore struct {
	dir string
	log *logrus.Entry

	mu     sync.Mutex // serializes writes; guards the fields below
	lock   *os.File   // nil once closed
	active bool       // inside a term
	// beforeRename, if set (tests), runs between fsync of the temp file and
	// the rename; an error aborts the write as a crash would.
	beforeRename func(tmp string) error
}

type fsEpoch struct {
	Epoch int64     `json:"epoch"`
	Since time.Time `json:"since"`
}

func (s *fsStore) setActive(active bool) {
	s.mu.Lock()
	s.active = active
	s.mu.Unlock()
}

// nextEpoch reads dir/epoch, adds one and stores it durably.
func (s *fsStore) nextEpoch() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return 0, errors.New("recovery: store closed")
	}
	path := filepath.Join(s.dir, fsEpochFile)
	var cur fsEpoch
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("recovery: read %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &cur); err != nil {
			return 0, fmt.Errorf("recovery: %s is not a valid epoch file (fix or remove it): %w", path, err)
		}
	}
	next := fsEpoch{Epoch: cur.Epoch + 1, Since: time.Now().UTC()}
	out, err := json.Marshal(next)
	if err != nil {
		return 0, err
	}
	if err := s.writeFile(fsEpochFile, out); err != nil {
		return 0, err
	}
	return next.Epoch, nil
}

// writeFile atomically replaces dir/name with data: temp file, fsync,
// rename, fsync directory. Callers hold s.mu.
func (s *fsStore) writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(s.dir, fsTmpPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("recovery: write %s: %w", name, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("recovery: write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("recovery: fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("recovery: close %s: %w", tmpName, err)
	}
	if s.beforeRename != nil {
		if err := s.beforeRename(tmpName); err != nil {
			ok = true // a simulated crash leaves the temp file behind
			return err
		}
	}
	if err := os.Rename(tmpName, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("recovery: rename %s: %w", name, err)
	}
	ok = true
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("recovery: fsync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("recovery: fsync directory %s: %w", dir, err)
	}
	return nil
}

// checkWritable is called with s.mu held.
func (s *fsStore) checkWritable() error {
	if s.lock == nil {
		return errors.New("recovery: store closed")
	}
	if !s.active {
		return ErrNotLeader
	}
	return nil
}

func (s *fsStore) put(ctx context.Context, r any) error {
	key, data, err := Encode(r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWritable(); err != nil {
		return fmt.Errorf("recovery: put %s: %w", key, err)
	}
	return s.writeFile(key, data)
}

func (s *fsStore) PutApp(ctx context.Context, r AppRecord) error       { return s.put(ctx, &r) }
func (s *fsStore) PutDriver(ctx context.Context, r DriverRecord) error { return s.put(ctx, &r) }
func (s *fsStore) PutWorker(ctx context.Context, r WorkerRecord) error { return s.put(ctx, &r) }

// Remove deletes a record; removing an absent record is not an error.
func (s *fsStore) Remove(ctx context.Context, kind Kind, id string) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("recovery: remove %s: %w", kind, err)
	}
	key := Key(kind, id)
	if _, _, err := ParseKey(key); err != nil {
		return fmt.Errorf("recovery: remove: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWritable(); err != nil {
		return fmt.Errorf("recovery: remove %s: %w", key, err)
	}
	err := os.Remove(filepath.Join(s.dir, key))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recovery: remove %s: %w", key, err)
	}
	return syncDir(s.dir)
}

// Read returns every record. Files whose names start with a record kind but
// cannot be decoded are moved to quarantine/ (when in a term; otherwise
// they are only reported). Other files are ignored.
func (s *fsStore) Read(ctx context.Context) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st State
	if s.lock == nil {
		return st, errors.New("recovery: store closed")
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return st, fmt.Errorf("recovery: read recovery directory: %w", err)
	}
	for _, ent := range entries {
		if err := ctx.Err(); err != nil {
			return State{}, err
		}
		name := ent.Name()
		if !ent.Type().IsRegular() || !isRecordName(name) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return State{}, fmt.Errorf("recovery: read %s: %w", name, err)
		}
		derr := Decode(name, data, &st)
		if derr == nil {
			continue
		}
		q := Quarantined{Key: name, Err: derr}
		if s.active {
			moved, err := s.quarantine(name)
			if err != nil {
				return State{}, err
			}
			q.MovedTo = moved
		}
		s.log.WithError(derr).WithField("movedTo", q.MovedTo).Error("quarantined an undecodable record")
		st.Quarantined = append(st.Quarantined, q)
	}
	return st, nil
}

func isRecordName(name string) bool {
	for _, k := range []Kind{KindApp, KindDriver, KindWorker} {
		if strings.HasPrefix(name, string(k)+"_") {
			return true
		}
	}
	return false
}

// quarantine moves dir/name to dir/quarantine/name (or name.<n> if taken).
func (s *fsStore) quarantine(name string) (string, error) {
	qdir := filepath.Join(s.dir, fsQuarantineDir)
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		return "", fmt.Errorf("recovery: quarantine %s: %w", name, err)
	}
	existing, err := os.ReadDir(qdir)
	if err != nil {
		return "", fmt.Errorf("recovery: quarantine %s: %w", name, err)
	}
	taken := map[string]bool{}
	for _, e := range existing {
		taken[e.Name()] = true
	}
	target := name
	for n := 1; taken[target]; n++ {
		target = fmt.Sprintf("%s.%d", name, n)
	}
	dst := filepath.Join(qdir, target)
	// Link then unlink: the record is never absent from both places, and
	// Link refuses to overwrite.
	if err := os.Link(filepath.Join(s.dir, name), dst); err != nil {
		return "", fmt.Errorf("recovery: quarantine %s: %w", name, err)
	}
	if err := syncDir(qdir); err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		return "", fmt.Errorf("recovery: quarantine %s: %w", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return "", err
	}
	return dst, nil
}

// Close releases the directory lock. It is idempotent.
func (s *fsStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the descriptor releases the flock
	s.lock = nil
	s.active = false
	return err
}
