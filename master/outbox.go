package master

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// outbox delivers the messages of one term in order per destination.
//
// Every worker and application client gets its own FIFO queue; a bounded
// pool of senders serves the queues round-robin, one message of a peer at a
// time: a peer's next message is sent only after it answered (or the call
// failed) the previous one. So a KillExecutor never overtakes its
// LaunchExecutor, and an application never sees an executor EXITED before
// it was ADDED.
//
// Guarantees:
//   - Messages to one destination are sent in the order they were queued.
//     Callers queue with the state lock held, so that is the order of the
//     state changes that produced them.
//   - Queuing never blocks and does no I/O: a slow or hung peer delays only
//     its own queue, never another peer or the state lock.
//   - At most outboxSenders calls are in flight that have not yet taken
//     slowSend; a call that takes longer no longer counts (another sender
//     starts, up to outboxMaxSenders in all), so hung peers cannot starve
//     the others. Goroutines and
//     connections follow the calls in flight, not the number of peers:
//     re-attaching 15,000 peers takes outboxSenders goroutines, not 15,000.
//   - A queue holds at most peerQueueLimit messages; beyond that, new
//     messages to that peer are dropped and logged (the peer is not keeping
//     up; workers and drivers re-sync through heartbeats and state reports).
//   - The outbox belongs to one term: when the term ends, its senders stop,
//     queued messages are dropped and an in-flight call is cancelled, so
//     nothing queued in an old term is sent in a new one.
//   - Senders exit as soon as no queue has a message; an idle outbox costs
//     no goroutine, an idle peer no memory.
//   - Nothing is taken off a queue, and nothing is sent, while the master is
//     self-fenced (Master.selfFenced: stale contact with the coordination
//     service, or a pause not yet confirmed); messages wait, and are dropped
//     with the term if it ends meanwhile.
type outbox struct {
	m     *Master
	t     *term
	mu    sync.Mutex
	peers map[string]*peerQueue // by destination; only peers with messages
	// ready lists the peers with a message and no call in flight, in the
	// order they became ready (each at most once).
	ready []*peerQueue
	// senders are running; fast of them are not in a slow call.
	senders, fast int
	depth         atomic.Int64 // messages queued or in flight
}

// peerQueueLimit bounds the messages queued for one peer.
const peerQueueLimit = 1024

// outboxSenders bounds the calls in flight (not counting slow ones), and so
// the master's goroutines and connections for its outgoing messages.
const outboxSenders = 64

// outboxMaxSenders bounds all senders, slow ones included (a gate waiting
// on a stalled store write counts as slow): hung peers and stalled writes
// cost at most this many goroutines.
const outboxMaxSenders = 1024

// slowSend: a call in flight this long stops counting against
// outboxSenders.
const slowSend = 250 * time.Millisecond

type peerQueue struct {
	base, key string
	items     []outMsg
	dropped   int  // messages refused since the queue last had room
	busy      bool // in ready, or a call to the peer is in flight
}

// outMsg is one message for a peer.
type outMsg struct {
	path string
	req  any
	resp any // decoded answer, or nil
	// gate, when set, holds the message (and everything queued after it
	// for the same peer) until it yields; a non-nil error drops the message.
	gate *gate
	// done, when set, is called with the outcome of the call (nil =
	// delivered). It is not called for a message dropped because its term
	// ended or its gate failed. It runs on the sender goroutine, without
	// the state lock.
	done func(err error)
}

func newOutbox(m *Master, t *term) *outbox {
	return &outbox{m: m, t: t, peers: map[string]*peerQueue{}}
}

func peerKey(base string) string { return strings.TrimRight(base, "/") }

// enqueue queues msg for base and makes the peer ready if no call to it is
// in flight. It reports whether the message was queued.
func (o *outbox) enqueue(base string, msg outMsg) bool {
	key := peerKey(base)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.t.ctx.Err() != nil {
		return false
	}
	q := o.peers[key]
	if q == nil {
		q = &peerQueue{base: base, key: key}
		o.peers[key] = q
	}
	if len(q.items) >= peerQueueLimit {
		if q.dropped == 0 {
			o.m.log.Warnf("%s is not keeping up (%d messages queued); dropping %s and further messages until it catches up",
				base, len(q.items), msg.path)
		}
		q.dropped++
		return false
	}
	if q.dropped > 0 {
		o.m.log.Warnf("Dropped %d messages to %s while it was not keeping up", q.dropped, base)
		q.dropped = 0
	}
	q.items = append(q.items, msg)
	o.depth.Add(1)
	if !q.busy {
		q.busy = true
		o.ready = append(o.ready, q)
		o.startSenderLocked()
	}
	return true
}

// startSenderLocked starts a sender if a peer is ready and fewer than
// outboxSenders senders are not in a slow call.
func (o *outbox) startSenderLocked() {
	if len(o.ready) > 0 && o.fast < outboxSenders && o.senders < outboxMaxSenders {
		o.senders++
		o.fast++
		o.t.spawn(o.run)
	}
}

// run is one sender: it takes the next ready peer, delivers that peer's
// next message, and puts the peer back at the end of the ready list if it
// has more. It exits when no peer is ready, when there are more fast
// senders than outboxSenders (a slow call ended), or when the term ended.
func (o *outbox) run() {
	for {
		if !o.waitActing() {
			o.mu.Lock()
			o.senders--
			o.fast--
			o.mu.Unlock()
			return
		}
		o.mu.Lock()
		if len(o.ready) == 0 || o.fast > outboxSenders || o.t.ctx.Err() != nil {
			o.senders--
			o.fast--
			o.mu.Unlock()
			return
		}
		q := o.ready[0]
		o.ready[0] = nil
		o.ready = o.ready[1:]
		msg := q.items[0]
		q.items[0] = outMsg{}
		q.items = q.items[1:]
		o.mu.Unlock()

		slow := false
		tm := time.AfterFunc(slowSend, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			if !slow {
				slow = true
				o.fast--
				o.startSenderLocked()
			}
		})
		o.deliver(q.base, msg)
		o.depth.Add(-1)
		tm.Stop()

		o.mu.Lock()
		if slow {
			o.fast++
		}
		slow = true // the timer, if it fires now, changes nothing
		if len(q.items) > 0 {
			o.ready = append(o.ready, q)
		} else {
			q.busy = false
			if o.peers[q.key] == q {
				delete(o.peers, q.key)
			}
		}
		o.mu.Unlock()
	}
}

func (o *outbox) deliver(base string, msg outMsg) {
	t := o.t
	if msg.gate != nil {
		select {
		case <-msg.gate.done:
			if msg.gate.err != nil {
				return
			}
		case <-t.ctx.Done():
			return
		}
	}
	var err error
	for {
		if !o.waitActing() {
			return
		}
		if testHookBeforeSend != nil {
			testHookBeforeSend(msg.path)
		}
		// The master may fence itself between the wait and the send (a
		// starved leader mid-recovery): nothing was sent then, so wait and
		// send again rather than report the peer as not answering.
		if err = o.m.send(t, base, msg.path, msg.req, msg.resp); !errors.Is(err, errSelfFenced) {
			break
		}
	}
	if t.ctx.Err() != nil {
		return
	}
	if msg.done != nil {
		msg.done(err)
	} else if err != nil {
		o.m.log.WithError(err).Debugf("could not deliver %s to %s", msg.path, base)
	}
}

// testHookBeforeSend, when set by a test, runs between the self-fence wait
// and the send (to fence the master exactly there).
var testHookBeforeSend func(path string)

// selfFencedPoll is how often a sender looks whether the master may act
// again.
const selfFencedPoll = 10 * time.Millisecond

// waitActing blocks while the master is self-fenced. It reports false when
// the term ended.
func (o *outbox) waitActing() bool {
	for o.m.selfFenced() != "" {
		tm := time.NewTimer(selfFencedPoll)
		select {
		case <-o.t.ctx.Done():
			tm.Stop()
			return false
		case <-tm.C:
		}
	}
	return o.t.ctx.Err() == nil
}
