package zkrecovery

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/sparkd/sparkd/zkutil"
)

// The warm standby (issue 14). While it is not leading, a master keeps a
// mirror of master_status/: every record, decoded, each with a one-shot
// data watch, and a child watch on the directory. A watch that fires marks
// its record (or the list) stale, and the standby re-reads only what is
// stale. Taking office then reads the stale records and the directory's
// list instead of every record: at 15,000 records, a few round trips
// instead of 15,000.
//
// Guarantees, and what they rest on:
//   - Read in a new term returns what a full read would: the records whose
//     watch has not fired are unchanged since they were read (a ZooKeeper
//     watch fires on the next change of its node), the others are re-read,
//     and the list of names is compared with one fresh listing. Every watch
//     event of a change committed before this master's election reached
//     the mirror before Read began: ZooKeeper delivers a session's watch
//     events in order with its replies, and the election's own write was
//     answered after every earlier change.
//   - A lost connection or session (watches gone, or re-armed by the
//     library later and out of order) or any doubt (a failed read, a
//     record that cannot be read) makes the mirror invalid; the next use
//     reloads it, and Read falls back to reading everything.
//   - A leader keeps no mirror: Read hands it over and drops it, and the
//     standby loads it again after the term ends. Its cost for a standby is
//     one server watch per record, no goroutine per watch, and the memory
//     of the decoded records.
//   - Records changed behind ZooKeeper's back (a snapshot restored on the
//     servers) are outside any watch; restart the standby to reload.
type mirror struct {
	mu sync.Mutex
	// valid: loaded in session, and no watch lost since.
	valid   bool
	session int64
	recs    map[string]fetched // by record name; data kept only when undecodable
	// watched: names whose data watch is armed; dirty: names whose watch
	// fired (or could not be armed) since they were read.
	watched        map[string]bool
	watchedSession int64 // the session watched belongs to
	dirty          map[string]bool
	listDirty      bool
	wake           chan struct{}

	refreshMu sync.Mutex   // one refresh at a time
	loads     atomic.Int64 // full loads (tests)
	reads     atomic.Int64 // records read (tests)
}

// mirrorRecheck: a standby refreshes its mirror at least this often even
// when no watch fired (a reload after a failure).
const mirrorRecheck = 10 * time.Second

// mirrorDebounce coalesces a burst of watch events (a leader's group
// commit) into one refresh.
const mirrorDebounce = 50 * time.Millisecond

func (m *mirror) init() {
	m.watched, m.dirty = map[string]bool{}, map[string]bool{}
	m.wake = make(chan struct{}, 1)
}

// onWatch runs on the ZooKeeper client's receive goroutine (see
// zkutil.Conn.SetWatchHandler): it only marks what changed.
func (s *Store) onWatch(ev zkutil.WatchEvent) {
	m := &s.mir
	m.mu.Lock()
	switch {
	case ev.Type == zk.EventNotWatching, ev.Type == zk.EventSession:
		// A lost session, or a lost connection (whose watches the library
		// re-arms later, in no order with other replies): nothing in the
		// mirror can be trusted until it is loaded again.
		m.valid = false
		m.watched = map[string]bool{}
	case ev.Path == s.p.status:
		m.listDirty = true
	case path.Dir(ev.Path) == s.p.status:
		name := path.Base(ev.Path)
		m.dirty[name] = true
		delete(m.watched, name)
	default:
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// runMirror keeps the mirror while this master is not leading, until ctx
// ends. The Elector runs it.
func (s *Store) runMirror(ctx context.Context) {
	m := &s.mir
	retry := time.Duration(0)
	for {
		wait := mirrorRecheck
		if retry > 0 {
			wait = retry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.wake:
			t.Stop()
		case <-t.C:
		}
		if s.sh.current() != nil || s.closed.Load() {
			continue // leading: the mirror is handed over and not kept
		}
		d := time.NewTimer(mirrorDebounce)
		select {
		case <-ctx.Done():
			d.Stop()
			return
		case <-d.C:
		}
		if err := s.refreshMirror(ctx, false); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = min(max(2*retry, 100*time.Millisecond), mirrorRecheck)
			s.log.WithError(err).Debugf("standby mirror: refresh failed; again in %s", retry)
			continue
		}
		retry = 0
	}
}

// refreshMirror brings the mirror up to date: a full load when it is not
// valid, else a re-read of what is stale. Unless forTakeover, it does
// nothing while this master leads (a leader keeps no mirror).
func (s *Store) refreshMirror(ctx context.Context, forTakeover bool) error {
	m := &s.mir
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if !forTakeover && s.sh.current() != nil {
		return nil
	}
	sess := s.conn.SessionID()
	m.mu.Lock()
	if !m.valid || m.session != sess || m.recs == nil {
		m.mu.Unlock()
		return s.loadMirror(ctx, sess)
	}
	listDirty, dirty := m.listDirty, m.dirty
	m.listDirty, m.dirty = false, map[string]bool{}
	m.mu.Unlock()
	restore := func() {
		m.mu.Lock()
		m.listDirty = m.listDirty || listDirty
		for n := range dirty {
			m.dirty[n] = true
		}
		m.mu.Unlock()
	}
	if listDirty {
		names, _, err := s.conn.ChildrenWatched(ctx, s.p.status)
		if err != nil {
			restore()
			return fmt.Errorf("zkrecovery: mirror: list %s: %w", s.p.status, err)
		}
		have := make(map[string]bool, len(names))
		for _, n := range names {
			have[n] = true
		}
		m.mu.Lock()
		for n := range m.recs {
			if !have[n] {
				delete(m.recs, n)
			}
		}
		for _, n := range names {
			if _, ok := m.recs[n]; !ok {
				dirty[n] = true
			}
		}
		m.mu.Unlock()
	}
	if len(dirty) == 0 {
		return nil
	}
	names := make([]string, 0, len(dirty))
	for n := range dirty {
		names = append(names, n)
	}
	sort.Strings(names)
	got, err := s.fetchAll(ctx, names, func(string) bool { return true })
	if err != nil {
		restore()
		return err
	}
	m.reads.Add(int64(len(names)))
	m.mu.Lock()
	if !m.valid || s.conn.SessionID() != sess {
		m.mu.Unlock()
		return fmt.Errorf("zkrecovery: mirror: invalidated while refreshing")
	}
	for i, n := range names {
		if got[i].gone {
			delete(m.recs, n)
			delete(m.watched, n)
			continue
		}
		m.recs[n] = trim(got[i])
		if !got[i].unreadable {
			m.watched[n] = true
		}
	}
	m.mu.Unlock()
	return nil
}

// loadMirror reads every record, arming a watch on each that has none.
func (s *Store) loadMirror(ctx context.Context, sess int64) error {
	m := &s.mir
	m.mu.Lock()
	m.valid, m.listDirty, m.dirty, m.recs = false, false, map[string]bool{}, nil
	if m.watchedSession != sess {
		m.watched, m.watchedSession = map[string]bool{}, sess
	}
	m.mu.Unlock()
	start := time.Now()
	names, _, err := s.conn.ChildrenWatched(ctx, s.p.status)
	if errors.Is(err, zk.ErrNoNode) {
		return nil // nothing stored yet; a takeover reads as before
	}
	if err != nil {
		return fmt.Errorf("zkrecovery: mirror: list %s: %w", s.p.status, err)
	}
	sort.Strings(names)
	m.mu.Lock()
	arm := make(map[string]bool, len(names))
	for _, n := range names {
		arm[n] = !m.watched[n]
	}
	m.mu.Unlock()
	got, err := s.fetchAll(ctx, names, func(n string) bool { return arm[n] })
	if err != nil {
		return err
	}
	m.loads.Add(1)
	m.reads.Add(int64(len(names)))
	recs := make(map[string]fetched, len(names))
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.conn.SessionID() != sess || m.watchedSession != sess {
		return fmt.Errorf("zkrecovery: mirror: the ZooKeeper session changed while loading")
	}
	for i, n := range names {
		if got[i].gone {
			continue
		}
		recs[n] = trim(got[i])
		if arm[n] && !got[i].unreadable {
			m.watched[n] = true
		}
	}
	m.recs, m.session, m.valid = recs, sess, true
	s.log.WithField("records", len(recs)).WithField("ms", time.Since(start).Milliseconds()).Info("Standby mirror loaded")
	return nil
}

// trim drops what the mirror does not need: the raw bytes of a record that
// decoded (a quarantine needs them, and the version, of one that did not).
func trim(f fetched) fetched {
	if f.err == nil {
		f.data = nil
	}
	return f
}

// takeMirror returns the mirror's records, brought up to date and checked
// against fresh, a listing of master_status/ made in this term, and drops
// the mirror (a leader keeps none). A mirror being loaded is waited for,
// and one that is not valid is loaded now: either costs what reading every
// record costs, once. ok is false when the mirror cannot be trusted; Read
// then reads every record.
func (s *Store) takeMirror(ctx context.Context, fresh []string) (recs map[string]fetched, ok bool) {
	m := &s.mir
	if m.wake == nil {
		return nil, false // WithoutMirror
	}
	if err := s.refreshMirror(ctx, true); err != nil {
		s.log.WithError(err).Info("standby mirror unusable; reading every record")
		return nil, false
	}
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.valid || m.recs == nil || m.session != s.conn.SessionID() || len(m.dirty) > 0 || m.listDirty || len(fresh) != len(m.recs) {
		return nil, false // changed meanwhile, or lost
	}
	for _, n := range fresh {
		if f, ok := m.recs[n]; !ok || f.unreadable {
			return nil, false // an unreadable record is read again, as a full read would
		}
	}
	recs = m.recs
	m.recs, m.valid = nil, false
	return recs, true
}
