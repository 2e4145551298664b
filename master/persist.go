package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/recovery"
)

// persister carries one term's store writes. It belongs to the term: its
// goroutines are the term's, and it refuses work once the term has ended.
//
// Guarantees:
//   - Writes with the same stripe key are applied in the order they were
//     queued (callers queue with the state lock held, so in the order of
//     the state changes); writes with different keys proceed concurrently.
//   - A write that fails for a reason that may pass (a connection lost, a
//     ZooKeeper server restarting, a timeout) is retried with backoff until
//     it succeeds, a newer write of the same record replaces it, or the term
//     ends. Only a fenced or non-leader write, a record the store refuses
//     (too large, a bad id) or the end of the term stops it.
//   - A queued write of a record that a newer write of the same record
//     reaches first is dropped: the newer one writes the whole record. Its
//     waiters are answered by the newer write.
//   - Every op queued gets exactly one answer (its done callback runs once),
//     also when the term ends first: then with an error wrapping
//     recovery.ErrNotLeader. enqueue never blocks and does no I/O; once the
//     term has ended it answers at once, from another goroutine.
type persister struct {
	ctx     context.Context
	log     *logrus.Entry
	spawn   func(func()) // starts a goroutine of the term
	stripes []*stripe
	depth   atomic.Int64 // ops queued or in flight

	retryMin, retryMax time.Duration
	failures           atomic.Uint64 // attempts that failed and were retried
}

type stripe struct {
	mu     sync.Mutex
	queue  []*persistOp
	closed bool
	signal chan struct{}
	// inFlight is the record key of the op being written ("" when idle or
	// not coalescible); a newer op of that key supersedes its retries.
	inFlight string
}

// persistOp is one store write.
type persistOp struct {
	// record is the record the write concerns (recovery.Key form). A queued
	// op is replaced by a newer op of the same record when record != "".
	record string
	fn     func(ctx context.Context) error
	// done callbacks each run once with the outcome, on a goroutine of the
	// persister, without any lock held.
	done []func(error)
	// superseded is set when a newer op of the same record took over this
	// op's waiters while it was being retried.
	superseded bool
}

const persistStripes = 128

// Retry backoff of failed writes.
const (
	persistRetryMin = 50 * time.Millisecond
	persistRetryMax = 2 * time.Second
)

// errTermEnded is the answer to writes queued or pending when a term ends.
var errTermEnded = fmt.Errorf("%w: term ended", recovery.ErrNotLeader)

func newPersister(ctx context.Context, log *logrus.Entry, spawn func(func())) *persister {
	p := &persister{ctx: ctx, log: log, spawn: spawn, retryMin: persistRetryMin, retryMax: persistRetryMax}
	for range persistStripes {
		s := &stripe{signal: make(chan struct{}, 1)}
		p.stripes = append(p.stripes, s)
		spawn(func() { p.run(s) })
	}
	return p
}

// Depth is how many writes are queued or in flight.
func (p *persister) Depth() int64 { return p.depth.Load() }

// enqueue queues op under stripe key. See persister for the guarantees.
func (p *persister) enqueue(key string, op *persistOp) {
	s := p.stripes[fnv32(key)%uint32(len(p.stripes))]
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		done := op.done
		p.spawn(func() { answer(done, errTermEnded) })
		return
	}
	if op.record != "" {
		for _, q := range s.queue {
			if q.record == op.record {
				// Not started yet: the newer record replaces it.
				q.fn = op.fn
				q.done = append(q.done, op.done...)
				s.mu.Unlock()
				return
			}
		}
	}
	p.depth.Add(1)
	s.queue = append(s.queue, op)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func answer(done []func(error), err error) {
	for _, f := range done {
		f(err)
	}
}

func (p *persister) run(s *stripe) {
	for {
		s.mu.Lock()
		var op *persistOp
		if len(s.queue) > 0 {
			op = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.inFlight = op.record
		}
		s.mu.Unlock()
		if op == nil {
			select {
			case <-s.signal:
				continue
			case <-p.ctx.Done():
				p.close(s)
				return
			}
		}
		err := p.apply(s, op)
		s.mu.Lock()
		s.inFlight = ""
		s.mu.Unlock()
		p.depth.Add(-1)
		if !op.superseded {
			answer(op.done, err)
		}
	}
}

// apply writes op, retrying what may pass, until it succeeds, is
// superseded, or cannot succeed in this term.
func (p *persister) apply(s *stripe, op *persistOp) error {
	backoff := p.retryMin
	for attempt := 1; ; attempt++ {
		if p.ctx.Err() != nil {
			return errTermEnded
		}
		err := op.fn(p.ctx)
		if err == nil || !retryable(err) || p.ctx.Err() != nil {
			if err != nil && p.ctx.Err() != nil && !errors.Is(err, recovery.ErrFenced) {
				return fmt.Errorf("%w (last error: %w)", errTermEnded, err)
			}
			return err
		}
		p.failures.Add(1)
		if p.handOver(s, op) {
			return nil
		}
		lvl := logrus.WarnLevel
		if attempt > 1 {
			lvl = logrus.DebugLevel
		}
		p.log.WithError(err).Logf(lvl, "Could not persist %s (attempt %d); retrying in %s", orKey(op.record), attempt, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", errTermEnded, err)
		case <-t.C:
		}
		backoff = min(2*backoff, p.retryMax)
		if p.handOver(s, op) {
			return nil
		}
	}
}

// handOver gives op's waiters to a newer queued op of the same record, if
// there is one: that op writes the whole record, so op need not.
func (p *persister) handOver(s *stripe, op *persistOp) bool {
	if op.record == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queue {
		if q.record == op.record {
			q.done = append(op.done, q.done...)
			op.superseded = true
			return true
		}
	}
	return false
}

// close refuses new ops and answers the queued ones: the term is over.
func (p *persister) close(s *stripe) {
	s.mu.Lock()
	s.closed = true
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, op := range q {
		p.depth.Add(-1)
		answer(op.done, errTermEnded)
	}
}

// retryable reports whether a failed write may succeed if tried again in
// the same term.
func retryable(err error) bool {
	switch {
	case errors.Is(err, recovery.ErrFenced), errors.Is(err, recovery.ErrNotLeader),
		errors.Is(err, recovery.ErrTooLarge), errors.Is(err, recovery.ErrBadID),
		errors.Is(err, recovery.ErrBadRecord), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

func orKey(k string) string {
	if k == "" {
		return "a record"
	}
	return k
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
