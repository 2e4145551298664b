package recovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// localElector is the Elector of NONE and FILESYSTEM: a single master that
// is always elected ("monarchy", as Spark calls it). Its epoch comes from
// nextEpoch, called once per Run.
type localElector struct {
	log       *logrus.Entry
	nextEpoch func() (int64, error)
	onTerm    func(active bool) // tells the Store whether writes are allowed

	mu       sync.Mutex
	leader   LeaderInfo
	ok       bool
	resigned bool
	resignCh chan struct{}
}

func newLocalElector(log *logrus.Entry, nextEpoch func() (int64, error), onTerm func(bool)) *localElector {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &localElector{log: log, nextEpoch: nextEpoch, onTerm: onTerm, resignCh: make(chan struct{})}
}

// Run elects me at once and holds office until ctx is done or Resign is
// called; after Resign it waits for ctx without campaigning again.
func (e *localElector) Run(ctx context.Context, me Candidate, cb Callbacks) error {
	if me.ID == "" {
		return errors.New("recovery: candidate id is empty")
	}
	e.mu.Lock()
	resigned := e.resigned
	e.mu.Unlock()
	if resigned {
		<-ctx.Done()
		return nil
	}
	epoch, err := e.nextEpoch()
	if err != nil {
		return err
	}
	info := LeaderInfo{Candidate: me, Epoch: epoch, Since: time.Now()}
	e.mu.Lock()
	e.leader, e.ok = info, true
	e.mu.Unlock()
	e.onTerm(true)
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.log.WithField("epoch", epoch).Info("elected leader (single-master recovery mode)")
	if cb.OnLeaderChanged != nil {
		cb.OnLeaderChanged(info, true)
	}
	if cb.OnElected != nil {
		cb.OnElected(termCtx, epoch)
	}
	var reason error
	select {
	case <-ctx.Done():
		reason = fmt.Errorf("recovery: elector stopped: %w", context.Cause(ctx))
	case <-e.resignCh:
		reason = ErrResigned
	}
	e.onTerm(false)
	cancel()
	e.mu.Lock()
	e.ok = false
	e.mu.Unlock()
	if cb.OnRevoked != nil {
		cb.OnRevoked(reason)
	}
	if cb.OnLeaderChanged != nil {
		cb.OnLeaderChanged(LeaderInfo{}, false)
	}
	<-ctx.Done()
	return nil
}

// Resign ends the term; Run then waits for its ctx without campaigning.
func (e *localElector) Resign(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.resigned {
		e.resigned = true
		close(e.resignCh)
	}
	return nil
}

func (e *localElector) Leader() (LeaderInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader, e.ok
}

func (e *localElector) LastContact() time.Time { return time.Time{} }

// Confirm has no one to ask: a single master holds office until it stops or
// resigns, so it returns nil while elected and ErrNotLeader otherwise.
func (e *localElector) Confirm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: confirm: %w", ErrNotLeader, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.ok {
		return fmt.Errorf("%w: confirm: not elected", ErrNotLeader)
	}
	return nil
}

// NewNone returns the NONE recovery mode: an Elector that elects its
// candidate at once with epoch 1, and a Store that keeps nothing (writes
// succeed, Read returns an empty State).
func NewNone() (Elector, Store) {
	return newLocalElector(nil, func() (int64, error) { return 1, nil }, func(bool) {}), noneStore{}
}

type noneStore struct{}

// The NONE store validates like the others (so a bad record fails the same
// way in every mode) and then discards.
func (noneStore) PutApp(_ context.Context, r AppRecord) error { _, _, err := Encode(&r); return err }
func (noneStore) PutDriver(_ context.Context, r DriverRecord) error {
	_, _, err := Encode(&r)
	return err
}
func (noneStore) PutWorker(_ context.Context, r WorkerRecord) error {
	_, _, err := Encode(&r)
	return err
}
func (noneStore) Remove(_ context.Context, _ Kind, id string) error { return ValidateID(id) }
func (noneStore) Read(context.Context) (State, error)               { return State{}, nil }
func (noneStore) Close() error                                      { return nil }
