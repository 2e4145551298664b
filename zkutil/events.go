package zkutil

import (
	"strconv"
	"sync"
	"time"
)

// State is the session state as sparkd sees it.
type State int

const (
	// Disconnected: no usable session right now; the current one (if any) may
	// still be alive on the server and may come back.
	Disconnected State = iota
	// Connected: a session is established and a server is answering.
	Connected
	// Expired: the server expired the session (reported once per session). The
	// Conn goes on to open a new session with a new id; ephemeral nodes and
	// watches of the old one are gone.
	Expired
	// Closed: Close was called. Terminal.
	Closed
)

func (s State) String() string {
	switch s {
	case Disconnected:
		return "Disconnected"
	case Connected:
		return "Connected"
	case Expired:
		return "Expired"
	case Closed:
		return "Closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Event is one session-state change. SessionID is the session the event is
// about: for Expired, the session that expired.
type Event struct {
	State     State
	SessionID int64
	At        time.Time
}

type queuedEvent struct {
	Event
	seq uint64
}

// eventQueue is a coalescing, non-blocking event queue. push never blocks. A
// pending Disconnected or Connected event is replaced by a newer event, so the
// reader always gets the latest state; Expired and Closed events are never
// replaced, so every expiry is delivered (until Close: then what the reader
// has not taken may be dropped so that the final Closed always arrives). The
// pump goroutine delivers the head of the queue to out.
type eventQueue struct {
	mu      sync.Mutex
	pending []queuedEvent
	seq     uint64
	closed  bool
	notify  chan struct{} // cap 1: "pending changed"
	out     chan Event
	done    chan struct{} // closed when the pump has exited and out is closed
}

func newEventQueue() *eventQueue {
	q := &eventQueue{
		notify: make(chan struct{}, 1),
		out:    make(chan Event, 8),
		done:   make(chan struct{}),
	}
	go q.pump()
	return q
}

func (q *eventQueue) kick() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// push enqueues ev. It never blocks (the lock is only held by other short
// critical sections). After close, push is a no-op.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.seq++
	qe := queuedEvent{Event: ev, seq: q.seq}
	if n := len(q.pending); n > 0 {
		last := q.pending[n-1]
		if last.State == ev.State && last.SessionID == ev.SessionID {
			return // duplicate
		}
		if last.State == Disconnected || last.State == Connected {
			q.pending[n-1] = qe // coalesce: the newer state wins
			q.kick()
			return
		}
	}
	// Only Expired (one per session) and Closed (once) are never coalesced,
	// so an unread queue grows by one event per expired session at most:
	// nothing is dropped.
	q.pending = append(q.pending, qe)
	q.kick()
}

// close enqueues the final event and makes the pump deliver what it can
// without blocking, then close out.
func (q *eventQueue) close(final Event) {
	q.push(final)
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.kick()
	<-q.done
}

func (q *eventQueue) pump() {
	defer close(q.done)
	for {
		q.mu.Lock()
		closed := q.closed
		var head queuedEvent
		have := len(q.pending) > 0
		if have {
			head = q.pending[0]
		}
		q.mu.Unlock()

		if closed {
			q.drainOnClose()
			return
		}
		if !have {
			<-q.notify
			continue
		}
		select {
		case q.out <- head.Event:
			q.mu.Lock()
			if len(q.pending) > 0 && q.pending[0].seq == head.seq {
				q.pending = q.pending[1:]
			}
			q.mu.Unlock()
		case <-q.notify:
			// The queue changed (maybe head was coalesced); look again.
		}
	}
}

// drainOnClose moves the remaining events into out without blocking: when out
// is full, the oldest buffered event is dropped, so the reader always finds
// the latest (Closed) event before out is closed.
func (q *eventQueue) drainOnClose() {
	q.mu.Lock()
	rest := q.pending
	q.pending = nil
	q.mu.Unlock()
	for _, qe := range rest {
		for {
			select {
			case q.out <- qe.Event:
			default:
				select {
				case <-q.out: // drop the oldest to make room
				default:
				}
				continue
			}
			break
		}
	}
	close(q.out)
}
