package zkrecovery

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/sparkd/sparkd/recovery"
)

// Group commit. Writes that arrive while earlier ones are on their way to
// ZooKeeper are sent together, as one fenced multi (the term's two checks,
// then every write), so that a burst of registrations costs a few
// ZooKeeper transactions, not one each. A write that arrives when nothing
// is in flight is sent at once, alone: group commit adds no latency when
// there is nothing to group.
//
// Guarantees:
//   - A grouped write returns nil only once the multi holding it committed:
//     every write of a group commits, or none does (ZooKeeper's multi is
//     atomic).
//   - A group holds writes of one term only, and starts with that term's
//     checks: a deposed leader's group is refused as a whole, as a single
//     write would be.
//   - Writes issued sequentially by one goroutine commit in that order (the
//     second is queued only after the first returned). Writes queued
//     concurrently may commit in any order (up to groupsInFlight groups
//     race to ZooKeeper), as concurrent single writes would.
//   - A group whose multi fails because of one write (a Create of a record
//     that exists) commits nothing; every write of it is then retried on
//     its own, so one write cannot fail another.

// groupMaxOps and groupMaxBytes bound one group (ZooKeeper refuses requests
// over jute.maxbuffer, 1 MiB by default); a record larger than
// groupMaxBytes goes alone.
const (
	groupMaxOps   = 256
	groupMaxBytes = 512 << 10
)

// groupsInFlight is how many groups may be on their way at once.
const groupsInFlight = 2

type grouper struct {
	mu       sync.Mutex
	pending  []*groupOp
	inFlight int
}

// groupOp is one write waiting for its group.
type groupOp struct {
	t    *term
	op   any
	size int
	done chan struct{}
	// Set before done is closed: err is the group's outcome (nil =
	// committed); res is this write's own result when ZooKeeper answered
	// per op (answered).
	err      error
	res      zk.MultiResponse
	answered bool
}

// grouped queues op (a Create, SetData or Delete of size bytes) for the
// next group of term t and waits for that group's outcome. It returns nil
// only if ctx ended first; the write may still be sent then.
func (s *Store) grouped(ctx context.Context, t *term, op any, size int) *groupOp {
	g := &groupOp{t: t, op: op, size: size, done: make(chan struct{})}
	s.group.mu.Lock()
	s.group.pending = append(s.group.pending, g)
	start := s.group.inFlight < groupsInFlight
	if start {
		s.group.inFlight++
	}
	s.group.mu.Unlock()
	if start {
		go s.sendGroups()
	}
	select {
	case <-g.done:
		return g
	case <-ctx.Done():
		return nil
	}
}

// outcome tells a write what its group's outcome (g; nil when ctx ended
// first) means for it: done with err as its answer (committed, fenced, no
// answer from ZooKeeper, or ctx ended), or not done: some write of the
// group failed it, and this one is to be tried alone.
func (g *groupOp) outcome(ctx context.Context, what string) (done bool, err error) {
	switch {
	case g == nil:
		return true, fmt.Errorf("zkrecovery: %s: %w (the write may still happen)", what, ctx.Err())
	case g.err == nil:
		return true, nil
	case errors.Is(g.err, recovery.ErrFenced) || !g.answered:
		return true, fmt.Errorf("%s: %w", what, g.err)
	}
	return false, nil
}

// sendGroups sends groups until none is pending.
func (s *Store) sendGroups() {
	for {
		batch := s.takeGroup()
		if len(batch) == 0 {
			return
		}
		s.sendGroup(batch)
	}
}

// takeGroup takes the next group off the queue: writes of the first
// pending write's term, in order, within the limits. With nothing pending
// it gives up its in-flight slot.
func (s *Store) takeGroup() []*groupOp {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	q := s.group.pending
	if len(q) == 0 {
		s.group.inFlight--
		return nil
	}
	t := q[0].t
	var batch []*groupOp
	rest := q[:0]
	size := 0
	for _, g := range q {
		if sameTerm(g.t, t) && len(batch) < groupMaxOps && (len(batch) == 0 || size+g.size <= groupMaxBytes) {
			batch = append(batch, g)
			size += g.size
			continue
		}
		rest = append(rest, g)
	}
	for i := len(rest); i < len(q); i++ {
		q[i] = nil
	}
	s.group.pending = rest
	return batch
}

// sameTerm: a and b (copies handed out by shared.current) are one term.
func sameTerm(a, b *term) bool {
	return a.epoch == b.epoch && a.version == b.version && a.node == b.node && a.session == b.session
}

func (s *Store) sendGroup(batch []*groupOp) {
	t := batch[0].t
	ops := make([]any, len(batch))
	for i, g := range batch {
		ops[i] = g.op
	}
	checks := []any{
		&zk.CheckVersionRequest{Path: s.p.epoch, Version: t.version},
		&zk.CheckVersionRequest{Path: t.node, Version: 0},
	}
	what := "write"
	if len(batch) > 1 {
		what = fmt.Sprintf("group of %d writes", len(batch))
	}
	res, err := s.multi(context.Background(), what, t, checks, ops...)
	for i, g := range batch {
		g.err = err
		if len(res) > nChecks+i {
			g.res, g.answered = res[nChecks+i], true
		}
		close(g.done)
	}
}
