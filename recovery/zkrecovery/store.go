package zkrecovery

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/go-zookeeper/zk"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// Store is the ZooKeeper recovery.Store. Create it with New. It is safe for
// concurrent use; writes issued sequentially by one goroutine commit in
// that order.
type Store struct {
	conn *zkutil.Conn
	log  *logrus.Entry
	p    paths
	o    options
	sh   *shared

	closed atomic.Bool
	// exists remembers keys seen in ZooKeeper (read or written), so that an
	// update goes straight to SetData and a new record to Create: one round
	// trip either way unless the guess is wrong.
	exists sync.Map // key -> struct{}
	// group batches concurrent writes into one multi (group.go).
	group grouper
	// mir is the standby's mirror of the records (mirror.go).
	mir mirror
}

// errClosed is returned after Close.
var errClosed = errors.New("zkrecovery: store closed")

// Close stops the Store from being used; the connection belongs to the
// caller. It is idempotent.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *Store) PutApp(ctx context.Context, r recovery.AppRecord) error { return s.put(ctx, &r) }
func (s *Store) PutDriver(ctx context.Context, r recovery.DriverRecord) error {
	return s.put(ctx, &r)
}
func (s *Store) PutWorker(ctx context.Context, r recovery.WorkerRecord) error {
	return s.put(ctx, &r)
}

// fence returns the checks that every write starts with, or why no write
// may be sent at all.
func (s *Store) fence(ctx context.Context, what string) (*term, []any, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("zkrecovery: %s: %w", what, errClosed)
	}
	t := s.sh.current()
	if t == nil {
		return nil, nil, fmt.Errorf("zkrecovery: %s: %w", what, recovery.ErrNotLeader)
	}
	if t.ended {
		return nil, nil, s.staleTerm(ctx, what, t)
	}
	return t, []any{
		&zk.CheckVersionRequest{Path: s.p.epoch, Version: t.version},
		&zk.CheckVersionRequest{Path: t.node, Version: 0},
	}, nil
}

const nChecks = 2

// staleTerm explains a write attempted after term t ended, without sending
// it: ErrFenced (and ErrNotLeader) if a newer epoch exists, else
// ErrNotLeader with the reason the term ended.
func (s *Store) staleTerm(ctx context.Context, what string, t *term) error {
	_, st, err := s.conn.Get(ctx, s.p.epoch)
	if err == nil && st.Version != t.version {
		return fmt.Errorf("zkrecovery: %s: epoch %d was superseded: %w: %w", what, t.epoch, recovery.ErrFenced, recovery.ErrNotLeader)
	}
	return fmt.Errorf("zkrecovery: %s: term of epoch %d ended (%v): %w", what, t.epoch, t.reason, recovery.ErrNotLeader)
}

// multi sends checks+ops. fenced reports whether a check failed; the term
// is then revoked.
func (s *Store) multi(ctx context.Context, what string, t *term, checks []any, ops ...any) ([]zk.MultiResponse, error) {
	res, err := s.conn.Multi(ctx, append(checks, ops...)...)
	if err == nil {
		return res, nil
	}
	fenced := false
	if len(res) >= nChecks {
		for _, r := range res[:nChecks] {
			if errors.Is(r.Error, zk.ErrBadVersion) || errors.Is(r.Error, zk.ErrNoNode) {
				fenced = true
			}
		}
	} else if errors.Is(err, zk.ErrBadVersion) {
		fenced = true // only the epoch check can fail with a bad version
	}
	if fenced {
		s.sh.reportFenced(t.epoch)
		s.log.WithFields(logrus.Fields{"epoch": t.epoch, "op": what}).Warn("write fenced: a newer epoch exists or the session is gone")
		return res, fmt.Errorf("zkrecovery: %s: epoch %d: %w (%w)", what, t.epoch, recovery.ErrFenced, err)
	}
	return res, fmt.Errorf("zkrecovery: %s: %w", what, err)
}

// opErr is the error of op i (after the checks) of a failed multi.
func opErr(res []zk.MultiResponse, i int) error {
	if len(res) > nChecks+i {
		return res[nChecks+i].Error
	}
	return nil
}

func (s *Store) put(ctx context.Context, r any) error {
	key, data, err := recovery.Encode(r)
	if err != nil {
		return err
	}
	what := "put " + key
	t, checks, err := s.fence(ctx, what)
	if err != nil {
		return err
	}
	p := path.Join(s.p.status, key)
	// Create, or overwrite if it exists (whichever is likelier first); a
	// concurrent remove of the same key can make both fail, hence the retry.
	_, update := s.exists.Load(key)
	op := func() (any, error) {
		if update {
			return &zk.SetDataRequest{Path: p, Data: data, Version: -1}, zk.ErrNoNode
		}
		return &zk.CreateRequest{Path: p, Data: data}, zk.ErrNodeExists
	}
	// First with whatever else is being written (group.go); if the group
	// failed because of some write in it, on its own.
	first, wrongGuess := op()
	g := s.grouped(ctx, t, first, len(data))
	if done, err := g.outcome(ctx, what); done {
		if err == nil {
			s.exists.Store(key, struct{}{})
		}
		return err
	}
	if errors.Is(g.res.Error, wrongGuess) {
		update = !update
	}
	for attempt := 0; attempt < 4; attempt++ {
		o, wrongGuess := op()
		res, err := s.multi(ctx, what, t, checks, o)
		if err == nil {
			s.exists.Store(key, struct{}{})
			return nil
		}
		if !errors.Is(opErr(res, 0), wrongGuess) {
			return err
		}
		update = !update
	}
	return fmt.Errorf("zkrecovery: %s: record keeps appearing and vanishing", what)
}

// Remove deletes a record; removing an absent record is not an error.
func (s *Store) Remove(ctx context.Context, kind recovery.Kind, id string) error {
	key := recovery.Key(kind, id)
	if _, _, err := recovery.ParseKey(key); err != nil {
		return fmt.Errorf("zkrecovery: remove: %w", err)
	}
	what := "remove " + key
	t, checks, err := s.fence(ctx, what)
	if err != nil {
		return err
	}
	del := &zk.DeleteRequest{Path: path.Join(s.p.status, key), Version: -1}
	if _, known := s.exists.Load(key); known {
		// Grouped only when the record is known to exist: deleting an
		// absent record would fail its whole group.
		if done, err := s.grouped(ctx, t, del, len(key)).outcome(ctx, what); done {
			if err == nil {
				s.exists.Delete(key)
			}
			return err
		}
	}
	res, err := s.multi(ctx, what, t, checks, del)
	if err != nil && errors.Is(opErr(res, 0), zk.ErrNoNode) {
		err = nil
	}
	if err == nil {
		s.exists.Delete(key)
	}
	return err
}

type fetched struct {
	data []byte
	st   *zk.Stat
	gone bool
	rec  recovery.State // the decoded record, when err is nil
	err  error          // why it could not be decoded
	// unreadable: ZooKeeper refused to return the record (its ACL denies
	// this master). It cannot be moved either, so it stays where it is.
	unreadable bool
}

// unreadable reports whether a Get error is about this one record and will
// not go away by retrying (as opposed to connection loss or a timeout).
func unreadable(err error) bool {
	return errors.Is(err, zk.ErrNoAuth)
}

// Read returns every record under master_status/, fetching them with up to
// ReadConcurrency Gets in flight. Undecodable records are moved to
// quarantine/ (with a fenced write, so only in a term; outside a term they
// are only reported) and listed in State.Quarantined.
func (s *Store) Read(ctx context.Context) (recovery.State, error) {
	var st recovery.State
	if s.closed.Load() {
		return st, fmt.Errorf("zkrecovery: read: %w", errClosed)
	}
	names, _, err := s.conn.Children(ctx, s.p.status)
	if errors.Is(err, zk.ErrNoNode) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("zkrecovery: read: list %s: %w", s.p.status, err)
	}
	sort.Strings(names)
	if t := s.sh.current(); t != nil && !t.ended {
		// A new term: what another leader removed must not be guessed to
		// exist (a Delete of it would fail its whole group).
		s.exists.Clear()
	}
	var got []fetched
	if recs, ok := s.takeMirror(ctx, names); ok {
		got = make([]fetched, len(names))
		for i, n := range names {
			got[i] = recs[n]
		}
		s.log.WithField("records", len(names)).Debug("read the records from the standby mirror")
	} else if got, err = s.fetchAll(ctx, names, nil); err != nil {
		return recovery.State{}, err
	}
	for i, name := range names {
		if got[i].gone {
			continue
		}
		derr := got[i].err
		if derr == nil {
			r := got[i].rec
			st.Apps = append(st.Apps, r.Apps...)
			st.Drivers = append(st.Drivers, r.Drivers...)
			st.Workers = append(st.Workers, r.Workers...)
			s.exists.Store(name, struct{}{})
			continue
		}
		q := recovery.Quarantined{Key: name, Err: derr}
		if got[i].unreadable {
			// Reported every time it is read, never deleted: an operator
			// must fix the record's ACL or remove it.
			s.log.WithError(derr).WithField("record", path.Join(s.p.status, name)).
				Error("record cannot be read (ACL); left in place, recovery goes on without it")
			st.Quarantined = append(st.Quarantined, q)
			continue
		}
		if t := s.sh.current(); t != nil && !t.ended {
			moved, err := s.quarantine(ctx, name, got[i])
			if err != nil {
				return recovery.State{}, err
			}
			q.MovedTo = moved
		}
		s.log.WithError(derr).WithField("movedTo", q.MovedTo).Error("undecodable record quarantined")
		st.Quarantined = append(st.Quarantined, q)
	}
	return st, nil
}

// fetchAll gets and decodes every name concurrently (bounded) and returns
// results in order. The first error cancels the rest. A name for which
// watch (when not nil) says so is read with a data watch (mirror.go).
func (s *Store) fetchAll(ctx context.Context, names []string, watch func(string) bool) ([]fetched, error) {
	out := make([]fetched, len(names))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := min(s.o.readConc, len(names))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) || ctx.Err() != nil {
					return
				}
				get := s.conn.Get
				if watch != nil && watch(names[i]) {
					get = s.conn.GetWatched
				}
				data, st, err := get(ctx, path.Join(s.p.status, names[i]))
				switch {
				case errors.Is(err, zk.ErrNoNode):
					out[i].gone = true
				case unreadable(err):
					// One record this master may not read must not stop
					// every master from recovering the rest.
					out[i] = fetched{unreadable: true, err: fmt.Errorf("zkrecovery: read %s: %w", names[i], err)}
				case err != nil:
					cancel(fmt.Errorf("zkrecovery: read %s: %w", names[i], err))
					return
				default:
					// Decoding here overlaps it with the other Gets' round trips.
					out[i] = fetched{data: data, st: st}
					out[i].err = recovery.Decode(names[i], data, &out[i].rec)
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// quarantine moves a record to quarantine/<key> (or <key>.<n> if taken) in
// one fenced multi: create the copy, delete the original at the version read.
func (s *Store) quarantine(ctx context.Context, key string, f fetched) (string, error) {
	what := "quarantine " + key
	t, checks, err := s.fence(ctx, what)
	if err != nil {
		return "", err
	}
	for n := 0; n < 100; n++ {
		target := key
		if n > 0 {
			target = fmt.Sprintf("%s.%d", key, n)
		}
		dst := path.Join(s.p.quarantine, target)
		res, err := s.multi(ctx, what, t, checks,
			&zk.CreateRequest{Path: dst, Data: f.data},
			&zk.DeleteRequest{Path: path.Join(s.p.status, key), Version: f.st.Version})
		if err == nil {
			return dst, nil
		}
		if !errors.Is(opErr(res, 0), zk.ErrNodeExists) {
			return "", err
		}
	}
	return "", fmt.Errorf("zkrecovery: %s: 100 quarantined copies exist already", what)
}
