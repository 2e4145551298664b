package zkrecovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/go-zookeeper/zk"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// CandidateNode is one candidate of the election, as an observer sees it.
type CandidateNode struct {
	Name string // znode name under <dir>/leader_election
	Seq  int64  // sequence number; the lowest leads (or is about to)
	recovery.Candidate
	Err error // why Candidate could not be decoded (nil if it could)
}

// Candidates lists the candidates under dir in election order (by sequence
// number, not by name: protected names start with a random GUID). For
// tools such as `sparkd status --zk`; it needs no Elector.
func Candidates(ctx context.Context, conn *zkutil.Conn, dir string) ([]CandidateNode, error) {
	p, err := newPaths(dir)
	if err != nil {
		return nil, err
	}
	names, _, err := conn.Children(ctx, p.election)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zkrecovery: list %s: %w", p.election, err)
	}
	var out []CandidateNode
	for _, c := range sortCandidates(names) {
		data, _, err := conn.Get(ctx, path.Join(p.election, c.name))
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("zkrecovery: read %s: %w", c.name, err)
		}
		n := CandidateNode{Name: c.name, Seq: c.seq}
		if err := json.Unmarshal(data, &n.Candidate); err != nil {
			n.Err = fmt.Errorf("zkrecovery: candidate %s holds invalid data: %w", c.name, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// CurrentLeader returns the leader as an observer sees it: the lowest
// candidate once the epoch znode says it took office. ok is false while no
// candidate is in office.
func CurrentLeader(ctx context.Context, conn *zkutil.Conn, dir string) (info recovery.LeaderInfo, ok bool, err error) {
	p, err := newPaths(dir)
	if err != nil {
		return info, false, err
	}
	cands, err := Candidates(ctx, conn, dir)
	if err != nil || len(cands) == 0 {
		return info, false, err
	}
	data, _, err := conn.Get(ctx, p.epoch)
	if errors.Is(err, zk.ErrNoNode) {
		return info, false, nil
	}
	if err != nil {
		return info, false, fmt.Errorf("zkrecovery: read %s: %w", p.epoch, err)
	}
	var ed epochData
	if err := json.Unmarshal(data, &ed); err != nil {
		return info, false, fmt.Errorf("zkrecovery: %s holds invalid data: %w", p.epoch, err)
	}
	if ed.Node != cands[0].Name {
		return info, false, nil
	}
	return recovery.LeaderInfo{Candidate: cands[0].Candidate, Epoch: ed.Epoch, Since: ed.Since}, true, nil
}
