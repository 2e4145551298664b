package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sparkd/sparkd/recovery"
)

// Pause detection: the zombie-leader guard (Curator TN10, ha-anchors I4).
//
// A leader stopped (SIGSTOP, a stalled VM, a long GC) past its session
// timeout has lost its term to a successor, but on waking nothing it holds
// says so yet: the Elector has not processed the expiry, and bytes that sat
// in the socket during the pause arrive as fresh "contact" (LastContact).
// For a few milliseconds it would report ALIVE and push commands with its
// old epoch.
//
// So the master keeps its own monotonic ticker (pauseEvery). A tick that
// finds the previous one more than pauseThreshold ago marks the term
// unconfirmed (before it records the new tick, so that there is no instant
// where neither closes the gate), and asks the Elector to Confirm the term
// with a round trip sent after the pause. Until Confirm succeeds the master
// neither reports ALIVE nor sends anything; if it fails the master steps
// down to STANDBY. Between the end of a pause and the first tick after it,
// the gap itself closes the gate: now - lastTick > pauseThreshold.
//
// Why pauseThreshold = max(100ms, SelfFenceAfter/4) is safe: ZooKeeper
// expires a session only after hearing nothing from it for the session
// timeout T. The client pings every T/3 while the process runs, and
// SelfFenceAfter is at most 2T/3, so a pause shorter than the threshold (at
// most max(100ms, T/6)) ends long before the server can have been silent
// for T: the term is still held. Anything longer is confirmed. The 100ms
// floor keeps scheduling hiccups of a loaded machine from triggering
// confirmations all the time; the ZooKeeper server's minimum session timeout
// (2 ticks, in practice a second or more) is far above it.
//
// Pause detection is on when SelfFenceAfter > 0 (a coordination service is
// in use); NONE and FILESYSTEM have no successor to fear.
type pauseGuard struct {
	every     time.Duration // tick interval
	threshold time.Duration // a larger gap between ticks is a pause; 0 = off

	mu         sync.Mutex
	lastTick   time.Time
	gaps       uint64        // pauses detected
	confirmed  uint64        // gaps confirmed (gaps == confirmed: nothing pending)
	confirming bool          // a confirmLoop runs
	lastGap    time.Duration // length of the last pause (for logs)
}

// defaultPauseEvery is the pause detector's tick interval.
const defaultPauseEvery = 50 * time.Millisecond

// pauseThreshold is the gap between ticks that counts as a pause; 0 (off)
// without a self-fence bound.
func pauseThreshold(selfFenceAfter time.Duration) time.Duration {
	if selfFenceAfter <= 0 {
		return 0
	}
	return max(100*time.Millisecond, selfFenceAfter/4)
}

// pauseGateClosed reports why the master must not act or report as leader
// because of a pause, or "" when nothing holds it back.
func (m *Master) pauseGateClosed() string {
	pg := &m.pause
	if pg.threshold <= 0 {
		return ""
	}
	now := m.now()
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.lastTick.IsZero() {
		return "" // not running yet
	}
	if gap := now.Sub(pg.lastTick); gap > pg.threshold {
		return fmt.Sprintf("paused: the pause detector has not run for %s", gap.Round(time.Millisecond))
	}
	if pg.gaps != pg.confirmed {
		return fmt.Sprintf("paused for %s: waiting for the coordination service to confirm the term", pg.lastGap.Round(time.Millisecond))
	}
	return ""
}

// selfFenced reports why this master must not act or report as leader now,
// whatever its term says, or "" when it may: its contact with the
// coordination service is stale, or it has just been paused and has not yet
// confirmed its term. It takes no lock that the state lock protects, so it
// may be called with or without m.mu.
func (m *Master) selfFenced() string {
	if m.contactStale() {
		return fmt.Sprintf("no contact with the coordination service for over %s", m.cfg.SelfFenceAfter)
	}
	return m.pauseGateClosed()
}

// runPauseDetector ticks until ctx is done. Run starts it.
func (m *Master) runPauseDetector(ctx context.Context) {
	pg := &m.pause
	if pg.threshold <= 0 {
		return
	}
	pg.mu.Lock()
	pg.lastTick = m.now()
	pg.mu.Unlock()
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		tk := time.NewTicker(pg.every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				m.pauseTick()
			}
		}
	}()
}

// pauseTick records a tick; after a pause it marks the term unconfirmed
// and starts confirming it.
func (m *Master) pauseTick() {
	pg := &m.pause
	now := m.now()
	pg.mu.Lock()
	gap := now.Sub(pg.lastTick)
	paused := gap > pg.threshold
	if paused {
		pg.gaps++ // before lastTick moves: the gate never opens in between
		pg.lastGap = gap
	}
	pg.lastTick = now
	pg.mu.Unlock()
	if paused {
		m.log.Warnf("This process was paused for %s (more than %s): not acting as leader until the coordination service confirms the term",
			gap.Round(time.Millisecond), pg.threshold)
		m.kickConfirm()
	}
}

// kickConfirm starts a confirmLoop when a pause is unconfirmed and none
// runs. onElected calls it too: a term that starts while a pause is
// unconfirmed must be confirmed as well (its election may predate the
// pause).
func (m *Master) kickConfirm() {
	pg := &m.pause
	pg.mu.Lock()
	start := pg.gaps != pg.confirmed && !pg.confirming
	if start {
		pg.confirming = true
	}
	pg.mu.Unlock()
	if !start {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		m.confirmLoop()
	}()
}

// confirmLoop confirms the current term until no pause is pending. Without
// a term it stops; the next term's onElected starts it again. A failed
// Confirm steps the master down (the Elector may end its term too, and
// campaigns again).
func (m *Master) confirmLoop() {
	pg := &m.pause
	for {
		pg.mu.Lock()
		gen := pg.gaps
		if gen == pg.confirmed {
			// Checked and cleared under one lock: a pause detected after
			// this starts a new loop.
			pg.confirming = false
			pg.mu.Unlock()
			return
		}
		pg.mu.Unlock()
		m.mu.Lock()
		t := m.term
		m.mu.Unlock()
		if t == nil {
			pg.mu.Lock()
			pg.confirming = false
			pg.mu.Unlock()
			// A term that started since m.term was read found confirming
			// still set; look again so that it is not left unconfirmed.
			m.mu.Lock()
			again := m.term != nil
			m.mu.Unlock()
			if again {
				m.kickConfirm()
			}
			return
		}
		// As long as ZooKeeper may stay silent before the self-fence.
		ctx, cancel := context.WithTimeout(t.ctx, m.cfg.SelfFenceAfter)
		start := time.Now()
		err := m.elector.Confirm(ctx)
		cancel()
		if err == nil {
			m.mu.Lock()
			current := m.term == t
			m.mu.Unlock()
			if current {
				pg.mu.Lock()
				if pg.gaps == gen {
					pg.confirmed = gen
				}
				pg.mu.Unlock()
				m.log.WithField("epoch", t.epoch).Infof("The coordination service confirmed the term after the pause (in %s)",
					time.Since(start).Round(time.Millisecond))
			}
			continue // a new pause or a new term: look again
		}
		if t.ctx.Err() != nil {
			// The term ended meanwhile (the Elector cancelled it and is about
			// to call OnRevoked): end it here too rather than confirm it again.
			m.stepDown(t, fmt.Errorf("term ended while confirming it after a pause: %w", err), false)
			continue
		}
		m.stepDown(t, fmt.Errorf("term not confirmed after a pause: %w", err), errors.Is(err, recovery.ErrFenced))
	}
}
