package protocol

import (
	"fmt"
	"sync"
)

// EpochGuard remembers the highest master epoch a worker or driver has seen
// and the master URL that carried it. It is safe for concurrent use.
type EpochGuard struct {
	mu        sync.Mutex
	epoch     int64
	masterURL string
	rejected  uint64
}

// StaleEpochError is returned by EpochGuard.Admit for a command from a lower
// epoch. Handlers answer it with HTTP 409.
type StaleEpochError struct {
	Got, Highest int64
	From         string
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("stale epoch %d from %s: highest seen is %d", e.Got, e.From, e.Highest)
}

// Admit accepts s if its epoch is at least the highest seen, and raises the
// highest seen to it. It reports whether the stamp moved to a new epoch.
func (g *EpochGuard) Admit(s Stamp) (advanced bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.Epoch < g.epoch {
		g.rejected++
		return false, &StaleEpochError{Got: s.Epoch, Highest: g.epoch, From: s.MasterURL}
	}
	advanced = s.Epoch > g.epoch
	g.epoch = s.Epoch
	g.masterURL = s.MasterURL
	return advanced, nil
}

// Current returns the highest epoch seen and the master URL that carried it.
func (g *EpochGuard) Current() (int64, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epoch, g.masterURL
}

// Rejected counts stamps refused as stale.
func (g *EpochGuard) Rejected() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rejected
}
