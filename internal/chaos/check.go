package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// Invariant names, as printed in violation reports (numbers are DESIGN.md's).
const (
	InvOneAlivePerEpoch = "one-alive-per-epoch" // inv. 4: at most one master reports ALIVE for any epoch
	InvAliveEpochsGrow  = "alive-epochs-grow"   // inv. 3/4 (ha-anchors I5): once epoch E is seen ALIVE, no lower epoch is seen ALIVE later
	InvConvergence      = "convergence"         // inv. 6/7: after every heal, one ALIVE leader with every live worker, within the bound
	InvAppFinishes      = "app-finishes"        // inv. 2/11: every acknowledged application finishes after the last heal
	InvAppNotForgotten  = "app-not-forgotten"   // inv. 2: no master forgets an acknowledged application (the client re-registers)
	InvAppSucceeds      = "app-succeeds"        // executors run `sleep`: an acknowledged application that fails lost something
	InvCoresAgree       = "cores-agree"         // issue #11: once the applications are done, the leader's used cores per worker equal what the worker runs
	InvGracefulStop     = "graceful-stop"       // inv. 6: a master exits promptly on SIGTERM (15s at most here)
	InvExecutorOnce     = "executor-once"       // inv. 5: no executor launched twice for one grant
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string
	At        time.Time // when it was observed (for the history window)
	From, To  time.Time // the window of history worth printing
	Summary   string
	Details   []string
	Focus     string // an application id: the history shows its state only
}

func (v Violation) String() string {
	return fmt.Sprintf("VIOLATION %s at %s: %s", v.Invariant, clock(v.At), v.Summary)
}

// checkAlive checks the ALIVE samples: at most one master per epoch, and
// epochs seen ALIVE only grow. slack widens every sample's interval, so
// only an overlap certain beyond it counts.
func checkAlive(samples []Sample, slack time.Duration) []Violation {
	var alive []Sample
	for _, s := range samples {
		if s.OK && s.State == protocol.MasterAlive {
			alive = append(alive, s)
		}
	}
	var out []Violation

	// One master per epoch.
	byEpoch := map[int64]map[int]Sample{}
	for _, s := range alive {
		m := byEpoch[s.Epoch]
		if m == nil {
			m = map[int]Sample{}
			byEpoch[s.Epoch] = m
		}
		if _, ok := m[s.Master]; !ok {
			m[s.Master] = s
		}
	}
	epochs := make([]int64, 0, len(byEpoch))
	for e := range byEpoch {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	for _, e := range epochs {
		m := byEpoch[e]
		if len(m) < 2 {
			continue
		}
		var first []Sample
		for _, s := range m {
			first = append(first, s)
		}
		sort.Slice(first, func(i, j int) bool { return first[i].Recv.Before(first[j].Recv) })
		var names, details []string
		for _, s := range first {
			names = append(names, fmt.Sprintf("master-%d", s.Master))
			details = append(details, "first ALIVE answer: "+s.String())
		}
		out = append(out, Violation{Invariant: InvOneAlivePerEpoch, At: first[1].Recv,
			From: first[0].Sent.Add(-3 * time.Second), To: first[len(first)-1].Recv.Add(2 * time.Second),
			Summary: fmt.Sprintf("%s all reported ALIVE for epoch %d", strings.Join(names, " and "), e), Details: details})
	}

	// Epochs seen ALIVE only grow: a sample sent (slack) after a higher
	// epoch was answered ALIVE must not say ALIVE with a lower one.
	byRecv := append([]Sample(nil), alive...)
	sort.Slice(byRecv, func(i, j int) bool { return byRecv[i].Recv.Before(byRecv[j].Recv) })
	best := make([]Sample, len(byRecv)) // best[i]: highest epoch among byRecv[:i+1]
	for i, s := range byRecv {
		if i == 0 || s.Epoch > best[i-1].Epoch {
			best[i] = s
		} else {
			best[i] = best[i-1]
		}
	}
	reported := map[string]bool{}
	for _, s := range alive {
		cut := s.Sent.Add(-slack)
		i := sort.Search(len(byRecv), func(i int) bool { return !byRecv[i].Recv.Before(cut) }) - 1
		if i < 0 || best[i].Epoch <= s.Epoch {
			continue
		}
		b := best[i]
		key := fmt.Sprintf("%d/%d/%d", s.Master, s.Epoch, b.Epoch)
		if reported[key] {
			continue
		}
		reported[key] = true
		out = append(out, Violation{Invariant: InvAliveEpochsGrow, At: s.Recv,
			From: b.Sent.Add(-3 * time.Second), To: s.Recv.Add(2 * time.Second),
			Summary: fmt.Sprintf("master-%d answered ALIVE for epoch %d %s after master-%d had answered ALIVE for epoch %d (two leaders at once beyond the %s polling slack)",
				s.Master, s.Epoch, s.Sent.Sub(b.Recv).Round(time.Millisecond), b.Master, b.Epoch, slack),
			Details: []string{"higher epoch: " + b.String(), "lower epoch later: " + s.String()}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
