package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind int

// The faults. Leader faults pick their target when they are applied (the
// master ALIVE at that moment); every other choice is drawn from the seed.
const (
	LeaderKill Kind = iota // SIGKILL the leader; restart it after Hold
	LeaderTerm             // SIGTERM the leader (graceful stop); restart it after Hold
	LeaderStop             // SIGSTOP the leader past the ZooKeeper session; SIGCONT after Hold
	LeaderCut              // cut the leader from ZooKeeper (workers still reach it); restore after Hold
	ZKKill                 // SIGKILL ZooKeeper server ZK; restart it after Hold
	WorkerKill             // SIGKILL worker Worker; restart it after Hold
	WorkerStop             // SIGSTOP worker Worker; SIGCONT after Hold
	Double                 // two of the above at once (never two leader faults)
	numKinds
)

var kindNames = [...]string{
	LeaderKill: "leader-kill", LeaderTerm: "leader-term", LeaderStop: "leader-stop", LeaderCut: "leader-cut",
	ZKKill: "zk-kill", WorkerKill: "worker-kill", WorkerStop: "worker-stop", Double: "double",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKinds parses a comma-separated list of kind names ("" or "all": every kind).
func ParseKinds(s string) ([]Kind, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return nil, nil
	}
	var out []Kind
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for k := Kind(0); k < numKinds; k++ {
			if k.String() == name {
				out = append(out, k)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown fault kind %q (want one of %s)", name, strings.Join(kindNames[:], ", "))
		}
	}
	return out, nil
}

func (k Kind) leader() bool { return k <= LeaderCut }

// Fault is one fault of a step.
type Fault struct {
	Kind   Kind
	Worker int           // WorkerKill, WorkerStop: worker index
	ZK     int           // ZKKill: server index
	Hold   time.Duration // how long the fault lasts before it is healed
}

func (f Fault) String() string {
	s := f.Kind.String()
	switch f.Kind {
	case WorkerKill, WorkerStop:
		s += fmt.Sprintf(" worker-%d", f.Worker)
	case ZKKill:
		s += fmt.Sprintf(" zk-%d", f.ZK+1)
	}
	return s + " for " + f.Hold.String()
}

// Step is one cycle: wait Gap (applications keep running), apply the faults
// (one, or two at once), hold, heal, wait for convergence.
type Step struct {
	N      int
	Gap    time.Duration
	Faults []Fault
	// Align: a leader fault waits (a few seconds at most) until an
	// executor's command is about to end, so that it ends while no master
	// leads (issue #11, item 0).
	Align bool
}

func (s Step) String() string {
	var fs []string
	for _, f := range s.Faults {
		fs = append(fs, f.String())
	}
	align := ""
	if s.Align {
		align = " (aligned: as an executor is about to end)"
	}
	return fmt.Sprintf("step %d: after %s: %s%s", s.N, s.Gap, strings.Join(fs, " + "), align)
}

// planParams are the parts of the configuration a plan depends on: the same
// seed with the same parameters gives the same plan.
type planParams struct {
	Steps          int
	Kinds          []Kind // nil: all
	Workers        int
	ZooKeeper      int
	SessionTimeout time.Duration
	WorkerTimeout  time.Duration
	MaxGap         time.Duration
}

// Plan draws the fault sequence from seed (a PCG seeded from it); it does
// not depend on anything observed at run time.
func Plan(seed uint64, p planParams) []Step {
	r := rand.New(rand.NewPCG(seed, 0x63686173))    // "chas"
	ra := rand.New(rand.NewPCG(seed, 0x616c69676e)) // "align": its own stream, so the faults stay as they were
	kinds := p.Kinds
	if len(kinds) == 0 {
		for k := Kind(0); k < numKinds; k++ {
			kinds = append(kinds, k)
		}
	}
	maxGap := p.MaxGap
	if maxGap <= 0 {
		maxGap = 4 * time.Second
	}
	steps := make([]Step, 0, p.Steps)
	for n := 1; n <= p.Steps; n++ {
		s := Step{N: n, Gap: ms(r, 300*time.Millisecond, maxGap)}
		k := kinds[r.IntN(len(kinds))]
		if k == Double {
			// One leader or ZooKeeper fault plus one worker fault, or a
			// leader fault plus a ZooKeeper fault.
			var a, b Kind
			switch r.IntN(3) {
			case 0:
				a, b = Kind(r.IntN(4)), ZKKill
			case 1:
				a, b = Kind(r.IntN(4)), WorkerKill+Kind(r.IntN(2))
			default:
				a, b = ZKKill, WorkerKill+Kind(r.IntN(2))
			}
			s.Faults = []Fault{single(r, a, p), single(r, b, p)}
		} else {
			s.Faults = []Fault{single(r, k, p)}
		}
		hasLeader := false
		for _, f := range s.Faults {
			hasLeader = hasLeader || f.Kind.leader()
		}
		s.Align = ra.IntN(2) == 0 && hasLeader
		steps = append(steps, s)
	}
	return steps
}

func single(r *rand.Rand, k Kind, p planParams) Fault {
	f := Fault{Kind: k, Worker: r.IntN(max(p.Workers, 1)), ZK: r.IntN(max(p.ZooKeeper, 1))}
	switch k {
	case LeaderKill, LeaderTerm:
		f.Hold = ms(r, 200*time.Millisecond, 3*time.Second)
	case LeaderStop:
		// Past the session, so that a standby takes office meanwhile.
		f.Hold = p.SessionTimeout + ms(r, 500*time.Millisecond, 2500*time.Millisecond)
	case LeaderCut:
		f.Hold = p.SessionTimeout + ms(r, 1*time.Second, 3*time.Second)
	case ZKKill:
		f.Hold = ms(r, 1*time.Second, 5*time.Second)
	case WorkerKill:
		f.Hold = ms(r, 500*time.Millisecond, 4*time.Second)
	case WorkerStop:
		// Sometimes past spark.worker.timeout, so that the master declares
		// the worker dead and it must re-register.
		f.Hold = ms(r, 500*time.Millisecond, p.WorkerTimeout+2*time.Second)
	}
	return f
}

// ms draws a duration in [lo, hi), rounded to the millisecond.
func ms(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return (lo + time.Duration(r.Int64N(int64(hi-lo)))).Round(time.Millisecond)
}
