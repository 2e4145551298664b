package zkrecovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// candidatePrefix names candidate nodes (after the protected-create GUID).
const candidatePrefix = "latch-"

// epochData is the content of <dir>/epoch.
type epochData struct {
	Epoch  int64     `json:"epoch"`
	Leader string    `json:"leader,omitempty"`
	Node   string    `json:"node,omitempty"` // candidate node name of the leader
	Since  time.Time `json:"since,omitempty"`
}

// Elector is the ZooKeeper recovery.Elector. Create it with New.
type Elector struct {
	conn *zkutil.Conn
	log  *logrus.Entry
	p    paths
	o    options
	sh   *shared

	resignCh chan chan error

	mu       sync.Mutex
	running  bool
	runDone  chan struct{}
	resigned bool
	leader   recovery.LeaderInfo
	leaderOK bool
}

// Leader returns the leader as this master last saw it: the lowest
// candidate, once it has taken office (the epoch znode names it).
func (e *Elector) Leader() (recovery.LeaderInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader, e.leaderOK
}

// LastContact is the last time ZooKeeper answered anything on the session.
func (e *Elector) LastContact() time.Time { return e.conn.LastContact() }

// Resign ends this master's term (if any) and its candidacy: the candidate
// node is deleted so a successor takes office at once. Run then waits for
// its context without campaigning again. Resign must not be called from a
// callback. It returns once done, or with ctx's error.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	if e.resigned {
		e.mu.Unlock()
		return nil
	}
	e.resigned = true
	running, done := e.running, e.runDone
	e.mu.Unlock()
	if !running {
		e.sh.clear()
		return nil
	}
	reply := make(chan error, 1)
	select {
	case e.resignCh <- reply:
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runState is the state of one Run: the campaign's own goroutine owns it.
type runState struct {
	e    *Elector
	me   recovery.Candidate
	cb   recovery.Callbacks
	data []byte // candidate node data

	node    string // our candidate node path, "" if none
	session int64  // session that owns node
	events  <-chan zkutil.Event
	w       watches // armed while standing by
}

// Run campaigns until ctx is done. Losing leadership never ends it; it
// returns nil when ctx is cancelled, or an error for a bad candidate or a
// fatal ZooKeeper error (authentication).
func (e *Elector) Run(ctx context.Context, me recovery.Candidate, cb recovery.Callbacks) error {
	if me.ID == "" {
		return errors.New("zkrecovery: candidate id is empty")
	}
	data, err := json.Marshal(me)
	if err != nil {
		return fmt.Errorf("zkrecovery: encode candidate: %w", err)
	}
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("zkrecovery: Run is already running")
	}
	e.running = true
	e.runDone = make(chan struct{})
	done := e.runDone
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
		close(done)
	}()

	r := &runState{e: e, me: me, cb: cb, data: data, events: e.conn.Events()}
	e.log = e.log.WithField("candidate", me.ID)
	if s := e.sh.mirror; s != nil {
		mctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.runMirror(mctx) })
		defer wg.Wait()
		defer stop()
		select {
		case s.mir.wake <- struct{}{}: // load it now
		default:
		}
	}
	err = r.loop(ctx)
	r.cleanup(ctx)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

var errStop = errors.New("stop")

// cleanup deletes the candidate node when Run ends, so that a successor
// does not wait for the session to expire.
func (r *runState) cleanup(ctx context.Context) {
	if r.node == "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.e.conn.Delete(cctx, r.node, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		r.e.log.WithError(err).Warn("cannot delete candidate node on stop; it goes with the session")
	}
	r.node = ""
}

func (r *runState) setLeader(info recovery.LeaderInfo, ok bool) {
	e := r.e
	e.mu.Lock()
	changed := ok != e.leaderOK || ok && (info.Candidate != e.leader.Candidate || info.Epoch != e.leader.Epoch)
	e.leader, e.leaderOK = info, ok
	e.mu.Unlock()
	if !changed {
		return
	}
	if ok {
		e.log.WithFields(logrus.Fields{"leader": info.ID, "epoch": info.Epoch, "leaderUrl": info.RPCURL}).Info("leader changed")
	} else {
		e.log.Info("no leader known")
	}
	if r.cb.OnLeaderChanged != nil {
		r.cb.OnLeaderChanged(info, ok)
	}
}

// resigned ends the candidacy (the term, if any, has been revoked by the
// caller), answers reply, and waits for ctx.
func (r *runState) resigned(ctx context.Context, reply chan error) error {
	e := r.e
	e.sh.clear()
	var err error
	if r.node != "" {
		err = e.conn.Delete(ctx, r.node, -1)
		if errors.Is(err, zk.ErrNoNode) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("zkrecovery: resign: delete candidate node: %w", err)
		}
		r.node = ""
	}
	e.log.Info("resigned: candidate node deleted, no longer campaigning")
	r.setLeader(recovery.LeaderInfo{}, false)
	reply <- err
	for {
		select {
		case <-ctx.Done():
			return errStop
		case rep := <-e.resignCh:
			rep <- nil
		}
	}
}

// loop is the campaign: level-triggered, it re-reads the election state
// after every wake-up.
func (r *runState) loop(ctx context.Context) error {
	e := r.e
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			if err := r.sleep(ctx, backoff); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return errStop
		}
		e.mu.Lock()
		res := e.resigned
		e.mu.Unlock()
		if res {
			// Resign was called before Run started.
			select {
			case rep := <-e.resignCh:
				return r.resigned(ctx, rep)
			default:
				return r.resigned(ctx, make(chan error, 1))
			}
		}
		err := r.step(ctx)
		switch {
		case err == nil:
			backoff = 0
		case errors.Is(err, errStop) || errors.Is(err, errResign):
			var re *resignErr
			if errors.As(err, &re) {
				return r.resigned(ctx, re.reply)
			}
			return errStop
		case errors.Is(err, zk.ErrNoAuth) || errors.Is(err, zk.ErrAuthFailed):
			return fmt.Errorf("zkrecovery: %w", err)
		default:
			if ctx.Err() != nil {
				return errStop
			}
			e.log.WithError(err).Debug("campaign step failed; retrying")
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			backoff = backoff/2 + rand.N(backoff/2+1)
		}
	}
}

var errResign = errors.New("resign requested")

type resignErr struct{ reply chan error }

func (*resignErr) Error() string        { return errResign.Error() }
func (*resignErr) Is(target error) bool { return target == errResign }

// sleep waits d, returning early on ctx or Resign.
func (r *runState) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errStop
	case rep := <-r.e.resignCh:
		return r.resigned(ctx, rep)
	case <-t.C:
		return nil
	}
}

type candidate struct {
	name string // node name (without directory)
	seq  int64
}

// parseSeq extracts the sequence number of a candidate node name.
func parseSeq(name string) (int64, bool) {
	if len(name) < 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil && n >= 0
}

func (r *runState) candidates(ctx context.Context) ([]candidate, error) {
	names, _, err := r.e.conn.Children(ctx, r.e.p.election)
	if err != nil {
		return nil, err
	}
	return sortCandidates(names), nil
}

// sortCandidates orders candidate node names by sequence number, dropping
// names without one.
func sortCandidates(names []string) []candidate {
	out := make([]candidate, 0, len(names))
	for _, n := range names {
		if seq, ok := parseSeq(n); ok {
			out = append(out, candidate{n, seq})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// step runs one round of the campaign: make sure we have a candidate node,
// then either take office (and hold it until the term ends) or wait for the
// predecessor / the epoch / the session to change. nil means "go again".
func (r *runState) step(ctx context.Context) error {
	e := r.e
	conn := e.conn
	if conn.State() != zkutil.Connected {
		return r.waitSession(ctx)
	}
	sid := conn.SessionID()
	if r.node != "" && r.session != sid {
		e.log.WithField("node", r.node).Info("session changed; the candidate node went with the old session")
		r.node = ""
	}
	if r.node == "" {
		if err := r.setup(ctx); err != nil {
			return err
		}
		node, err := conn.CreateProtectedEphemeralSequential(ctx, path.Join(e.p.election, candidatePrefix), r.data)
		if err != nil {
			return fmt.Errorf("create candidate node: %w", err)
		}
		ok, st, err := conn.Exists(ctx, node)
		if err != nil {
			// Keep it: the owner check is repeated before taking office.
			r.node, r.session = node, sid
			return err
		}
		if !ok || st.EphemeralOwner != sid || conn.SessionID() != sid {
			e.log.WithField("node", node).Warn("candidate node is not owned by this session; creating another")
			_ = conn.Delete(ctx, node, -1)
			return nil
		}
		r.node, r.session = node, sid
		e.log.WithField("node", node).Info("campaigning for leadership")
		r.sweepOrphans(ctx, sid)
	}

	cands, err := r.candidates(ctx)
	if err != nil {
		return err
	}
	own := -1
	for i, c := range cands {
		if path.Join(e.p.election, c.name) == r.node {
			own = i
		}
	}
	if own < 0 {
		e.log.WithField("node", r.node).Warn("candidate node is gone; campaigning again")
		r.node = ""
		return nil
	}
	if own == 0 {
		return r.takeOffice(ctx, sid)
	}

	// Standby: refresh the leader view, arm the watches that are not armed
	// yet, and wait for one of them (or the session, Resign, ctx).
	lowest := cands[0].name
	if err := r.refreshLeader(ctx, lowest); err != nil {
		return err
	}
	if err := r.arm(ctx, &r.w.leader, path.Join(e.p.election, lowest)); err != nil {
		return err
	}
	pred := path.Join(e.p.election, cands[own-1].name)
	if err := r.arm(ctx, &r.w.pred, pred); err != nil {
		return err
	}
	if r.w.pred.gone {
		r.w.pred = watch{}
		return nil // the predecessor went before the watch was set: look again
	}
	e.log.WithFields(logrus.Fields{"position": own, "watching": cands[own-1].name}).Debug("standing by")
	return r.waitFor(ctx)
}

// watch is one armed ZooKeeper watch of the standby. A watch is armed once
// and re-armed only after it fired: go-zookeeper keeps every watch until it
// fires, so re-arming on every wake-up would grow without bound.
type watch struct {
	path string
	ch   <-chan zk.Event
	gone bool // the node did not exist when the watch was set
}

// watches are the standby's armed watches: its predecessor (the election),
// the leader's candidate node (so that a standby never names a leader whose
// node is gone) and the epoch znode (a new leader took office).
type watches struct {
	pred, leader, epoch watch
}

// arm sets an exists-watch on p into w, unless w already watches p.
func (r *runState) arm(ctx context.Context, w *watch, p string) error {
	if w.ch != nil && w.path == p {
		return nil
	}
	ok, _, ch, err := r.e.conn.ExistsW(ctx, p)
	if err != nil {
		return err
	}
	*w = watch{path: p, ch: ch, gone: !ok}
	return nil
}

// sweepOrphans deletes candidate nodes of this session other than r.node.
// They come from a create whose reply was lost (a call that timed out but
// happened): left alone, such a node could become the lowest and stall the
// election until the session ends, since nobody would take office for it.
func (r *runState) sweepOrphans(ctx context.Context, sid int64) {
	conn := r.e.conn
	names, _, err := conn.Children(ctx, r.e.p.election)
	if err != nil {
		return // tried again with the next candidate node
	}
	for _, n := range names {
		p := path.Join(r.e.p.election, n)
		if p == r.node {
			continue
		}
		ok, st, err := conn.Exists(ctx, p)
		if err != nil || !ok || st.EphemeralOwner != sid {
			continue
		}
		r.e.log.WithField("node", n).Warn("deleting an orphan candidate node of this session")
		if err := conn.Delete(ctx, p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			r.e.log.WithError(err).WithField("node", n).Warn("cannot delete orphan candidate node")
		}
	}
}

// setup creates the directory layout and the epoch znode.
func (r *runState) setup(ctx context.Context) error {
	e := r.e
	for _, p := range []string{e.p.election, e.p.status, e.p.quarantine} {
		if err := e.conn.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	initial, _ := json.Marshal(epochData{})
	if _, err := e.conn.Create(ctx, e.p.epoch, initial, 0); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("create %s: %w", e.p.epoch, err)
	}
	return nil
}

// readEpoch reads the epoch znode; undecodable content is tolerated (the
// version alone keeps epochs increasing) and logged.
func (r *runState) readEpoch(ctx context.Context, watch bool) (epochData, *zk.Stat, <-chan zk.Event, error) {
	var (
		data []byte
		st   *zk.Stat
		ch   <-chan zk.Event
		err  error
	)
	if watch {
		data, st, ch, err = r.e.conn.GetW(ctx, r.e.p.epoch)
	} else {
		data, st, err = r.e.conn.Get(ctx, r.e.p.epoch)
	}
	if err != nil {
		return epochData{}, nil, nil, err
	}
	var ed epochData
	if err := json.Unmarshal(data, &ed); err != nil {
		r.e.log.WithError(err).WithField("path", r.e.p.epoch).Warn("epoch znode is not valid JSON; continuing from its version")
		ed = epochData{}
	}
	return ed, st, ch, nil
}

// refreshLeader sets the leader view from the lowest candidate and the
// epoch znode, arming the epoch watch if it is not armed.
func (r *runState) refreshLeader(ctx context.Context, lowest string) error {
	armEpoch := r.w.epoch.ch == nil
	ed, _, ch, err := r.readEpoch(ctx, armEpoch)
	if err != nil {
		return err
	}
	if armEpoch {
		r.w.epoch = watch{path: r.e.p.epoch, ch: ch}
	}
	if ed.Node != lowest {
		r.setLeader(recovery.LeaderInfo{}, false) // lowest has not taken office yet
		return nil
	}
	data, _, err := r.e.conn.Get(ctx, path.Join(r.e.p.election, lowest))
	if errors.Is(err, zk.ErrNoNode) {
		r.setLeader(recovery.LeaderInfo{}, false)
		return nil
	}
	if err != nil {
		return err
	}
	var c recovery.Candidate
	if err := json.Unmarshal(data, &c); err != nil {
		r.e.log.WithError(err).WithField("node", lowest).Warn("leader's candidate node holds invalid data")
		c = recovery.Candidate{ID: ed.Leader}
	}
	r.setLeader(recovery.LeaderInfo{Candidate: c, Epoch: ed.Epoch, Since: ed.Since}, true)
	return nil
}

// waitSession waits for a session event, Resign or ctx.
func (r *runState) waitSession(ctx context.Context) error {
	return r.waitFor(ctx)
}

// standbyRecheck is a safety net under the watches and session events: the
// standby looks at the election again this often without any of them. It
// arms no watch that is armed already.
const standbyRecheck = 30 * time.Second

// waitFor blocks until an armed watch fires (it is then disarmed, to be
// armed again by the next step), the session changes state, Resign, or ctx.
func (r *runState) waitFor(ctx context.Context) error {
	t := time.NewTimer(standbyRecheck)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errStop
	case rep := <-r.e.resignCh:
		return &resignErr{rep}
	case <-r.w.pred.ch:
		r.w.pred = watch{}
	case <-r.w.leader.ch:
		r.w.leader = watch{}
	case <-r.w.epoch.ch:
		r.w.epoch = watch{}
	case ev, ok := <-r.events:
		if !ok {
			r.events = nil
		} else if ev.State == zkutil.Expired || ev.State == zkutil.Closed {
			r.w = watches{} // they went with the session
		}
	case <-t.C:
	}
	return nil
}

// nextEpoch is the epoch a leader opens when the epoch znode reads ed with
// stat st: one more than the largest of the epoch stored there, the
// znode's version, the zxid of its last change (Mzxid) and floor - 1.
//
// The zxid is what makes epochs survive the loss of the directory. ZooKeeper
// orders every transaction of an ensemble by a zxid that only grows; the
// transaction that opened epoch E changed the znode, so its zxid is at
// least E. An epoch znode created again after `deleteall` of the directory
// is created by a later transaction, so its Mzxid, and the next epoch, are
// above every epoch opened before, and workers (which refuse lower epochs)
// accept the new leader. Two leaders can never open the same epoch: each
// opening changes the znode (SetData with the version read), so the next
// leader reads a higher Mzxid, and of two that read the same stat only one
// SetData succeeds. Zxids restart low only in a new ensemble (its data
// directories wiped); floor (spark.deploy.zookeeper.epochFloor) lifts the
// epochs above those a fleet has seen then.
//
// The result also differs from the previous epoch in its last decimal
// digit: the master numbers application and driver ids in a block per
// epoch mod 10, and consecutive terms must not share a block.
func nextEpoch(ed epochData, st *zk.Stat, floor int64) int64 {
	next := max(ed.Epoch, int64(st.Version), st.Mzxid, floor-1) + 1
	if ed.Epoch > 0 && next%10 == ed.Epoch%10 {
		next++
	}
	return next
}

// takeOffice opens a new epoch and holds it until the term ends.
func (r *runState) takeOffice(ctx context.Context, sid int64) error {
	e := r.e
	conn := e.conn
	ok, nst, err := conn.Exists(ctx, r.node)
	if err != nil {
		return err
	}
	if !ok || nst.EphemeralOwner != sid {
		e.log.WithField("node", r.node).Warn("candidate node is gone or not owned by this session")
		r.node = ""
		return nil
	}
	// Do not take office while ZooKeeper looks silent: the term would be
	// self-fenced at once (and, with a skewed clock, writes could slip in).
	bound := selfFenceBound(conn.NegotiatedTimeout(), e.o.selfFenceAfter)
	if silent := e.o.now().Sub(conn.LastContact()); silent >= bound {
		return fmt.Errorf("not taking office: %w: silent for %v", ErrSelfFenced, silent.Round(time.Millisecond))
	}
	ed, est, _, err := r.readEpoch(ctx, false)
	if err != nil {
		return err
	}
	next := nextEpoch(ed, est, e.o.epochFloor)
	newData, err := json.Marshal(epochData{Epoch: next, Leader: r.me.ID, Node: path.Base(r.node), Since: time.Now().UTC()})
	if err != nil {
		return err
	}
	res, err := conn.Multi(ctx,
		&zk.CheckVersionRequest{Path: r.node, Version: nst.Version},
		&zk.SetDataRequest{Path: e.p.epoch, Data: newData, Version: est.Version})
	if err != nil {
		if len(res) > 0 && errors.Is(res[0].Error, zk.ErrNoNode) {
			r.node = ""
			return nil
		}
		return fmt.Errorf("open epoch %d: %w", next, err)
	}
	if conn.SessionID() != sid {
		return nil // the session changed under us; the node check will tell
	}
	t := &term{epoch: next, version: est.Version + 1, node: r.node, session: sid}
	return r.lead(ctx, t)
}

// lead holds office for term t until it ends, then revokes it.
func (r *runState) lead(ctx context.Context, t *term) error {
	e := r.e
	conn := e.conn
	bound := selfFenceBound(conn.NegotiatedTimeout(), e.o.selfFenceAfter)
	interval := min(max(bound/10, 5*time.Millisecond), 250*time.Millisecond)
	log := e.log.WithFields(logrus.Fields{"epoch": t.epoch, "session": fmt.Sprintf("0x%x", t.session)})

	if err := r.checkTerm(t, bound); err != nil {
		return fmt.Errorf("not taking office for epoch %d: %w", t.epoch, err)
	}
	e.sh.begin(t)
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	log.WithField("selfFenceAfter", bound).Info("took office with a new epoch")
	r.setLeader(recovery.LeaderInfo{Candidate: r.me, Epoch: t.epoch, Since: time.Now()}, true)
	if r.cb.OnElected != nil {
		r.cb.OnElected(termCtx, t.epoch)
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var nodeCh <-chan zk.Event
	armNode := func() error {
		ok, _, ch, err := conn.ExistsW(termCtx, t.node)
		if err != nil {
			return nil // retried on the next tick; the self-fence covers silence
		}
		if !ok {
			return ErrCandidateLost
		}
		nodeCh = ch
		return nil
	}
	reason := armNode()
	var reply chan error
	for reason == nil {
		select {
		case <-ctx.Done():
			reason = fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
		case reply = <-e.resignCh:
			reason = recovery.ErrResigned
		case rv := <-e.sh.revoke:
			if rv.t == t {
				reason = rv.reason
			}
		case <-nodeCh:
			nodeCh = nil
			reason = armNode()
		case _, ok := <-r.events:
			if !ok {
				r.events = nil
			}
			reason = r.checkTerm(t, bound)
		case <-ticker.C:
			reason = r.checkTerm(t, bound)
			if reason == nil && nodeCh == nil {
				reason = armNode()
			}
		}
	}

	// Revoke: stop writes first, then leader-only work, then tell the master.
	e.sh.end(t, reason)
	cancel()
	if errors.Is(reason, ErrStopped) || errors.Is(reason, recovery.ErrResigned) {
		log.WithError(reason).Info("leadership handed over")
	} else {
		log.WithError(reason).Warn("leadership revoked")
	}
	if r.cb.OnRevoked != nil {
		r.cb.OnRevoked(reason)
	}
	r.setLeader(recovery.LeaderInfo{}, false)
	switch {
	case reply != nil:
		return &resignErr{reply}
	case errors.Is(reason, ErrStopped):
		return errStop
	case errors.Is(reason, ErrCandidateLost), errors.Is(reason, ErrSessionLost):
		r.node = ""
	case errors.Is(reason, recovery.ErrFenced):
		// Someone else took office although our node looked lowest: start
		// over at the back of the queue.
		if r.node != "" {
			_ = conn.Delete(ctx, r.node, -1)
		}
		r.node = ""
	}
	return nil
}

// checkTerm returns why term t must end, or nil.
func (r *runState) checkTerm(t *term, bound time.Duration) error {
	conn := r.e.conn
	if st := conn.State(); st == zkutil.Expired || st == zkutil.Closed {
		return fmt.Errorf("%w (state %v)", ErrSessionLost, st)
	}
	if sid := conn.SessionID(); sid != t.session {
		return fmt.Errorf("%w (0x%x -> 0x%x)", ErrSessionLost, t.session, sid)
	}
	if silent := r.e.o.now().Sub(conn.LastContact()); silent >= bound {
		return fmt.Errorf("%w: silent for %v (bound %v)", ErrSelfFenced, silent.Round(time.Millisecond), bound)
	}
	return nil
}

// selfFenceBound is the configured bound, or 2/3 of the negotiated session
// timeout; it is always below the session timeout.
func selfFenceBound(negotiated, configured time.Duration) time.Duration {
	def := time.Duration(float64(negotiated) * DefaultSelfFenceFraction)
	if configured <= 0 {
		return def
	}
	return min(configured, def)
}
