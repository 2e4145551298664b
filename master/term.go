package master

import (
	"context"
	"sync"
	"time"
)

// A term is one period of leadership, from OnElected to its revocation. It
// owns everything leader-only: the outbox (commands to workers and
// drivers), the persister (store writes) and the tick loop (timeouts,
// scheduling). Every goroutine it starts is started through term.spawn and
// is counted; revoking a term cancels its context and then waits for them
// all, so nothing of an old term runs when the master campaigns again.
//
// Effects leave the state machine only through the term, and their outcomes
// come back to it as events run under the state lock (see Master.onTerm):
// a launch the worker refused frees its resources, a write that failed is
// retried until it succeeds or the term ends, and an event of an ended term
// changes nothing.
//
// The registries (state) hold no I/O: a line of code that runs with the
// state lock held may queue messages and writes on the current term, and
// nothing else.
type term struct {
	epoch   int64
	ctx     context.Context
	cancel  context.CancelFunc
	elected time.Time
	// recovering: the term took office over stored peers and not all of
	// them have answered MasterChanged yet (see lead); recovery completes
	// by recoverBy at the latest.
	recovering bool
	recoverBy  time.Time
	persist    *persister
	out        *outbox       // messages to workers and clients, ordered per peer
	sched      chan struct{} // a scheduling pass is wanted (size 1: requests coalesce)

	wg sync.WaitGroup // every goroutine of the term
}

// spawn runs f on a goroutine of the term: revoke waits for it.
func (t *term) spawn(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// wait blocks until every goroutine of the term has returned. The term
// must have been cancelled; wait must not be called from one of them.
func (t *term) wait() { t.wg.Wait() }

// gate holds messages back until a store write settles: err is set before
// done is closed, and is nil when the write succeeded.
type gate struct {
	done chan struct{}
	err  error
}

func newGate() *gate { return &gate{done: make(chan struct{})} }

func (g *gate) open(err error) {
	g.err = err
	close(g.done)
}
