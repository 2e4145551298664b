package master

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery"
)

// ---- state lock and outgoing messages ----

// queueLocked queues msg for base on the current term's outbox (ordered
// per destination). Without a term it is dropped. Messages are queued while
// mu is held, in the order of the state changes, and sent by the outbox's
// per-peer senders: no I/O happens under the lock.
func (m *Master) queueLocked(base string, msg outMsg) {
	if m.term == nil {
		return
	}
	m.term.out.enqueue(base, msg)
}

// send delivers one message of term t. Nothing is sent while the master is
// self-fenced (stale contact with the coordination service, or a pause not
// yet confirmed); this is checked just before the call.
func (m *Master) send(t *term, base, path string, req, resp any) error {
	if why := m.selfFenced(); why != "" {
		return fmt.Errorf("master: not sending %s to %s (self-fenced): %s", path, base, why)
	}
	err := m.client.Call(t.ctx, http.MethodPost, base, path, req, resp)
	var se *protocol.StatusError
	if errors.As(err, &se) && se.Code == http.StatusConflict {
		// A peer has seen a newer epoch. That is not authoritative (only the
		// store's fenced write and the Elector are), so the master does not
		// step down on it; the Elector revokes the term if it is over.
		m.log.Warnf("%s refused %s from epoch %d: %s", base, path, t.epoch, se.Message)
	}
	return err
}

// sendAsyncLocked queues a message of the current term for base; it is
// sent after every message queued for base before it. Failures are logged
// at debug level (the worker or driver re-syncs on its own).
func (m *Master) sendAsyncLocked(base, path string, req any) {
	m.queueLocked(base, outMsg{path: path, req: req})
}

// stamp is the current term's Stamp (zero without a term).
func (m *Master) stampLocked() protocol.Stamp {
	if m.term == nil {
		return protocol.Stamp{}
	}
	return protocol.Stamp{Epoch: m.term.epoch, MasterURL: m.url}
}

// ---- persistence ----

// persister serialises store writes per record key (so that a Put and a
// later Remove of the same record never swap), while writes to different
// keys proceed concurrently. Operations are queued under mu, in the order
// the state changed, and never block the queuing goroutine.
type persister struct {
	stripes []*stripe
}

type stripe struct {
	mu     sync.Mutex
	queue  []persistOp
	signal chan struct{}
}

type persistOp struct {
	fn   func(ctx context.Context) error
	done chan error // nil for fire-and-forget
}

const persistStripes = 32

func (m *Master) newPersister(t *term) *persister {
	p := &persister{}
	for range persistStripes {
		s := &stripe{signal: make(chan struct{}, 1)}
		p.stripes = append(p.stripes, s)
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			s.run(t.ctx)
		}()
	}
	return p
}

func (s *stripe) run(ctx context.Context) {
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, op := range q {
			var err error
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: term ended", recovery.ErrNotLeader)
			} else {
				err = op.fn(ctx)
			}
			if op.done != nil {
				op.done <- err
			}
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-s.signal:
		case <-ctx.Done():
			s.mu.Lock()
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, op := range q {
				if op.done != nil {
					op.done <- fmt.Errorf("%w: term ended", recovery.ErrNotLeader)
				}
			}
			// Late enqueues after this point find ctx done in enqueue.
			return
		}
	}
}

func (p *persister) enqueue(ctx context.Context, key string, op persistOp) {
	if ctx.Err() != nil {
		if op.done != nil {
			op.done <- fmt.Errorf("%w: term ended", recovery.ErrNotLeader)
		}
		return
	}
	s := p.stripes[fnv32(key)%uint32(len(p.stripes))]
	s.mu.Lock()
	s.queue = append(s.queue, op)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// persistLocked queues a store write of the current term. done (buffered,
// size 1) receives its result; it is nil-safe to ignore for async writes,
// whose failures are logged (and a fenced one steps the master down).
func (m *Master) persistLocked(kind recovery.Kind, id string, fn func(ctx context.Context, s recovery.Store) error) <-chan error {
	done := make(chan error, 1)
	t := m.term
	if t == nil {
		done <- fmt.Errorf("%w: no term", recovery.ErrNotLeader)
		return done
	}
	op := persistOp{done: done, fn: func(ctx context.Context) error {
		err := fn(ctx, m.store)
		if err != nil {
			m.storeFailed(t, kind, id, err)
		}
		return err
	}}
	key := recovery.Key(kind, id)
	if kind == recovery.KindDriver {
		// All driver writes share one queue: a relaunch writes the new
		// record and removes the old one, and neither may overtake the
		// other or an earlier write of either.
		key = string(recovery.KindDriver)
	}
	t.persist.enqueue(t.ctx, key, op)
	return done
}

func (m *Master) storeFailed(t *term, kind recovery.Kind, id string, err error) {
	switch {
	case errors.Is(err, recovery.ErrFenced):
		m.fenced(t, fmt.Errorf("write of %s: %w", recovery.Key(kind, id), err))
	case errors.Is(err, recovery.ErrNotLeader), t.ctx.Err() != nil:
		m.log.WithError(err).Debugf("write of %s dropped: leadership ended", recovery.Key(kind, id))
	default:
		m.log.WithError(err).Errorf("could not persist %s", recovery.Key(kind, id))
	}
}

// ---- leadership ----

func (m *Master) now() time.Time { return m.cfg.Now() }

func (m *Master) onLeaderChanged(l recovery.LeaderInfo, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := ok != m.leaderKnown || l.ID != m.leader.ID || l.Epoch != m.leader.Epoch
	m.leader, m.leaderKnown = l, ok
	if !ok {
		if m.noLeaderAt.IsZero() {
			m.noLeaderAt = m.now()
		}
	} else if l.ID != m.id {
		m.noLeaderAt = time.Time{}
	}
	if !changed {
		return
	}
	if ok {
		m.log.WithField("epoch", l.Epoch).Infof("Leader is %s (%s)", l.ID, l.RPCURL)
	} else {
		m.log.Info("No leader is known")
	}
}

// onElected starts a term: the master reads the store and recovers in the
// background (the Elector's callbacks must not block).
func (m *Master) onElected(ctx context.Context, epoch int64) {
	m.mu.Lock()
	if m.term != nil {
		m.endTermLocked(errors.New("a new term started"))
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &term{epoch: epoch, ctx: tctx, cancel: cancel, elected: m.now(), sched: make(chan struct{}, 1)}
	t.persist = m.newPersister(t)
	t.out = newOutbox(m, t)
	m.term = t
	m.st = newState(epoch)
	m.status = protocol.MasterStandby
	m.ha.LeaderTransitions++
	m.log.WithField("epoch", epoch).Info("We have gained leadership")
	m.mu.Unlock()
	m.kickConfirm() // a pause still unconfirmed covers this term too
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		m.lead(t)
	}()
}

func (m *Master) onRevoked(reason error) {
	m.stepDown(nil, reason, false)
}

// fenced handles a write or command refused because a newer epoch exists.
func (m *Master) fenced(t *term, err error) {
	m.stepDown(t, err, true)
}

// stepDown ends term t (nil = whatever term is current) and returns the
// master to STANDBY in this process; the Elector campaigns again.
func (m *Master) stepDown(t *term, reason error, fenced bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == nil || (t != nil && m.term != t) {
		return
	}
	if fenced {
		m.ha.FencedWrites++
	}
	m.endTermLocked(reason)
}

func (m *Master) endTermLocked(reason error) {
	t := m.term
	t.cancel()
	m.term = nil
	m.st = newState(0)
	m.status = protocol.MasterStandby
	m.log.WithField("epoch", t.epoch).WithField("reason", fmt.Sprint(reason)).
		Error("Leadership has been revoked -- stepping down to STANDBY")
}

// lead runs one term: read the store, recover, then check timeouts until
// the term ends.
func (m *Master) lead(t *term) {
	stored, ok := m.readStore(t)
	if !ok {
		return
	}
	m.mu.Lock()
	if m.term != t {
		m.mu.Unlock()
		return
	}
	for _, q := range stored.Quarantined {
		m.log.WithError(q.Err).Warnf("Stored record %s could not be decoded; quarantined at %s", q.Key, q.MovedTo)
	}
	var targets []recoveryTarget
	if stored.Empty() {
		m.log.WithField("epoch", t.epoch).Info("I have been elected leader! New state: ALIVE")
		m.becomeAliveLocked(t)
	} else {
		m.status = protocol.MasterRecovering
		t.recoverBy = m.now().Add(m.cfg.RecoveryTimeout)
		m.log.WithField("epoch", t.epoch).Info("I have been elected leader! New state: RECOVERING")
		targets = m.beginRecoveryLocked(stored)
		m.maybeCompleteRecoveryLocked(t)
	}
	m.contactAllLocked(t, targets)
	m.mu.Unlock()

	tk := time.NewTicker(m.tick)
	defer tk.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tk.C:
			m.onTick(t)
		case <-t.sched:
			m.mu.Lock()
			if m.term == t {
				m.scheduleNowLocked()
			}
			m.mu.Unlock()
		}
	}
}

// readStore reads every record (the Store pipelines the reads), retrying
// non-fatal errors until the term ends.
func (m *Master) readStore(t *term) (recovery.State, bool) {
	backoff := 100 * time.Millisecond
	for {
		st, err := m.store.Read(t.ctx)
		if err == nil {
			return st, true
		}
		if errors.Is(err, recovery.ErrFenced) {
			m.fenced(t, fmt.Errorf("read state: %w", err))
			return st, false
		}
		if t.ctx.Err() != nil {
			return st, false
		}
		m.log.WithError(err).Errorf("Could not read the recovery state; retrying in %s", backoff)
		select {
		case <-t.ctx.Done():
			return st, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// onTick runs the periodic leader checks: the recovery deadline and worker
// timeouts. Nothing happens while self-fenced: after a pause, heartbeats
// that sat in sockets have not been read yet, and the term may be over.
func (m *Master) onTick(t *term) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != t || m.selfFenced() != "" {
		return
	}
	now := m.now()
	switch m.status {
	case protocol.MasterRecovering:
		if !now.Before(t.recoverBy) {
			m.log.Infof("Recovery timeout (%s) reached", m.cfg.RecoveryTimeout)
			m.completeRecoveryLocked(t)
		}
	case protocol.MasterAlive:
		m.checkWorkerTimeoutsLocked(now)
		m.checkAppTimeoutsLocked(t, now)
		if m.driversDueLocked(now) {
			m.scheduleSafeLocked()
		}
	}
}

func (m *Master) becomeAliveLocked(t *term) {
	m.status = protocol.MasterAlive
	since := t.elected
	if !m.noLeaderAt.IsZero() && m.noLeaderAt.Before(since) {
		since = m.noLeaderAt
	}
	m.ha.LastFailover = m.now().Sub(since)
	m.noLeaderAt = time.Time{}
	m.scheduleSafeLocked()
}

// scheduleSafeLocked asks for a scheduling pass. Passes run on the term's
// loop, so that a burst of registrations costs one pass, not one each.
func (m *Master) scheduleSafeLocked() {
	if m.term == nil {
		return
	}
	select {
	case m.term.sched <- struct{}{}:
	default:
	}
}

// scheduleNowLocked runs a scheduling pass, and logs instead of crashing on
// a bug.
func (m *Master) scheduleNowLocked() {
	defer func() {
		if r := recover(); r != nil {
			m.log.Errorf("scheduling failed: %v", r)
		}
	}()
	m.scheduleLocked()
}
