package master

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
		return fmt.Errorf("master: not sending %s to %s: %w: %s", path, base, errSelfFenced, why)
	}
	err := m.client.Call(m.signFor(t.ctx, base, path), http.MethodPost, base, path, req, resp)
	var se *protocol.StatusError
	if errors.As(err, &se) && se.Code == http.StatusConflict {
		// A peer has seen a newer epoch. That is not authoritative (only the
		// store's fenced write and the Elector are), so the master does not
		// step down on it; the Elector revokes the term if it is over.
		m.log.Warnf("%s refused %s from epoch %d: %s", base, path, t.epoch, se.Message)
	}
	return err
}

// errSelfFenced: send refused to send because the master is self-fenced.
// The outbox waits and tries again: nothing was sent.
var errSelfFenced = errors.New("self-fenced")

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

// persistLocked queues a store write of the current term. The write goes on
// the stripe of its record (all driver records share one stripe, so that a
// relaunch's new record is written before the old one is removed), and
// when coalesce is set a queued write of the same record is replaced by this
// one. then, if not nil, runs with the state lock held once the write has
// settled, unless the term ended meanwhile; the returned gate opens after
// that. Failures are retried by the persister while they may pass; what is
// left (fenced, term ended, a record the store refuses) is logged, and a
// fenced write steps the master down.
func (m *Master) persistLocked(kind recovery.Kind, id string, coalesce bool, fn func(ctx context.Context, s recovery.Store) error, then func(err error)) *gate {
	g := newGate()
	t := m.term
	if t == nil {
		g.open(errTermEnded)
		return g
	}
	key := recovery.Key(kind, id)
	op := &persistOp{fn: func(ctx context.Context) error { return fn(ctx, m.store) }}
	if coalesce {
		op.record = key
	}
	op.done = []func(error){func(err error) {
		if err != nil {
			m.storeFailed(t, kind, id, err)
		}
		if then != nil {
			m.onTerm(t, func() { then(err) })
		}
		g.open(err)
	}}
	stripe := key
	if kind == recovery.KindDriver {
		stripe = string(recovery.KindDriver)
	}
	t.persist.enqueue(stripe, op)
	return g
}

// persistAppLocked writes a's whole record (coalesced with any queued write
// of it) and returns the gate of that write.
func (m *Master) persistAppLocked(a *appInfo) *gate {
	rec := a.record()
	return m.persistLocked(recovery.KindApp, a.id, true, func(ctx context.Context, s recovery.Store) error { return s.PutApp(ctx, rec) }, nil)
}

// onTerm runs f with the state lock held if t is still the current term:
// the way an effect's outcome comes back to the state machine.
func (m *Master) onTerm(t *term, f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == t {
		f()
	}
}

// waitGate waits for a write's gate, the end of its term, or ctx (the
// request). It never waits on a channel nothing else can close.
func waitGate(ctx context.Context, t *term, g *gate, what string) error {
	select {
	case <-g.done:
		if g.err != nil {
			return fmt.Errorf("%w %s: %w", errPersist, what, g.err)
		}
		return nil
	case <-t.ctx.Done():
		return fmt.Errorf("%w %s: %w", errPersist, what, errTermEnded)
	case <-ctx.Done():
		return fmt.Errorf("%w %s: still in progress: %w", errPersist, what, ctx.Err())
	}
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

// onElected establishes a term: the master reads the store and recovers on
// a goroutine of the term (the Elector's callbacks must not block).
func (m *Master) onElected(ctx context.Context, epoch int64) {
	m.mu.Lock()
	prev := m.term
	if prev != nil {
		m.endTermLocked(errors.New("a new term started"), false)
	}
	m.mu.Unlock()
	if prev != nil {
		prev.wait()
	}
	m.mu.Lock()
	tctx, cancel := context.WithCancel(ctx)
	t := &term{epoch: epoch, ctx: tctx, cancel: cancel, elected: m.now(), sched: make(chan struct{}, 1)}
	t.persist = newPersister(tctx, m.log, t.spawn)
	t.out = newOutbox(m, t)
	m.term, m.lastTerm = t, t
	m.st = newState(epoch)
	m.status = protocol.MasterStandby
	m.ha.LeaderTransitions++
	m.log.WithField("epoch", epoch).Info("We have gained leadership")
	m.mu.Unlock()
	m.kickConfirm() // a pause still unconfirmed covers this term too
	t.spawn(func() { m.lead(t) })
}

// onRevoked revokes the current term, if the master has not already, and
// waits for every goroutine of the last term before the Elector campaigns
// again.
func (m *Master) onRevoked(reason error) {
	m.mu.Lock()
	if m.term != nil {
		m.endTermLocked(reason, false)
	}
	t := m.lastTerm
	m.mu.Unlock()
	if t != nil {
		t.wait()
	}
}

// fenced handles a write or command refused because a newer epoch exists.
func (m *Master) fenced(t *term, err error) {
	m.stepDown(t, err, true)
}

// stepDown ends term t (nil = whatever term is current) and returns the
// master to STANDBY in this process; the Elector campaigns again. It may be
// called from a goroutine of the term, so it does not wait for them: the
// Elector's OnRevoked (or Run's end) does.
func (m *Master) stepDown(t *term, reason error, fenced bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == nil || (t != nil && m.term != t) {
		return
	}
	if fenced {
		m.ha.FencedWrites++
	}
	m.endTermLocked(reason, fenced)
}

// endTermLocked revokes the current term: it is cancelled (its senders,
// writes and loop stop), and the registries are dropped. An expected end (a
// resignation, the master stopping) is logged at Info; a lost term (fenced,
// session lost, self-fenced) at Warn, with Spark's line.
func (m *Master) endTermLocked(reason error, fenced bool) {
	t := m.term
	t.cancel()
	m.prom.retries += t.persist.failures.Load()
	m.term = nil
	m.st = newState(0)
	m.status = protocol.MasterStandby
	log := m.log.WithField("epoch", t.epoch).WithField("reason", fmt.Sprint(reason))
	if !fenced && expectedEnd(reason) {
		log.Info("Leadership handed over -- now STANDBY")
		return
	}
	log.Warn("Leadership has been revoked -- stepping down to STANDBY")
}

// expectedEnd reports whether a term ended because this master chose to
// (resign, stop), as opposed to losing it.
func expectedEnd(reason error) bool {
	if reason == nil || errors.Is(reason, recovery.ErrResigned) || errors.Is(reason, context.Canceled) || errors.Is(reason, errShutdown) {
		return true
	}
	return strings.Contains(reason.Error(), "elector stopped")
}

// errShutdown ends the term when Run returns.
var errShutdown = errors.New("master shutting down")

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
		// ALIVE at once, recovering the stored peers as they answer:
		// unlike Spark, which schedules nothing until every worker and
		// application answered or spark.worker.timeout passed, the master
		// takes new registrations and submissions and schedules on the
		// peers that have answered while the others re-attach. A peer that
		// has not answered is UNKNOWN: nothing is placed on it or given to
		// it, and what the store says it holds stays counted. Completing
		// the recovery (removing who did not answer, relaunching drivers
		// whose worker did not come back) waits, as in Spark, for every
		// answer or the recovery timeout.
		t.recovering = true
		t.recoverBy = m.now().Add(m.cfg.RecoveryTimeout)
		targets = m.beginRecoveryLocked(stored)
		m.log.WithField("epoch", t.epoch).Infof("I have been elected leader! New state: ALIVE (recovering %d workers and %d applications)",
			len(m.st.workers), len(m.st.apps))
		m.becomeAliveLocked(t)
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
	if t.recovering && !now.Before(t.recoverBy) {
		m.log.Infof("Recovery timeout (%s) reached", m.cfg.RecoveryTimeout)
		m.completeRecoveryLocked(t)
	}
	switch m.status {
	case protocol.MasterAlive:
		m.checkWorkerTimeoutsLocked(now)
		m.checkAppTimeoutsLocked(t, now)
		if due := m.settleExecutorsLocked(now); m.driversDueLocked(now) || due {
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
	m.prom.failover.Observe(m.ha.LastFailover.Seconds())
	m.ha.Failovers = append(m.ha.Failovers, Failover{Epoch: t.epoch, AliveAt: m.now(), Duration: m.ha.LastFailover})
	if over := len(m.ha.Failovers) - maxFailoversShown; over > 0 {
		m.ha.Failovers = append([]Failover(nil), m.ha.Failovers[over:]...)
	}
	m.noLeaderAt = time.Time{}
	m.scheduleSafeLocked()
}

// maxFailoversShown bounds HAStats.Failovers.
const maxFailoversShown = 10

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
