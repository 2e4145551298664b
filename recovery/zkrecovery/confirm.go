package zkrecovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// confirmRetry is the pause between attempts of Confirm after an error that
// proves nothing either way (a connection lost and being re-established).
const confirmRetry = 50 * time.Millisecond

// Confirm proves with round trips sent after it began that this master still
// holds its term: after a Sync (so the server it is connected to has caught
// up with the ensemble's leader), the epoch znode still has the version this
// term set, the candidate node exists and is owned by the term's session,
// and the session id has not changed. LastContact cannot prove this: after a
// pause, bytes that sat in the socket look like fresh contact.
//
// It returns nil if the term holds. Otherwise the error wraps
// recovery.ErrFenced (a newer epoch exists) or recovery.ErrNotLeader (no term;
// session expired or changed, wrapping ErrSessionLost; candidate node gone,
// wrapping ErrCandidateLost; no answer before ctx's deadline), and the term
// is ended (OnRevoked follows) unless ctx was cancelled. Errors that prove
// nothing (a connection being re-established within the session) are
// retried until ctx's deadline; without a deadline, calls use the
// connection's call timeout and give up after one round.
func (e *Elector) Confirm(ctx context.Context) error {
	t := e.sh.current()
	if t == nil || t.ended {
		return fmt.Errorf("zkrecovery: confirm: %w: no term", recovery.ErrNotLeader)
	}
	err := e.confirm(ctx, t)
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		e.log.WithError(err).WithField("epoch", t.epoch).Warn("could not confirm the term; ending it")
		e.sh.endTerm(t.epoch, err)
	}
	return err
}

func (e *Elector) confirm(ctx context.Context, t *term) error {
	_, hasDeadline := ctx.Deadline()
	for {
		err := e.confirmOnce(ctx, t)
		var def *definiteErr
		switch {
		case err == nil:
			return nil
		case errors.As(err, &def):
			return def.err
		case ctx.Err() != nil || !hasDeadline:
			return fmt.Errorf("zkrecovery: confirm epoch %d: %w: no answer from ZooKeeper: %w", t.epoch, recovery.ErrNotLeader, err)
		}
		e.log.WithError(err).WithField("epoch", t.epoch).Debug("confirm: retrying")
		tm := time.NewTimer(confirmRetry)
		select {
		case <-ctx.Done():
			tm.Stop()
			return fmt.Errorf("zkrecovery: confirm epoch %d: %w: no answer from ZooKeeper: %w", t.epoch, recovery.ErrNotLeader, err)
		case <-tm.C:
		}
	}
}

// definiteErr is an answer that settles Confirm: the term is over.
type definiteErr struct{ err error }

func (d *definiteErr) Error() string { return d.err.Error() }
func (d *definiteErr) Unwrap() error { return d.err }

// confirmOnce is one round of Confirm. A *definiteErr means the term is
// over; any other error proves nothing.
func (e *Elector) confirmOnce(ctx context.Context, t *term) error {
	conn := e.conn
	over := func(format string, args ...any) error {
		return &definiteErr{fmt.Errorf("zkrecovery: confirm epoch %d: "+format, append([]any{t.epoch}, args...)...)}
	}
	sessionOK := func() error {
		if st := conn.State(); st == zkutil.Expired || st == zkutil.Closed {
			return over("%w: %w (state %v)", recovery.ErrNotLeader, ErrSessionLost, st)
		}
		if sid := conn.SessionID(); sid != t.session {
			return over("%w: %w (0x%x -> 0x%x)", recovery.ErrNotLeader, ErrSessionLost, t.session, sid)
		}
		return nil
	}
	callErr := func(err error) error {
		switch {
		case errors.Is(err, zk.ErrSessionExpired), errors.Is(err, zkutil.ErrClosed):
			return over("%w: %w: %w", recovery.ErrNotLeader, ErrSessionLost, err)
		case errors.Is(err, zk.ErrNoAuth), errors.Is(err, zk.ErrAuthFailed):
			return over("%w: %w", recovery.ErrNotLeader, err)
		}
		return err // proves nothing: retried
	}
	if err := sessionOK(); err != nil {
		return err
	}
	if err := conn.Sync(ctx, e.p.epoch); err != nil {
		return callErr(err)
	}
	ok, est, err := conn.Exists(ctx, e.p.epoch)
	if err != nil {
		return callErr(err)
	}
	if !ok {
		return over("%w: epoch znode %s is gone", recovery.ErrFenced, e.p.epoch)
	}
	nok, nst, err := conn.Exists(ctx, t.node)
	if err != nil {
		return callErr(err)
	}
	// The replies came on the session the checks below name: a new
	// session is announced (SessionID changes) before any request is sent
	// on it.
	if err := sessionOK(); err != nil {
		return err
	}
	if est.Version != t.version {
		return over("%w: epoch znode at version %d, this term set %d", recovery.ErrFenced, est.Version, t.version)
	}
	if !nok {
		return over("%w: %w: %s", recovery.ErrNotLeader, ErrCandidateLost, t.node)
	}
	if nst.EphemeralOwner != t.session {
		return over("%w: %w: %s is owned by session 0x%x, not 0x%x", recovery.ErrNotLeader, ErrCandidateLost,
			t.node, nst.EphemeralOwner, t.session)
	}
	if cur := e.sh.current(); cur == nil || cur.ended || cur.epoch != t.epoch {
		return over("%w: the term ended meanwhile", recovery.ErrNotLeader)
	}
	return nil
}
