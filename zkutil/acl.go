package zkutil

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/go-zookeeper/zk"
)

// ACLChange is one node whose ACL ApplyACL changed.
type ACLChange struct {
	Path string   // chroot-relative
	Was  []zk.ACL // its ACL before
}

// ApplyACL sets the Conn's ACL on root and every node below it whose ACL
// differs (nodes created before ACLs were turned on keep the open ACL they
// were created with otherwise), and returns what it changed, parents
// before children. Nodes that vanish meanwhile are skipped. It stops at
// the first other error (ErrNoAuth: another credential owns a node), with
// the changes made so far.
func (c *Conn) ApplyACL(ctx context.Context, root string) ([]ACLChange, error) {
	var changed []ACLChange
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		fp, err := c.full(p, false)
		if err != nil {
			return changed, fmt.Errorf("zkutil: apply acl: %w", err)
		}
		type aclResult struct {
			acl  []zk.ACL
			stat *zk.Stat
		}
		cur, err := run(c, ctx, "getacl", p, func(zc *zk.Conn) (aclResult, error) {
			a, s, err := zc.GetACL(fp)
			return aclResult{a, s}, err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return changed, err
		}
		if !sameACL(cur.acl, c.acl) {
			_, err := run(c, ctx, "setacl", p, func(zc *zk.Conn) (*zk.Stat, error) {
				return zc.SetACL(fp, c.acl, cur.stat.Aversion)
			})
			switch {
			case errors.Is(err, zk.ErrNoNode):
				continue
			case err != nil:
				return changed, err
			}
			changed = append(changed, ACLChange{Path: p, Was: cur.acl})
		}
		kids, _, err := c.Children(ctx, p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return changed, err
		}
		slices.Sort(kids)
		for _, k := range kids {
			queue = append(queue, path.Join(p, k))
		}
	}
	return changed, nil
}

// sameACL compares ACLs as sets. A digest ACL's id is stored hashed, so
// both sides are compared as ZooKeeper returns them.
func sameACL(a, b []zk.ACL) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
